"""XLSX ledgers read back with openpyxl and converted by LibreOffice (a real office suite)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from openpyxl import load_workbook

from layers.due import HEADERS, due_list, due_xlsx
from layers.ledger import layer_ledger, target_ledger, target_rows
from layers.plan import get_catalog, get_target
from layers.progress import STATUS_LABELS, district_names, progress_as_of
from layers.registry import get_registry

AS_OF = dt.date(2021, 9, 30)


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> psycopg.Connection:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.mark.parametrize("target_id", ["compounds_renovated_2021", "housing_started_2021", "water_pipe_km_2021",
                                       "core_road_network_started"])  # km²: area_mu summed, divided
def test_target_ledger_reads_back(db: psycopg.Connection, tmp_path: Path, target_id: str) -> None:
    t = get_target(target_id)
    path = target_ledger(db, t, AS_OF, tmp_path / f"{target_id}.xlsx")
    wb = load_workbook(path)
    names = district_names(db)
    records = progress_as_of(db, AS_OF, [t], by_district=True)
    assert wb.sheetnames[0] == "汇总"
    assert set(wb.sheetnames[1:]) == {names[r.district_code] for r in records[1:] if r.district_code}
    ws = wb["汇总"]
    assert "台账" in ws["A1"].value and AS_OF.isoformat() in ws["A1"].value
    assert [c.value for c in ws[3]][:4] == ["区县代码", "区县", f"目标值（{t.unit}）", f"完成值（{t.unit}）"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=4, max_row=3 + len(records), values_only=True)}
    for rec in records:
        row = rows[rec.district_code or "全市"]
        assert row[3] == pytest.approx(round(rec.actual, 2))
        assert row[6] == STATUS_LABELS[rec.status]
    # feature sheets: the rows marked 计入目标 add up to the district's actual
    for rec in records[1:]:
        sheet = wb[names[rec.district_code]]
        counted = [r for r in sheet.iter_rows(min_row=4, values_only=True) if r[6] == "是"]
        assert sum(r[5] for r in counted) == pytest.approx(rec.actual, abs=0.01)


def _one_target_per_metric() -> list[str]:
    seen: dict[str, str] = {}
    for t in get_catalog().targets:
        seen.setdefault(t.metric, t.id)
    return sorted(seen.values())


@pytest.mark.parametrize("target_id", _one_target_per_metric())
def test_ledger_values_add_up_to_the_actual_exactly(db: psycopg.Connection, target_id: str) -> None:
    """The per-feature value (ledger rows) and the aggregate (progress) are one rule: unrounded, they agree."""
    t = get_target(target_id)
    rows = target_rows(db, t, AS_OF)
    by_district: dict[str | None, float] = {}
    for r in rows:
        if r[7]:
            by_district[r[0]] = by_district.get(r[0], 0.0) + (r[6] or 0.0)
            by_district[None] = by_district.get(None, 0.0) + (r[6] or 0.0)
    records = progress_as_of(db, AS_OF, [t], by_district=True)
    assert records[0].district_code is None
    for rec in records:
        assert rec.actual == pytest.approx(by_district.get(rec.district_code, 0.0), rel=1e-9, abs=1e-9)


def test_layer_ledger_reads_back(db: psycopg.Connection, tmp_path: Path) -> None:
    layer = get_registry().get("pipe_renewals")
    path = layer_ledger(db, layer, AS_OF, tmp_path / "pipes.xlsx")
    wb = load_workbook(path)
    # a feature is on the ledger of a date if it existed then: history by the date, or created by it
    total = db.execute(
        "SELECT count(*) FROM renewal.pipe_renewals t WHERE (t.created_at AT TIME ZONE 'Asia/Shanghai')::date <= %(d)s "
        "OR EXISTS (SELECT 1 FROM renewal.status_history h WHERE h.layer = 'pipe_renewals' AND h.feature_id = t.id "
        "AND h.effective_date <= %(d)s)", {"d": AS_OF},
    ).fetchone()[0]
    n = 0
    for name in wb.sheetnames[1:]:
        ws = wb[name]
        header = [c.value for c in ws[1]]
        assert header[:4] == ["工程编码", "工程名称", "管网类型", "管径（毫米）"]
        assert header[-2:] == ["改造状态", "状态日期"]
        for row in ws.iter_rows(min_row=2, values_only=True):
            n += 1
            assert row[2] in ("供热管网", "供水管网")
            assert row[-2] in ("计划", "施工中", "已完工")
    assert 0 < n == total
    # the status as of the date, checked for one feature against SQL
    code, status = db.execute(
        "SELECT t.code, (SELECT h.to_status FROM renewal.status_history h WHERE h.layer = 'pipe_renewals' "
        "AND h.feature_id = t.id AND h.effective_date <= %s ORDER BY h.effective_date DESC, h.id DESC LIMIT 1) "
        "FROM renewal.pipe_renewals t WHERE EXISTS (SELECT 1 FROM renewal.status_history h "
        "WHERE h.layer = 'pipe_renewals' AND h.feature_id = t.id AND h.effective_date <= %s) ORDER BY t.code LIMIT 1",
        (AS_OF, AS_OF),
    ).fetchone()
    found = [r for name in wb.sheetnames[1:] for r in wb[name].iter_rows(min_row=2, values_only=True) if r[0] == code]
    assert found and found[0][-2] == layer.lifecycle.get(status).label  # type: ignore[union-attr]


def test_libreoffice_opens_the_ledger(db: psycopg.Connection, tmp_path: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed (scripts/os-test-deps.sh installs it)")
    t = get_target("villages_started_2021")
    path = target_ledger(db, t, AS_OF, tmp_path / "villages.xlsx")
    out = tmp_path / "csv"
    profile = tmp_path / "lo-profile"
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
         "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(out), str(path)],
        check=True, capture_output=True, timeout=180,
    )
    text = (out / "villages.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))
    assert "台账" in rows[0][0]
    city = next(r for r in rows if r and r[0] == "全市")
    rec = progress_as_of(db, AS_OF, [t])[0]
    assert float(city[3]) == pytest.approx(rec.actual)
    assert city[6] == STATUS_LABELS[rec.status]


def test_due_list_workbook_has_the_ledger_layout(db: psycopg.Connection) -> None:
    """The due list's sheet is laid out as the ledgers are (title, blank, shaded header, frozen) with its content."""
    day = dt.date(2021, 12, 15)  # the 2021 targets are within 30 days of their deadline
    rows = due_list(db, day)
    assert rows, "the demo has 2021 targets a district has not met by mid-December"
    wb = load_workbook(io.BytesIO(due_xlsx(rows, day)))
    assert wb.sheetnames == ["督办清单"]
    ws = wb["督办清单"]
    assert ws["A1"].value == f"督办清单（截至{day.isoformat()}；期限已过或30天内到期、尚未达到要求状态）"
    assert ws["A1"].font.bold
    assert [c.value for c in ws[3]] == HEADERS == [
        "区县", "目标", "期限", "剩余天数", "目标值", "完成值", "差额", "单位", "要素编码", "要素名称", "当前状态"]
    assert all(c.font.bold for c in ws[3])
    assert ws.freeze_panes == "A4"
    first = rows[0]
    feature = (first["features"] or [{"code": "", "name": "清单内项目均已达到，缺口需补充项目", "status_label": ""}])[0]
    assert [c.value for c in ws[4]] == [
        first["district_name"], first["title"], first["deadline"], first["days_left"], pytest.approx(first["goal"]),
        pytest.approx(first["actual"]), pytest.approx(first["gap"]), first["unit"], feature["code"] or None,
        feature["name"], feature["status_label"] or None]
    lines = sum(max(1, len(r["features"])) for r in rows)
    assert ws.max_row == 3 + lines
