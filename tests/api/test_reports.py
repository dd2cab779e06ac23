"""GET /reports/quarterly and /reports/district: Word read back equals /progress and /progress/ranking."""

from __future__ import annotations

import io

import pytest
from docx import Document


def _table(content: bytes, header: list[str]) -> list[list[str]]:
    doc = Document(io.BytesIO(content))
    for t in doc.tables:
        rows = [[c.text.strip() for c in r.cells] for r in t.rows]
        if rows[0][: len(header)] == header:
            return rows[1:]
    raise AssertionError(f"no table {header}")


@pytest.fixture(scope="module")
def report(client) -> bytes:  # type: ignore[no-untyped-def]
    r = client.get("/reports/quarterly", params={"quarter": "2022Q3", "format": "docx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    return r.content


def test_summary_equals_progress(client, report: bytes) -> None:  # type: ignore[no-untyped-def]
    progress = client.get("/progress", params={"as_of": "2022-09-30"}).json()["targets"]
    rows = _table(report, ["任务", "目标", "类别", "目标值", "完成值"])
    assert [r[1] for r in rows] == [p["title"] for p in progress]
    for row, p in zip(rows, progress, strict=True):
        assert int(row[0]) == p["task"]
        assert float(row[3].replace(",", "")) == pytest.approx(p["target_value"])
        assert float(row[4].replace(",", "")) == pytest.approx(p["actual"])
        assert float(row[6]) == pytest.approx(p["percent"])
        assert float(row[7]) == pytest.approx(p["expected_percent"])
        assert row[8] == p["status_label"] and row[9] == p["deadline"]


def test_ranking_equals_progress_ranking(client, report: bytes) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/progress/ranking", params={"quarter": "2022Q3"}).json()
    assert body["indicators"], "district-reported indicators are ranked too"
    rows = [r for r in _table(report, ["排名", "区县", "得分"]) if r[0] != "—"]
    assert len(rows) == len(body["ranking"])
    for row, d in zip(rows, body["ranking"], strict=True):
        assert (int(row[0]), row[1]) == (d["rank"], d["district_name"])
        assert float(row[2]) == pytest.approx(d["score"])
        assert int(row[3]) == d["targets"]
        assert row[4] == (str(d["previous_rank"]) if d["previous_rank"] is not None else "—")


def test_as_of_report(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/reports/quarterly", params={"as_of": "2022-08-15"})
    assert r.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(r.content)).paragraphs)
    assert "截至2022年8月15日" in text and "2022Q2" in text


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"quarter": "2022Q5"}, 400),
        ({"quarter": "2022Q3", "format": "odt"}, 400),
        ({"quarter": "2022Q3", "as_of": "2022-09-30"}, 400),
        ({}, 400),
        ({"as_of": "2022-13-01"}, 400),
    ],
)
def test_bad_requests_are_400(client, params: dict[str, str], status: int) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/reports/quarterly", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_district_one_pager(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/reports/district/130104", params={"as_of": "2022-09-30"})
    assert r.status_code == 200
    assert "桥西区" in Document(io.BytesIO(r.content)).paragraphs[0].text
    assert client.get("/reports/district/999999").status_code == 400


def test_same_report_is_served_from_cache_until_data_change(client, db_url: str) -> None:  # type: ignore[no-untyped-def]
    import time

    import psycopg

    params = {"as_of": "2022-07-01", "format": "docx"}
    t0 = time.perf_counter()
    first = client.get("/reports/quarterly", params=params)
    t1 = time.perf_counter()
    again = client.get("/reports/quarterly", params=params)
    t2 = time.perf_counter()
    assert first.content == again.content and (t2 - t1) < 0.5 * (t1 - t0)
    with psycopg.connect(db_url, autocommit=True) as conn:  # any write bumps the layer's version: rebuilt
        conn.execute("UPDATE renewal.layer_version SET version = version + 1 WHERE layer = 'old_compounds'")
    t3 = time.perf_counter()
    client.get("/reports/quarterly", params=params)
    assert time.perf_counter() - t3 > 5 * (t2 - t1)


def test_cli_writes_word_reports_and_ledgers(db_url: str, demo_loaded, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from api.cli import app

    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    out = tmp_path / "通报.docx"
    res = runner.invoke(app, ["report", "quarterly", "2022Q2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "区县督导排位" in "\n".join(p.text for p in Document(str(out)).paragraphs)
    ledger = tmp_path / "台账.docx"
    res = runner.invoke(app, ["ledger", "target", "compounds_renovated_2021", "-o", str(ledger), "--as-of",
                              "2021-12-31"])
    assert res.exit_code == 0, res.output
    assert Document(str(ledger)).tables[0].rows[1].cells[0].text == "全市"
    res = runner.invoke(app, ["report", "quarterly", "2022Q2", "-o", str(tmp_path / "x.odt")])
    assert res.exit_code != 0
    for args, name in (["district", "130102"], "区县.docx"), (["ledger", "compounds_renovated_2021"], "台账2.docx"):
        path = tmp_path / name
        res = runner.invoke(app, ["report", *args, "-o", str(path), "--as-of", "2021-12-31"])
        assert res.exit_code == 0, res.output
        assert "Wrote" in res.output and Document(str(path)).tables
        res = runner.invoke(app, ["report", *args, "-o", str(tmp_path / "x.odt")])
        assert res.exit_code != 0


@pytest.mark.skipif(__import__("shutil").which("soffice") is None or __import__("shutil").which("pdftotext") is None,
                    reason="needs LibreOffice and pdftotext (scripts/os-test-deps.sh)")
def test_pdf_over_http_is_the_word_report_converted(client, report: bytes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    r = client.get("/reports/quarterly", params={"quarter": "2022Q3", "format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    path = tmp_path / "r.pdf"
    path.write_bytes(r.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode()
    ranked = client.get("/progress/ranking", params={"quarter": "2022Q3"}).json()["ranking"]
    names = [d["district_name"] for d in ranked]
    assert names and all(n in text for n in names)
