"""Exports in every format, and the round trip export → import into a fresh database.

The second database gets the same districts from the DataV reference; each exported file is
imported there (``replace``) and the features are compared with the source, attribute by
attribute, geometry within 1e-9° (KML keeps 12 decimals, Excel 15 digits).
"""

from __future__ import annotations

import io
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyogrio
import pytest
import shapely
from openpyxl import load_workbook
from psycopg import sql

from gis.errors import InvalidInputError
from gis.io.tabular import sheet_title
from layers.export import WRITERS, export_columns, export_features, export_to_path, whole_layer, writer_for
from layers.importer import ImportOptions, run_import
from layers.query import parse_filter
from layers.registry import get_registry
from tests.conftest import REFERENCE_DISTRICTS, create_database, drop_database, shared_file

FORMATS = ["gpkg", "zip", "geojson", "csv", "xlsx", "kml"]
LAYERS = ["old_compounds", "parking_sites", "planned_roads"]


@pytest.fixture(scope="module")
def rt_db() -> Iterator[str]:
    from api.cli.db import upgrade

    url = create_database("renewal_rt")
    try:
        upgrade(url)
        assert run_import(url, "districts", shared_file(REFERENCE_DISTRICTS),
        ImportOptions(mode="replace", crs="gcj02")).ok
        yield url
    finally:
        drop_database(url)


def _features(url: str, layer_id: str) -> dict[str, tuple[Any, ...]]:
    layer = get_registry().get(layer_id)
    cols = [c for c in export_columns(layer) if c not in ("area_mu", "length_m")]
    q = sql.SQL("SELECT {}, ST_AsBinary(geom) FROM {} ORDER BY code").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in cols), sql.Identifier("renewal", layer.table)
    )
    with psycopg.connect(url) as conn:
        return {r[0]: r for r in conn.execute(q).fetchall()}


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("layer_id", LAYERS)
def test_round_trip(
    layer_id: str, ext: str, db_url: str, demo_loaded: dict[str, int], rt_db: str, tmp_path: Path
) -> None:
    # exported from the pristine session demo, which no import test writes to
    out = tmp_path / f"{layer_id}.{ext}"
    count = export_to_path(db_url, layer_id, out)
    crs = "EPSG:4490" if ext in ("csv", "xlsx") else None
    report = run_import(rt_db, layer_id, out, ImportOptions(mode="replace", crs=crs))
    assert report.status == "applied", report.as_dict()
    assert report.unmapped_columns == []
    src, dst = _features(db_url, layer_id), _features(rt_db, layer_id)
    assert len(src) == len(dst) == count
    for code, row in src.items():
        other = dst[code]
        assert row[:-1] == other[:-1], code
        a, b = shapely.from_wkb(row[-1]), shapely.from_wkb(other[-1])
        assert shapely.hausdorff_distance(a, b) < 1e-9, code


@pytest.mark.parametrize("ext", ["geojson", "gpkg"])
def test_gcj02_export_shifts_and_comes_back(ext: str, io_db: str, rt_db: str, tmp_path: Path) -> None:
    # GeoPackage is streamed in batches (shifted batch by batch), GeoJSON goes through the frame
    out = tmp_path / f"gcj.{ext}"
    export_to_path(io_db, "parking_sites", out, crs="gcj02", batch_rows=3)
    gcj = pyogrio.read_dataframe(out)
    src = _features(io_db, "parking_sites")
    first = shapely.from_wkb(src[gcj.loc[0, "code"]][-1])
    shift = gcj.geometry.iloc[0].distance(first)
    assert 0.002 < shift < 0.01  # a few hundred metres, as GCJ-02 is
    report = run_import(rt_db, "parking_sites", out,
        ImportOptions(mode="replace", crs="gcj02"))
    assert report.status == "applied"
    back = _features(rt_db, "parking_sites")
    for code, row in src.items():
        assert shapely.from_wkb(back[code][-1]).distance(shapely.from_wkb(row[-1])) < 1e-7


