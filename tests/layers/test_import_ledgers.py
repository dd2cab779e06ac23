"""Excel and CSV ledgers as offices write them: a title above the header, a hidden first sheet, a repeated
column name, coordinates in full-width digits or degrees-minutes-seconds, Excel's UTF-16 "Unicode text".

A repeated column name crashed the import (a 500 through the API); the others were refused with
"has no coordinates" or "not both numbers", or read the wrong sheet.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from openpyxl import Workbook

from gis.io import read_source
from gis.io.tabular import coordinate_values
from layers.importer import ImportOptions, run_import
from tests.fixtures.io_files import parking_ledger_rows


def _ledger(path: Path, rows: list[dict[str, Any]], *, title: list[list[Any]] | None = None,
            hidden_first: bool = False, extra: dict[str, list[Any]] | None = None) -> Path:
    """An Excel ledger of ``rows``: ``title`` rows above the header (the first merged), an optional hidden
    first sheet of notes, and ``extra`` columns appended (names may repeat)."""
    wb = Workbook()
    ws = wb.active
    if hidden_first:
        ws.title = "填表说明"
        ws.append(["经度", "纬度", "请勿修改本表"])  # names coordinates too: the hidden sheet must still be passed over
        ws.sheet_state = "hidden"
        ws = wb.create_sheet("停车场台账")
    headers = list(rows[0]) + list(extra or {})
    for line in title or []:
        ws.append(line)
    if title:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    ws.append(headers)
    for i, row in enumerate(rows):
        ws.append([row.get(h) for h in rows[0]] + [values[i] for values in (extra or {}).values()])
    wb.save(path)
    return path


def test_title_rows_hidden_sheet_and_repeated_names(tmp_path: Path) -> None:
    rows = parking_ledger_rows(4)
    title = [["石家庄市新增公共停车泊位台账（2023年）"], [], ["填报单位：长安区住建局", None, "填报日期：2023-12-31"]]
    path = _ledger(tmp_path / "titled.xlsx", rows, hidden_first=True, title=title)
    src = read_source(path)
    assert src.layer == "停车场台账" and len(src) == 4
    assert list(src.frame["名称"]) == [r["名称"] for r in rows]
    assert any("2 title row(s)" in n and "石家庄市新增公共停车泊位台账" in n for n in src.notes), src.notes
    assert shapely.get_coordinates(src.geometry) == pytest.approx(
        np.array([[r["经度"], r["纬度"]] for r in rows]), abs=1e-12)


def test_plain_ledger_unchanged(tmp_path: Path) -> None:
    """No title: the first row is the header, as before (and a ledger without coordinates still says so)."""
    rows = parking_ledger_rows(3)
    src = read_source(_ledger(tmp_path / "plain.xlsx", rows))
    assert len(src) == 3 and not any("title row" in n for n in src.notes)


@pytest.mark.parametrize(("text", "value"), [
    ("114.5", 114.5), ("１１４．５", 114.5), ("114°30′15.5″", 114 + 30 / 60 + 15.5 / 3600),
    ("114度30分15.5秒", 114 + 30 / 60 + 15.5 / 3600), ("38°02'24\"N", 38.04), ("38°02′", 38 + 2 / 60),
    ("114°30'00\"W", -114.5), ("西114°30′", float("nan")), ("114°75′", float("nan")),
    ("很远", float("nan")), (None, float("nan")),
])
def test_coordinate_spellings(text: str | None, value: float) -> None:
    got = coordinate_values(pd.Series([text], dtype=object))[0]
    assert (np.isnan(got) and np.isnan(value)) or got == pytest.approx(value, abs=1e-9)


def test_excel_unicode_text_csv(tmp_path: Path) -> None:
    """Excel's "Unicode text" (Unicode 文本) is UTF-16 with a BOM, tab-separated."""
    text = "编号\t名称\t经度\t纬度\nU-1\t东站停车场\t114.51\t38.04\n"
    path = tmp_path / "unicode.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    src = read_source(path)
    assert src.encoding == "UTF-16" and src.frame.loc[0, "名称"] == "东站停车场"
    assert shapely.get_coordinates(src.geometry).tolist() == [[114.51, 38.04]]


def test_titled_ledger_with_a_repeated_column_imports(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    """Through the importer: the repeated 名称 (a 500 before) is 名称.1 and not imported; DMS coordinates read."""
    rows = parking_ledger_rows(3)
    for r in rows:  # places of their own: other tests' parking sites in the same database sit on the ledger's
        r["编号"], r["经度"], r["纬度"] = "LEDGER-" + r["编号"], r["经度"] + 0.0037, r["纬度"] + 0.0023
    rows[0]["经度"], rows[0]["纬度"] = "114°29′", "38°01′12″"
    path = _ledger(tmp_path / "repeated.xlsx", rows, title=[["石家庄市停车场台账"]],
                   extra={"名称": ["备注一", "备注二", "备注三"]})
    report = run_import(io_db, "parking_sites", path, ImportOptions(crs="EPSG:4490"))
    assert report.status == "applied", report.as_dict()
    assert report.counts["added"] == 3
    assert "名称.1" in report.unmapped_columns or "名称.1" in report.ignored_columns, report.as_dict()
    got = io_conn.execute("SELECT name, ST_X(geom), ST_Y(geom) FROM renewal.parking_sites WHERE code = %s",
                          (rows[0]["编号"],)).fetchone()
    assert got[0] == rows[0]["名称"]
    assert got[1] == pytest.approx(114 + 29 / 60, abs=1e-9) and got[2] == pytest.approx(38.02, abs=1e-9)
