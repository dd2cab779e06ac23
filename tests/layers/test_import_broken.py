"""A corpus of broken inputs: each gives its clear error, and nothing is written.

For every case the layer's row count and the md5 of all its rows, the status history, the
audit log and the count of applied imports are compared before and after.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gis.errors import RenewalError
from layers.importer import ImportOptions, run_import
from tests.fixtures.io_files import compound_frame, features_json, to_crs, write_geojson, write_shapefile
from tests.layers.conftest import side_tables_state, table_state


@dataclass
class Case:
    id: str
    build: Callable[[Path], Path]
    expected: str
    options: dict[str, Any] = field(default_factory=dict)
    layer: str = "old_compounds"


def _gj(frame: gpd.GeoDataFrame, tmp: Path, name: str = "in.geojson", shape: str = "collection") -> Path:
    return write_geojson(frame, tmp / name, shape)


def _frame(**changes: Any) -> gpd.GeoDataFrame:
    f = compound_frame(6, prefix="BRK")
    for k, v in changes.items():
        f[k] = v
    return f


def truncated_zip(tmp: Path) -> Path:
    z = write_shapefile(to_crs(_frame(), "EPSG:4547"), tmp, "parcels", zip_it=True)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    return z


def zip_bomb(tmp: Path) -> Path:
    """A real shapefile zip plus a member of 150 MB of zeros (~1,000x): refused before unpacking."""
    z = write_shapefile(to_crs(_frame(), "EPSG:4547"), tmp, "bomb", zip_it=True)
    with zipfile.ZipFile(z, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("padding.dbf", "w") as member:
        block = bytes(1024 * 1024)
        for _ in range(150):
            member.write(block)
    return z


def xlsx_bomb(tmp: Path) -> Path:
    """An .xlsx is a zip: the same check applies before openpyxl unpacks its XML."""
    p = tmp / "ledger.xlsx"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("xl/worksheets/sheet1.xml", "w") as m:
        block = b" " * (1024 * 1024)
        for _ in range(150):
            m.write(block)
    return p


def shp_without(ext: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        shp = write_shapefile(to_crs(_frame(), "EPSG:4547"), tmp, "parts")
        shp.with_suffix(ext).unlink()
        return shp
    return build


def gbk_with_utf8_cpg(tmp: Path) -> Path:
    shp = write_shapefile(_frame(), tmp, "gbk", encoding="GBK")
    shp.with_suffix(".cpg").write_text("UTF-8")
    return shp


def raw(text: str, name: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        p = tmp / name
        p.write_text(text, encoding="utf-8")
        return p
    return build


def mixed_types(tmp: Path) -> Path:
    f = _frame()
    f.loc[2, "geometry"] = shapely.Point(114.51, 38.05)
    return _gj(f, tmp)


def bowtie(tmp: Path) -> Path:
    f = _frame()
    f.loc[1, "geometry"] = shapely.Polygon([(114.50, 38.05), (114.51, 38.06), (114.51, 38.05), (114.50, 38.06)])
    return _gj(f, tmp)


def swapped(tmp: Path) -> Path:
    f = _frame()
    f["geometry"] = [shapely.transform(g, lambda c: c[:, ::-1]) for g in f.geometry]
    return _gj(f, tmp)


def lat_out_of_range(tmp: Path) -> Path:
    f = _frame()
    f.loc[0, "geometry"] = shapely.box(114.5, 95.0, 114.51, 95.01)
    return _gj(f, tmp)


def nan_coords(tmp: Path) -> Path:
    f = _frame()
    f.loc[3, "geometry"] = shapely.Polygon([(114.5, 38.05), (np.nan, 38.06), (114.51, 38.05), (114.5, 38.05)])
    out = tmp / "nan.gpkg"
    pyogrio.write_dataframe(f, out)
    return out


def three_d(tmp: Path) -> Path:
    f = _frame()
    f["geometry"] = shapely.force_3d(np.asarray(f.geometry.array), 55.0)
    return _gj(f, tmp)


def lines_for_polygon_layer(tmp: Path) -> Path:
    f = _frame()
    f["geometry"] = [shapely.LineString(g.exterior.coords) for g in f.geometry]
    return _gj(f, tmp)


def projected_as_degrees(tmp: Path) -> Path:
    feats = features_json(to_crs(_frame(), "EPSG:4547"))
    (tmp / "metres.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return tmp / "metres.geojson"


def wrong_zone(tmp: Path) -> Path:
    shp = write_shapefile(to_crs(_frame(), "EPSG:4526"), tmp, "zoned")
    from pyproj import CRS

    shp.with_suffix(".prj").write_text(CRS.from_epsg(4547).to_wkt("WKT1_ESRI"))
    return shp


def csv_lonlat(tmp: Path) -> Path:
    p = tmp / "ledger.csv"
    p.write_text("编号,名称,经度,纬度\nC-1,点一,114.5,38.0\n", encoding="utf-8")
    return p


def csv_bad_wkt(tmp: Path) -> Path:
    p = tmp / "wkt.csv"
    p.write_text('编号,名称,WKT\nW-1,甲,"POLYGON ((114.5 38.0, 114.6 38.0, 114.6"\n', encoding="utf-8")
    return p


def two_layer_gpkg(tmp: Path) -> Path:
    out = tmp / "two.gpkg"
    pyogrio.write_dataframe(_frame(), out, layer="a")
    pyogrio.write_dataframe(_frame(), out, layer="b", append=False)
    return out


def not_xlsx(tmp: Path) -> Path:
    p = tmp / "ledger.xlsx"
    p.write_bytes(b"this is not a workbook at all")
    return p


def not_gpkg(tmp: Path) -> Path:
    p = tmp / "broken.gpkg"
    sqlite3.connect(p).execute("CREATE TABLE t (a int)").connection.commit()
    return p


def null_geometry(tmp: Path) -> Path:
    doc = {"type": "FeatureCollection", "features": features_json(_frame())}
    doc["features"][0]["geometry"] = None
    (tmp / "null.geojson").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return tmp / "null.geojson"


def mapping_file(text: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / "map.yaml").write_text(text, encoding="utf-8")
        return _gj(_frame(), tmp)
    return build


CASES = [
    Case("truncated_zip", truncated_zip, "not a readable zip archive"),
    Case("zip_bomb", zip_bomb, "zip bomb"),
    Case("xlsx_bomb", xlsx_bomb, "zip bomb"),
    Case("missing_shx", shp_without(".shx"), ".shx missing"),
    Case("missing_dbf", shp_without(".dbf"), ".dbf missing"),
    Case("missing_prj_without_crs", shp_without(".prj"), "has no .prj file"),
    Case("cpg_says_utf8_but_gbk", gbk_with_utf8_cpg, "is not valid UTF-8"),
    Case("wrong_encoding_option", lambda t: write_shapefile(_frame(), t, "gbk", encoding="GBK"), "not valid UTF-8",
         {"encoding": "utf-8"}),
    Case("empty_file", raw("", "empty.geojson"), "is empty (0 bytes)"),
    Case("zero_features", raw('{"type":"FeatureCollection","features":[]}', "none.geojson"), "contains no features"),
    Case("empty_array", raw("[]", "none.json"), "contains no features"),
    Case("invalid_json", raw('{"type": "FeatureCollection", "features": [', "bad.geojson"), "GDAL cannot read"),
    Case("array_of_non_features", raw('[{"type": "Point", "coordinates": [114.5, 38]}]', "pts.json"),
         "is not a GeoJSON Feature"),
    Case("unsupported_extension", raw("AC1027", "drawing.dwg"), "unsupported file type"),
    Case("mixed_geometry_types", mixed_types, "the file mixes types"),
    Case("self_intersection_reject", bowtie, "Self-intersection", {"on_invalid": "reject"}),
    Case("swapped_axes", swapped, "swapped order"),
    Case("latitude_out_of_range", lat_out_of_range, "not degrees"),
    Case("nan_coordinates", nan_coords, "NaN"),
    Case("three_d", three_d, "--drop-z"),
    Case("other_layers_geometry", lines_for_polygon_layer, "It looks like a file for"),
    Case("projected_declared_as_degrees", projected_as_degrees, "projected metres, not degrees"),
    Case("wrong_gauss_kruger_zone", wrong_zone, "zone number 38"),
    Case("duplicate_codes", lambda t: _gj(_frame(**{"编号": ["BRK-1"] * 6}), t), "appears more than once"),
    Case("duplicate_geometry", lambda t: _gj(_frame(geometry=[shapely.box(114.5, 38.04, 114.502, 38.042)] * 6), t),
         "the same geometry as feature 1"),
    Case("unknown_status", lambda t: _gj(_frame(**{"状态": ["已拆迁"] * 6}), t), "is not a status of layer"),
    Case("unknown_district", lambda t: _gj(_frame(**{"所在区": ["火星区"] * 6}), t), "is not a district"),
    Case("not_a_number", lambda t: _gj(_frame(**{"户数": ["很多"] * 6}), t), "is not a whole number"),
    Case("attribute_out_of_range", lambda t: _gj(_frame(**{"建成年份": [1800] * 6}), t), "out of range"),
    Case("huge_attribute_value", lambda t: _gj(_frame(**{"名称": ["长" * 5000] * 6}), t), "is too long"),
    Case("code_exists_in_append", lambda t: _gj(_frame(**{"编号": [f"LJXQ-000{i + 1}" for i in range(6)]}), t),
         "already exists in layer"),
    Case("csv_without_crs", csv_lonlat, "does not say which coordinate system", layer="parking_sites"),
    Case("csv_bad_wkt", csv_bad_wkt, "is not valid WKT", {"crs": "EPSG:4490"}),
    Case("gpkg_two_layers_no_choice", two_layer_gpkg, "choose one with --layer-name"),
    Case("gpkg_unknown_layer", two_layer_gpkg, "has no layer 'c'", {"layer_name": "c"}),
    Case("not_a_geopackage", not_gpkg, "GeoPackage"),
    Case("not_an_xlsx", not_xlsx, "not a readable Excel"),
    Case("null_geometry", null_geometry, "has no geometry"),
    Case("no_name_column", lambda t: _gj(_frame().drop(columns=["名称"]), t), "has no name column"),
    Case("mapping_names_unknown_field", mapping_file("columns: {编号: code, 户数: families}\n"),
         "which layer 'old_compounds' does not have", {"mapping": "map.yaml"}),
    Case("upsert_without_code", lambda t: _gj(_frame().drop(columns=["编号"]), t), "has no code column",
         {"mode": "upsert"}),
    Case("utf8_shapefile_cut_column_names", lambda t: write_shapefile(_frame(), t, "u8", encoding="UTF-8"),
         "cut mid-character"),
    Case("unknown_crs", lambda t: _gj(_frame(), t), "not a CRS this toolkit understands", {"crs": "EPSG:Beijing"}),
]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input_is_refused_and_nothing_written(case: Case, io_db: str, io_conn: Any, tmp_path: Path) -> None:
    path = case.build(tmp_path)
    opts = dict(case.options)
    if "mapping" in opts:
        opts["mapping"] = tmp_path / opts["mapping"]
    before = table_state(io_conn, case.layer), side_tables_state(io_conn)
    try:
        report = run_import(io_db, case.layer, path, ImportOptions(**opts))
    except RenewalError as exc:
        text = exc.message
        import_id = exc.detail.get("import_id")
    else:
        assert report.status == "rejected", report.as_dict()
        text = " ".join([report.message or "", *(e["message"] for e in report.errors), *report.notes])
        import_id = report.import_id
        assert report.counts["added"] == report.counts["updated"] == report.counts["deleted"] == 0
    assert case.expected in text, text
    after = table_state(io_conn, case.layer), side_tables_state(io_conn)
    assert after == before
    if import_id is not None:  # the attempt is recorded, with nothing applied
        row = io_conn.execute("SELECT status, added, updated, deleted FROM renewal.imports WHERE id = %s",
                              (import_id,)).fetchone()
        assert row is not None and row[0] in ("rejected", "failed") and row[1:] == (0, 0, 0)
