"""The quarterly supervision report: Word tables equal progress, the PDF names every district, fast enough."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from docx import Document

from layers.plan import get_target
from layers.progress import Quarter, district_names, progress_as_of, ranking
from layers.reports import district_summary, quarterly_report, target_ledger_document

QUARTER = Quarter.parse("2022Q3")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reports"


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> psycopg.Connection:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def built(db: psycopg.Connection) -> dict[str, object]:
    t0 = time.perf_counter()
    docx = quarterly_report(db, quarter=QUARTER, fmt="docx", maps_out=ARTIFACTS / "maps")
    t_docx = time.perf_counter() - t0
    return {"docx": docx, "seconds": t_docx}


def _tables(content: bytes) -> list[list[list[str]]]:
    doc = Document(io.BytesIO(content))
    return [[[c.text.strip() for c in row.cells] for row in t.rows] for t in doc.tables]


def _table_with(tables: list[list[list[str]]], header: list[str]) -> list[list[str]]:
    return next(t for t in tables if t[0][: len(header)] == header)


def test_summary_table_equals_progress(db: psycopg.Connection, built: dict[str, object]) -> None:
    tables = _tables(built["docx"].content)  # type: ignore[attr-defined]
    rows = _table_with(tables, ["任务", "目标", "类别", "目标值", "完成值"])[1:]
    records = progress_as_of(db, QUARTER.end)
    assert len(rows) == len(records)
    for row, r in zip(rows, records, strict=True):
        d = r.as_dict()
        assert row[1] == d["title"]
        assert float(row[4].replace(",", "")) == pytest.approx(d["actual"])
        assert float(row[3].replace(",", "")) == pytest.approx(d["target_value"])
        assert float(row[6]) == pytest.approx(d["percent"])
        assert row[8] == d["status_label"]
        assert row[2] == ("推进类" if r.target.kind == "advance" else "完成类")


def test_ranking_table_equals_ranking_with_indicators(db: psycopg.Connection, built: dict[str, object]) -> None:
    rows = _table_with(_tables(built["docx"].content), ["排名", "区县", "得分"])[1:]  # type: ignore[attr-defined]
    expected = ranking(db, QUARTER)
    assert expected["indicators"], "district-reported indicators take part in the ranking"
    ranked = [r for r in rows if r[0] != "—"]
    assert [(int(r[0]), r[1], float(r[2])) for r in ranked] == [
        (e["rank"], e["district_name"], pytest.approx(e["score"])) for e in expected["ranking"]]
    # every district appears, ranked or not
    assert {r[1] for r in rows} == set(district_names(db).values())
    # indicators change the ranking compared with the spatial targets alone
    alone = ranking(db, QUARTER, indicators=[])
    assert [e["score"] for e in alone["ranking"]] != [e["score"] for e in expected["ranking"]]


def test_maps_are_pngs(built: dict[str, object]) -> None:
    for name in ("old_compounds", "urban_villages", "vacated_land", "ranking"):
        png = (ARTIFACTS / "maps" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, name
    doc = Document(io.BytesIO(built["docx"].content))  # type: ignore[attr-defined]
    assert len(doc.inline_shapes) == 4


def test_docx_is_fast_enough(built: dict[str, object]) -> None:
    assert built["seconds"] < 30


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="needs LibreOffice (soffice) and poppler-utils (pdftotext): scripts/os-test-deps.sh")
def test_pdf_names_every_district(db: psycopg.Connection, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    pdf = quarterly_report(db, quarter=QUARTER, fmt="pdf")
    seconds = time.perf_counter() - t0
    assert pdf.content[:5] == b"%PDF-" and pdf.filename.endswith(".pdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "督导通报_2022Q3.pdf").write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode("utf-8")
    for name in district_names(db).values():
        assert name in text, name
    assert "督导通报" in text and "2022年第3季度" in text.replace(" ", "")
    assert seconds < 30, f"PDF report took {seconds:.1f} s"


def test_report_as_of_a_date_ranks_the_last_quarter_ended(db: psycopg.Connection) -> None:
    report = quarterly_report(db, as_of=dt.date(2022, 11, 15), fmt="docx")
    text = "\n".join(p.text for p in Document(io.BytesIO(report.content)).paragraphs)
    assert "2022Q3" in text and "截至2022年11月15日" in text


def test_district_summary_and_word_ledger(db: psycopg.Connection) -> None:
    one = district_summary(db, "130102", dt.date(2022, 9, 30))
    doc = Document(io.BytesIO(one.content))
    assert "长安区" in doc.paragraphs[0].text
    rows = doc.tables[0].rows[1:]
    mine = [r for r in progress_as_of(db, dt.date(2022, 9, 30), district="130102") if r.goal > 0]
    assert [c.cells[1].text for c in rows] == [r.target.title for r in mine]
    target = get_target("compounds_renovated_2021")
    ledger = target_ledger_document(db, target, dt.date(2021, 12, 31))
    ldoc = Document(io.BytesIO(ledger.content))
    city = ldoc.tables[0].rows[1].cells
    assert city[0].text == "全市" and city[2].text == "652.00"
    assert "实施主体" in [c.text for c in ldoc.tables[1].rows[0].cells]


def test_photos_of_approved_changes_appear_in_the_report(db_url: str, built: dict[str, object],
                                                         tmp_path: Path) -> None:
    """Photos of approved submissions (issue 16's tables and storage) reach the report; others do not.

    The rows are written in a transaction that is rolled back; the files go to a scratch storage dir.
    """
    from layers.attachments import attachment_path
    from layers.reports.attachments import approved_change_photos

    png = (ARTIFACTS / "maps" / "ranking.png").read_bytes()
    storage = tmp_path / "storage"
    shas = []
    for variant in (b"", b"\0"):  # two files: one for an approved change, one for a pending one
        data = png + variant
        sha = hashlib.sha256(data).hexdigest()
        path = attachment_path(storage, sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        shas.append(sha)
    with psycopg.connect(db_url) as conn:  # not autocommit: everything below is rolled back
        assert approved_change_photos(conn, QUARTER.end, storage_dir=storage) == []
        for sha in shas:
            conn.execute("INSERT INTO renewal.attachments (sha256, media_type, size_bytes, uploaded_by, taken_at) "
                         "VALUES (%s, 'image/png', 1, 'ed', '2022-08-01 10:00')", (sha,))
        changes = [("approved", "2022-08-05 09:00+08", "外立面改造完成"), ("pending", None, "未审核")]
        for (status, reviewed, note), sha in zip(changes, shas, strict=True):
            sid = conn.execute(
                "INSERT INTO renewal.submissions (layer, feature_id, district_code, proposal, change, before, status, "
                "submitted_by, reviewed_by, reviewed_at) VALUES ('old_compounds', 1, '130102', '{}'::jsonb, %s::jsonb, "
                "%s::jsonb, %s, 'ed', 'rv', %s) RETURNING id",
                (json.dumps({"note": note}), json.dumps({"properties": {"code": "LJXQ-0001", "name": "示例小区"}}),
                 status, reviewed)).fetchone()[0]
            conn.execute("INSERT INTO renewal.submission_attachments (submission_id, sha256, added_by) "
                         "VALUES (%s, %s, 'ed')", (sid, sha))
        photos = approved_change_photos(conn, QUARTER.end, storage_dir=storage)
        assert [(p.code, p.caption) for p in photos] == [("LJXQ-0001", "外立面改造完成")]  # approved only
        assert photos[0].content == png and photos[0].taken_on == dt.date(2022, 8, 1)
        assert approved_change_photos(conn, dt.date(2022, 8, 1), storage_dir=storage) == []  # not yet approved
        assert approved_change_photos(conn, QUARTER.end, storage_dir=storage, layers={"urban_villages"}) == []
        report = quarterly_report(conn, quarter=QUARTER, storage_dir=storage)
        doc = Document(io.BytesIO(report.content))
        assert len(doc.inline_shapes) == 5
        assert any("外立面改造完成" in p.text for p in doc.paragraphs)
        conn.rollback()
