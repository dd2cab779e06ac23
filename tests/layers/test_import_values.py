"""Imported cells follow the one value-conversion rule set (layers.values), cell for cell.

Each spelling of a whole number goes through a real file import; what the database stores (read
back with SQL) must equal ``layers.values.convert`` of the same cell, and a cell ``convert``
refuses must reject the file with the module's wording.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layers.importer import ImportOptions, run_import
from layers.values import EXPECTED, ConversionError, convert
from tests.fixtures.io_files import compound_frame, write_geojson

ACCEPTED = ["１２３", " 124 ", "125.0", "+126", "127\u3000", "０１２８"]
REFUSED = ["1e3", "1,234", "十二", "12.5"]


def _file(tmp: Path, households: list[Any], prefix: str) -> Path:
    frame = compound_frame(len(households), prefix=prefix)
    frame["户数"] = households
    return write_geojson(frame, tmp / f"{prefix}.geojson", "collection")


def test_accepted_spellings_store_what_values_convert_says(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    report = run_import(io_db, "old_compounds", _file(tmp_path, ACCEPTED, "VALOK"), ImportOptions())
    assert report.status == "applied", report.as_dict()
    stored = dict(io_conn.execute("SELECT code, households FROM renewal.old_compounds WHERE code LIKE 'VALOK-%'"))
    expected = {f"VALOK-{i + 1:03d}": convert("integer", cell) for i, cell in enumerate(ACCEPTED)}
    assert stored == expected
    assert sorted(expected.values()) == [123, 124, 125, 126, 127, 128]


@pytest.mark.parametrize("cell", REFUSED)
def test_refused_spelling_rejects_the_file_with_the_shared_wording(
    cell: str, io_db: str, io_conn: Any, tmp_path: Path
) -> None:
    with pytest.raises(ConversionError):
        convert("integer", cell)
    report = run_import(io_db, "old_compounds", _file(tmp_path, ["130", cell], "VALNO"), ImportOptions())
    assert report.status == "rejected", report.as_dict()
    assert [(e["row"], e["kind"]) for e in report.errors] == [(2, "not_integer")]
    assert report.errors[0]["message"].endswith(f"'{cell}' is not {EXPECTED['integer']}")
    row = io_conn.execute("SELECT count(*) FROM renewal.old_compounds WHERE code LIKE 'VALNO-%'").fetchone()
    assert row == (0,)
