"""Imports of real-world files: the DataV reference, GBK shapefiles in Gauss-Krüger, an Excel ledger, a GeoPackage.

Expected values come from the input files themselves (read independently with json/shapely/
openpyxl) and from SQL on the database, never from the importer's own report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from gis.chinacrs import gcj02_to_wgs84
from gis.geodesy import geodesic_area_mu
from layers.importer import ImportOptions, map_columns, run_import
from layers.registry import get_registry
from tests.conftest import REFERENCE_DISTRICTS, ROOT, shared_file
from tests.fixtures.io_files import compound_frame, parking_ledger_rows, to_crs, write_shapefile, write_xlsx_ledger


def test_reference_districts_gcj02_replace(io_db: str, io_conn: Any) -> None:
    report = run_import(io_db, "districts", shared_file(REFERENCE_DISTRICTS),
        ImportOptions(mode="replace", crs="gcj02"))
    assert report.status == "applied", report.as_dict()
    features = json.loads(REFERENCE_DISTRICTS.read_text(encoding="utf-8"))
    rows = {
        code: (name, area, dcode)
        for code, name, area, dcode in io_conn.execute(
            "SELECT code, name, area_mu, district_code FROM renewal.districts"
        )
    }
    assert len(rows) == len(features) == 22
    for feat in features:
        code = str(feat["properties"]["adcode"])
        name, area, dcode = rows[code]
        assert name == feat["properties"]["name"]
        assert dcode == code
        geom = shape(feat["geometry"])
        wgs = shapely.transform(geom, lambda c: np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1])))
        reference = geodesic_area_mu(shapely.make_valid(wgs))
        assert abs(area - reference) / reference < 0.001, (name, area, reference)
    row = io_conn.execute(
        "SELECT status, added + updated, file_sha256, channel FROM renewal.imports WHERE id = %s", (report.import_id,)
    ).fetchone()
    assert row[0] == "applied" and row[1] == 22 and row[3] == "import"
    import hashlib

    assert row[2] == hashlib.sha256(REFERENCE_DISTRICTS.read_bytes()).hexdigest()


@pytest.mark.parametrize("epsg", [4547, 4509, 4498, 2383])
def test_gbk_shapefile_gauss_kruger(epsg: int, io_db: str, io_conn: Any, tmp_path: Path) -> None:
    frame = compound_frame(8, prefix=f"GK{epsg}")
    shp = write_shapefile(to_crs(frame, f"EPSG:{epsg}"), tmp_path, f"compounds_{epsg}", encoding="GBK", cpg=False)
    raw = shp.with_suffix(".dbf").read_bytes()
    assert "长安区".encode("gbk") in raw  # really GBK on disk
    report = run_import(io_db, "old_compounds", shp, ImportOptions(mode="append", effective_date=dt.date(2024, 5, 1)))
    assert report.status == "applied", report.as_dict()
    assert report.source_crs == f"EPSG:{epsg}" and report.encoding == "GB18030"
    rows = io_conn.execute(
        "SELECT code, name, status, households, built_year, district_code, ST_AsBinary(geom) "
        "FROM renewal.old_compounds WHERE code LIKE %s ORDER BY code",
        (f"GK{epsg}-%",),
    ).fetchall()
    assert len(rows) == 8
    labels = get_registry().get("old_compounds").lifecycle.by_label()  # type: ignore[union-attr]
    districts = dict(io_conn.execute("SELECT name, code FROM renewal.districts").fetchall())
    for row, (_, src) in zip(rows, frame.iterrows(), strict=True):
        assert row[0] == src["编号"] and row[1] == src["名称"]
        assert row[2] == labels[src["状态"]]
        assert (row[3], row[4]) == (src["户数"], src["建成年份"])
        assert row[5] == districts[src["所在区"]]
        assert shapely.hausdorff_distance(shapely.from_wkb(row[6]), src.geometry) < 1e-7  # ~1 cm
    hist = io_conn.execute(
        "SELECT count(*), min(effective_date), max(effective_date) FROM renewal.status_history "
        "WHERE layer = 'old_compounds' AND code LIKE %s",
        (f"GK{epsg}-%",),
    ).fetchone()
    assert hist == (8, dt.date(2024, 5, 1), dt.date(2024, 5, 1))
    audit = io_conn.execute(
        "SELECT count(*) FROM renewal.audit_log WHERE channel = 'import' AND code LIKE %s", (f"GK{epsg}-%",)
    ).fetchone()
    assert audit == (8,)


def test_xlsx_ledger_with_chinese_headers(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    rows = parking_ledger_rows(6)
    xlsx = write_xlsx_ledger(rows, tmp_path / "停车场台账.xlsx")
    report = run_import(io_db, "parking_sites", xlsx, ImportOptions(mode="upsert", crs="EPSG:4490"))
    assert report.status == "applied", report.as_dict()
    assert report.counts["added"] == 6
    assert report.mapping["district_code"] == "所在区" and report.mapping["status"] == "状态"
    layer = get_registry().get("parking_sites")
    by_label = layer.lifecycle.by_label()  # type: ignore[union-attr]
    types = {c.label: c.code for c in layer.field("site_type").choices or []}
    districts = dict(io_conn.execute("SELECT name, code FROM renewal.districts").fetchall())
    got = {
        r[0]: r[1:]
        for r in io_conn.execute(
            "SELECT code, name, status, spaces, year, site_type, district_code, ST_X(geom), ST_Y(geom) "
            "FROM renewal.parking_sites WHERE code LIKE 'XLSX-%'"
        )
    }
    for src in rows:
        name, status, spaces, year, site_type, dcode, x, y = got[src["编号"]]
        assert (name, spaces, year) == (src["名称"], src["泊位数"], src["计划建成年份"])
        assert status == by_label[src["状态"]] and site_type == types[src["停车场类型"]]
        assert dcode == districts[src["所在区"]]
        assert abs(x - src["经度"]) < 1e-12 and abs(y - src["纬度"]) < 1e-12


def test_upsert_changes_status_with_effective_date(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    frame = compound_frame(4, prefix="UPS")
    frame["状态"] = "待改造"
    shp = write_shapefile(frame, tmp_path / "a", "v1", encoding="GBK")
    assert run_import(io_db, "old_compounds", shp, ImportOptions(mode="append")).status == "applied"
    frame.loc[[0, 1], "状态"] = "已开工"
    frame.loc[3, "户数"] = 999
    shp2 = write_shapefile(frame, tmp_path / "b", "v2", encoding="GBK")
    report = run_import(
        io_db,
        "old_compounds",
        shp2,
        ImportOptions(mode="upsert", effective_date=dt.date(2025, 3, 9), source_doc="石政办〔2025〕1号"),
    )
    assert report.status == "applied"
    assert (report.counts["updated"], report.counts["unchanged"], report.counts["added"]) == (3, 1, 0)
    hist = io_conn.execute(
        "SELECT code, from_status, to_status, effective_date, source_doc FROM renewal.status_history "
        "WHERE layer = 'old_compounds' AND code LIKE 'UPS-%%' AND from_status IS NOT NULL ORDER BY code"
    ).fetchall()
    assert hist == [
        ("UPS-001", "pending", "started", dt.date(2025, 3, 9), "石政办〔2025〕1号"),
        ("UPS-002", "pending", "started", dt.date(2025, 3, 9), "石政办〔2025〕1号"),
    ]
    assert io_conn.execute("SELECT households FROM renewal.old_compounds WHERE code = 'UPS-004'").fetchone() == (999,)


def test_new_feature_without_status_gets_first_status(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    frame = compound_frame(2, prefix="NOSTAT").drop(columns=["状态"])
    shp = write_shapefile(frame, tmp_path, "nostat", encoding="GBK")
    assert run_import(io_db, "old_compounds", shp, ImportOptions()).status == "applied"
    first = get_registry().get("old_compounds").lifecycle.codes[0]  # type: ignore[union-attr]
    assert io_conn.execute(
        "SELECT array_agg(DISTINCT status) FROM renewal.old_compounds WHERE code LIKE 'NOSTAT-%'"
    ).fetchone() == ([first],)


def test_geopackage_with_two_layers(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    gpkg = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(compound_frame(3, prefix="GPA"), gpkg, layer="first_batch")
    pyogrio.write_dataframe(compound_frame(5, prefix="GPB", seed=9), gpkg, layer="second_batch")
    report = run_import(io_db, "old_compounds", gpkg, ImportOptions(layer_name="second_batch"))
    assert report.status == "applied" and report.source_layer == "second_batch"
    counts = io_conn.execute(
        "SELECT count(*) FILTER (WHERE code LIKE 'GPA-%'), count(*) FILTER (WHERE code LIKE "
        "'GPB-%') FROM renewal.old_compounds"
    ).fetchone()
    assert counts == (0, 5)


def test_mapping_file_and_value_map(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    frame = compound_frame(3, prefix="MAP").rename(columns={"编号": "XMBH", "户数": "HS", "状态": "JD"})
    frame["JD"] = ["未动", "动工", "未动"]
    shp = write_shapefile(frame, tmp_path, "mapped", encoding="GBK")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "columns: {XMBH: code, HS: households, JD: status}\nvalues: {status: {未动: pending, 动工: started}}\n",
        encoding="utf-8",
    )
    report = run_import(io_db, "old_compounds", shp, ImportOptions(mapping=mapping))
    assert report.status == "applied", report.as_dict()
    got = io_conn.execute(
        "SELECT code, households, status FROM renewal.old_compounds WHERE code LIKE 'MAP-%' ORDER BY code"
    ).fetchall()
    assert got == [("MAP-001", 100, "pending"), ("MAP-002", 110, "started"), ("MAP-003", 120, "pending")]


def test_repair_keeps_polygonal_parts(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    frame = compound_frame(2, prefix="REP")
    frame.loc[0, "geometry"] = shapely.Polygon([(114.50, 38.05), (114.51, 38.06), (114.51, 38.05), (114.50, 38.06)])
    shp = write_shapefile(frame, tmp_path, "bowtie", encoding="GBK")
    report = run_import(io_db, "old_compounds", shp, ImportOptions(on_invalid="repair"))
    assert report.status == "applied" and report.counts["repaired"] == 1
    assert "Self-intersection" in report.warnings[0]["message"]
    row = io_conn.execute(
        "SELECT ST_IsValid(geom), ST_NumGeometries(geom), GeometryType(geom) "
        "FROM renewal.old_compounds WHERE code = 'REP-001'"
    ).fetchone()
    assert row == (True, 2, "MULTIPOLYGON")


def test_dry_run_writes_nothing(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    from tests.layers.conftest import side_tables_state, table_state

    shp = write_shapefile(compound_frame(3, prefix="DRY"), tmp_path, "dry", encoding="GBK")
    before = table_state(io_conn, "old_compounds"), side_tables_state(io_conn)
    report = run_import(io_db, "old_compounds", shp, ImportOptions(dry_run=True))
    assert report.status == "dry_run" and report.counts["added"] == 3
    assert (table_state(io_conn, "old_compounds"), side_tables_state(io_conn)) == before
    assert io_conn.execute("SELECT status FROM renewal.imports WHERE id = %s", (report.import_id,)).fetchone() == (
        "dry_run",
    )


def test_column_mapping_recognises_chinese_and_cut_names() -> None:
    layer = get_registry().get("land_parcels")
    cmap = map_columns(
        layer, ["宗地编码", "名称", "所在区", "状态", "面积（亩）", "land_use_c", "容积率", "building_d", "备注"]
    )
    assert cmap.fields == {
        "code": "宗地编码",
        "name": "名称",
        "district_code": "所在区",
        "status": "状态",
        "land_use_code": "land_use_c",
        "far": "容积率",
        "building_density": "building_d",
    }
    assert "面积（亩）" in cmap.ignored and cmap.unmapped == ["备注"]


def test_cli_import_exit_codes(io_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": io_db}
    good = write_shapefile(compound_frame(2, prefix="CLI"), tmp_path / "g", "good", encoding="GBK")
    ok = subprocess.run(
        [sys.executable, "-m", "api.cli", "import", "old_compounds", str(good)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "applied" in ok.stdout and "added 2" in ok.stdout
    again = subprocess.run(
        [sys.executable, "-m", "api.cli", "import", "old_compounds", str(good)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "already exists" in again.stdout
    nocrs = write_shapefile(compound_frame(2, prefix="CLX"), tmp_path / "n", "nocrs", prj=False)
    bad = subprocess.run(
        [sys.executable, "-m", "api.cli", "import", "old_compounds", str(nocrs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--crs" in bad.stderr
