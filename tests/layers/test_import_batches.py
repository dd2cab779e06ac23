"""A GeoPackage read in batches gives the same report as read whole, with the file's row numbers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely

import layers.importer.pipeline as pipeline
from gis.io import stream_source
from layers.importer import ImportOptions, run_import
from tests.fixtures.io_files import compound_frame
from tests.layers.conftest import side_tables_state, table_state


def _broken_gpkg(tmp: Path) -> Path:
    """40 compounds with problems spread over several batches of 7 rows."""
    f = compound_frame(40, prefix="BAT")
    f.loc[30, "geometry"] = f.loc[3, "geometry"]  # the same geometry as row 4, three batches later
    f.loc[12, "状态"] = "已拆迁"  # unknown status
    f.loc[20, "geometry"] = shapely.Polygon([(114.50, 38.05), (114.51, 38.06), (114.51, 38.05), (114.50, 38.06)])
    f.loc[25, "编号"] = f.loc[2, "编号"]  # duplicate code, other batch
    f.loc[33, "geometry"] = None
    f.loc[35, "geometry"] = shapely.Point(114.5, 38.0)  # mixed types
    out = tmp / "batches.gpkg"
    pyogrio.write_dataframe(f, out, layer="old_compounds")
    return out


def _report(io_db: str, path: Path, batch_rows: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(pipeline, "stream_source", functools.partial(stream_source, batch_rows=batch_rows))
    report = run_import(io_db, "old_compounds", path, ImportOptions(on_invalid="repair")).as_dict()
    for key in ("import_id", "timings_s"):
        report.pop(key)
    return report


def test_batches_give_the_whole_file_report(
    io_db: str, io_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _broken_gpkg(tmp_path)
    before = table_state(io_conn, "old_compounds"), side_tables_state(io_conn)
    whole = _report(io_db, path, 100_000, monkeypatch)
    batched = _report(io_db, path, 7, monkeypatch)
    assert batched == whole
    assert whole["status"] == "rejected"
    by_kind = {(e["row"], e["kind"]) for e in whole["errors"]}
    assert {(31, "duplicate_geometry"), (13, "unknown_value"), (3, "duplicate_code"), (26, "duplicate_code"),
            (34, "missing"), (36, "wrong_type")} <= by_kind
    assert [(w["row"], w["kind"]) for w in whole["warnings"]] == [(21, "repaired")]
    assert next(e for e in whole["errors"] if e["kind"] == "duplicate_geometry")["message"].endswith("feature 4")
    assert (table_state(io_conn, "old_compounds"), side_tables_state(io_conn)) == before


def test_batched_import_applies_in_file_order(
    io_db: str, io_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = compound_frame(23, prefix="BOK")
    path = tmp_path / "ok.gpkg"
    pyogrio.write_dataframe(f, path, layer="old_compounds")
    monkeypatch.setattr(pipeline, "stream_source", functools.partial(stream_source, batch_rows=5))
    report = run_import(io_db, "old_compounds", path, ImportOptions())
    assert report.status == "applied" and report.counts["read"] == report.counts["added"] == 23
    rows = io_conn.execute("SELECT code FROM renewal.old_compounds WHERE code LIKE 'BOK-%' ORDER BY id")
    codes = [r[0] for r in rows]
    assert codes == [f"BOK-{i + 1:03d}" for i in range(23)]