def test_filtered_gbk_shapefile(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    out = tmp_path / "started.zip"
    layer = get_registry().get("old_compounds")
    query = whole_layer(layer, parse_filter(layer, "status = 'started' AND households > 500"))
    n = export_to_path(io_db, query, out, encoding="GBK")
    expected = io_conn.execute(
        "SELECT count(*) FROM renewal.old_compounds WHERE status = 'started' AND households > 500"
    ).fetchone()[0]
    assert n == expected > 0
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        assert names == [f"old_compounds.{e}" for e in ("cpg", "dbf", "prj", "shp", "shx")]
        assert zf.read("old_compounds.cpg").decode().strip() == "GBK"
        first = io_conn.execute(
            "SELECT name FROM renewal.old_compounds WHERE status = 'started' AND households > 500 ORDER BY id LIMIT 1"
        ).fetchone()[0]
        assert first.encode("gbk") in zf.read("old_compounds.dbf")


def test_xlsx_and_csv_ledgers(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    layer = get_registry().get("vacated_land")
    xlsx, csv = tmp_path / "v.xlsx", tmp_path / "v.csv"
    export_to_path(io_db, "vacated_land", xlsx)
    export_to_path(io_db, "vacated_land", csv)
    ws = load_workbook(xlsx, read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    labels = layer.labels
    assert list(rows[0]) == [labels[c] for c in export_columns(layer)] + ["WKT"]
    db = io_conn.execute(
        "SELECT code, status, round(area_mu::numeric, 2)::float FROM renewal.vacated_land ORDER BY id"
    ).fetchall()
    assert len(rows) - 1 == len(db)
    status_label = {s.code: s.label for s in layer.lifecycle.statuses}  # type: ignore[union-attr]
    idx_status, idx_area = export_columns(layer).index("status"), export_columns(layer).index("area_mu")
    for row, (code, status, area) in zip(rows[1:], db, strict=True):
        assert row[0] == code and row[idx_status] == status_label[status] and row[idx_area] == area
    data = csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and labels["former_owner"].encode() in data


def test_kml_refuses_projected_crs(io_db: str, tmp_path: Path) -> None:
    from gis.errors import CRSError

    with pytest.raises(CRSError, match="longitude/latitude"):
        export_to_path(io_db, "parking_sites", tmp_path / "p.kml", crs="EPSG:4547")


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "csv", "xlsx", "kml", "geojson"])
def test_items_endpoint_formats_honour_filters(fmt: str, client: Any, conn: Any) -> None:
    params = {"f": fmt, "filter": "status = 'completed' AND built_year < 1990", "bbox": "114.40,37.95,114.60,38.10"}
    r = client.get("/collections/old_compounds/items", params=params)
    assert r.status_code == 200, r.text
    expected = conn.execute(
        "SELECT count(*) FROM renewal.old_compounds WHERE status = 'completed' AND built_year < 1990 AND "
        "ST_Intersects(geom, ST_MakeEnvelope(114.40, 37.95, 114.60, 38.10, 4490))"
    ).fetchone()[0]
    assert int(r.headers["x-feature-count"]) == expected > 0
    assert "attachment" in r.headers["content-disposition"]
    if fmt == "gpkg":
        path = Path(r.headers["content-disposition"].split('"')[1])
        assert path.suffix == ".gpkg"
        df = pyogrio.read_dataframe(io.BytesIO(r.content))
        assert len(df) == expected


def test_api_gpkg_download_matches_the_database(client: Any, conn: Any) -> None:
    # filter + sort + limit + projected crs through the streamed path: the file holds exactly the
    # rows the database selects, in that order, with their Chinese names and transformed geometry
    params = {"f": "gpkg", "filter": "status = 'completed'", "sortby": "-built_year", "limit": "25",
              "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}
    r = client.get("/collections/old_compounds/items", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    assert r.headers["content-disposition"] == 'attachment; filename="old_compounds.gpkg"'
    assert int(r.headers["content-length"]) == len(r.content)
    expected = conn.execute(
        "SELECT code, name, ST_AsBinary(ST_Transform(geom, 3857)) FROM renewal.old_compounds "
        "WHERE status = 'completed' ORDER BY built_year DESC NULLS LAST, id LIMIT 25"
    ).fetchall()
    assert int(r.headers["x-feature-count"]) == len(expected) == 25
    df = pyogrio.read_dataframe(io.BytesIO(r.content))
    assert pyogrio.read_info(io.BytesIO(r.content))["crs"] == "EPSG:3857"
    assert list(df["code"]) == [e[0] for e in expected]
    assert list(df["name"]) == [e[1] for e in expected] and any(not n.isascii() for n in df["name"])
    assert all(g.equals_exact(shapely.from_wkb(bytes(e[2])), 1e-6) for g, e in zip(df.geometry, expected, strict=True))


def test_api_gpkg_download_streams_in_batches(
    client: Any, conn: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the API runs the CLI's streaming core: rows arrive in batches of STREAM_BATCH_ROWS (never all
    # at once), and the temporary file is gone once the response is sent
    import tempfile

    import layers.export
    from api.routers import exports

    sizes: list[int] = []
    real = layers.export.record_batch

    def recording(schema: Any, rows: Any) -> Any:
        sizes.append(len(rows))
        return real(schema, rows)

    monkeypatch.setattr(exports, "STREAM_BATCH_ROWS", 7)
    monkeypatch.setattr(layers.export, "record_batch", recording)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = client.get("/collections/old_compounds/items", params={"f": "gpkg", "filter": "built_year < 2000"})
    assert r.status_code == 200, r.text
    expected = conn.execute("SELECT count(*) FROM renewal.old_compounds WHERE built_year < 2000").fetchone()[0]
    assert int(r.headers["x-feature-count"]) == sum(sizes) == expected > 3 * 7
    assert max(sizes) == 7 and len(sizes) == -(-expected // 7)
    assert pyogrio.read_info(io.BytesIO(r.content))["features"] == expected
    assert list(tmp_path.iterdir()) == []


def test_api_import_upload_and_record(io_db: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.cli.users import add_user
    from tests.conftest import api_settings
    from tests.fixtures.io_files import parking_ledger_rows, write_xlsx_ledger

    key = add_user(io_db, "io_admin", "admin", [])
    viewer = add_user(io_db, "io_viewer", "viewer", [])
    rows = [{**r, "编号": r["编号"].replace("XLSX", "API")} for r in parking_ledger_rows(4)]
    xlsx = write_xlsx_ledger(rows, tmp_path / "api.xlsx")
    with TestClient(create_app(api_settings(io_db))) as c:
        files = {"file": ("停车场.xlsx", xlsx.read_bytes())}
        denied = c.post(
            "/collections/parking_sites/imports", files=files, data={"crs": "EPSG:4490"}, headers={"X-API-Key": viewer}
        )
        assert denied.status_code == 403
        dry = c.post(
            "/collections/parking_sites/imports",
            files=files,
            data={"crs": "EPSG:4490", "dry_run": "true"},
            headers={"X-API-Key": key},
        )
        assert dry.status_code == 200 and dry.json()["status"] == "dry_run" and dry.json()["counts"]["added"] == 4
        r = c.post(
            "/collections/parking_sites/imports", files=files, data={"crs": "EPSG:4490"}, headers={"X-API-Key": key}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["counts"]["added"] == 4 and body["file_name"] == "停车场.xlsx"
        rec = c.get(r.headers["location"], headers={"X-API-Key": key})
        assert rec.status_code == 200
        assert rec.json()["actor"] == "io_admin" and rec.json()["channel"] == "api" and rec.json()["added"] == 4
        again = c.post(
            "/collections/parking_sites/imports", files=files, data={"crs": "EPSG:4490"}, headers={"X-API-Key": key}
        )
        assert again.status_code == 422 and again.json()["error_counts"] == {"code_exists": 4}
        nocrs = c.post("/collections/parking_sites/imports", files=files, headers={"X-API-Key": key})
        assert nocrs.status_code == 400 and "--crs" in nocrs.json()["detail"]
        assert isinstance(nocrs.json()["import_id"], int)
        missing = c.get("/collections/parking_sites/imports/999999", headers={"X-API-Key": key})
        assert missing.status_code == 404


def test_gpkg_streams_in_batches(db_url: str, demo_loaded: dict[str, int], tmp_path: Path) -> None:
    # a few rows per batch: the file holds every feature once, in order, equal to the one-shot
    # file the items endpoint builds (same columns, types, values, geometry)
    layer = get_registry().get("old_compounds")
    out = tmp_path / "oc.gpkg"
    count = export_to_path(db_url, "old_compounds", out, batch_rows=7)
    src = _features(db_url, "old_compounds")
    assert count == len(src) > 3 * 7
    streamed = pyogrio.read_dataframe(out)
    info = pyogrio.read_info(out)
    assert info["layer_name"] == "old_compounds" and info["geometry_type"] == layer.geometry_type
    assert info["crs"] == "EPSG:4490" and list(info["fields"]) == export_columns(layer)
    with psycopg.connect(db_url) as conn:
        in_order = [r[0] for r in conn.execute("SELECT code FROM renewal.old_compounds ORDER BY id")]
        data, n = export_features(conn, whole_layer(layer), "gpkg")
    assert list(streamed["code"]) == in_order
    one_shot = pyogrio.read_dataframe(io.BytesIO(data))
    assert n == count and pyogrio.read_info(io.BytesIO(data))["dtypes"].tolist() == info["dtypes"].tolist()
    assert streamed.drop(columns="geometry").equals(one_shot.drop(columns="geometry"))
    assert all(a.equals_exact(b, 0) for a, b in zip(streamed.geometry, one_shot.geometry, strict=True))
    for _, row in streamed.iterrows():
        assert row["name"] == src[row["code"]][1]  # Chinese text intact
    # GeoPackage 1.2, which Debian's GDAL 3.6 (QGIS 3.22) opens without "may only be partially supported"
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (10200,)
    ogrinfo = subprocess.run(["ogrinfo", "-so", "-al", str(out)], capture_output=True, text=True, check=True)
    assert "partially supported" not in ogrinfo.stdout + ogrinfo.stderr and f"Feature Count: {count}" in ogrinfo.stdout


def test_gpkg_stream_of_no_features(db_url: str, demo_loaded: dict[str, int], tmp_path: Path) -> None:
    layer = get_registry().get("old_compounds")
    out = tmp_path / "none.gpkg"
    assert export_to_path(db_url, whole_layer(layer, parse_filter(layer, "households < 0")), out) == 0
    info = pyogrio.read_info(out)
    assert info["features"] == 0 and list(info["fields"]) == export_columns(layer)
    assert info["geometry_type"] == layer.geometry_type


def test_gpkg_stream_failure_keeps_the_old_file(tmp_path: Path) -> None:
    # the fetch fails in the prefetch thread (no layer tables in this database): the database's
    # error reaches the caller (not GDAL's "error in stream"), out keeps its content, no temp file stays
    url = create_database("renewal_export_nolayers")
    try:
        out = tmp_path / "old.gpkg"
        out.write_bytes(b"previous export")
        with pytest.raises(psycopg.errors.UndefinedTable):
            export_to_path(url, "old_compounds", out, batch_rows=5)
        assert out.read_bytes() == b"previous export"
        assert [p.name for p in tmp_path.iterdir()] == ["old.gpkg"]
    finally:
        drop_database(url)


def test_export_writer_from_name() -> None:
    assert writer_for("out.zip").name == "shp" and writer_for("xlsx").extension == ".xlsx"
    assert writer_for("a/b/台账.CSV").name == "csv" and writer_for("x.json").name == "geojson"
    with pytest.raises(InvalidInputError, match="Cannot export to 'drawing.dwg'"):
        writer_for("drawing.dwg")


@pytest.mark.parametrize(("fmt", "slow"), [("gpkg", "_write_temp"), ("xlsx", "build_file")])
@pytest.mark.parametrize("limit", [1, 3])
def test_downloads_wait_for_a_free_slot(db_url: str, demo_loaded: dict[str, int], monkeypatch: pytest.MonkeyPatch,
                                        limit: int, fmt: str, slow: str) -> None:
    """At most RENEWAL_EXPORT_CONCURRENCY downloads are written at once per worker, streamed (GeoPackage) or
    built in memory (Excel); the others wait, then succeed."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from api.routers import exports
    from tests.api.edit_support import make_client

    running, peak, lock = 0, 0, threading.Lock()
    original = getattr(exports, slow)

    def slowed(*args: Any) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.8)
            return original(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(exports, slow, slowed)
    with make_client(db_url, export_concurrency=limit) as c, ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: c.get("/collections/districts/items", params={"f": fmt}).status_code,
                              range(4)))
    assert codes == [200] * 4
    assert peak <= limit, f"{peak} downloads were written at once with a limit of {limit}"
    assert peak == 1 if limit == 1 else peak >= 2  # without the limit they do overlap (the check can fail)


def test_every_layer_downloads_in_every_format(client: Any) -> None:
    """Each registry layer, in each download format, through the API: a file, never a 500 (a layer titled
    "宗地/地块" once broke the Excel sheet name); Excel sheets are named after the layer's title."""
    for layer in get_registry():
        for fmt in WRITERS:
            r = client.get(f"/collections/{layer.id}/items", params={"f": fmt, "limit": 3})
            assert r.status_code == 200, (layer.id, fmt, r.status_code, r.text[:300])
            assert int(r.headers["x-feature-count"]) >= 1, (layer.id, fmt)
            if fmt == "xlsx":
                wb = load_workbook(io.BytesIO(r.content), read_only=True)
                assert wb.sheetnames == [sheet_title(layer.title)]
    assert sheet_title("宗地/地块") == "宗地／地块"
