"""Geometries with arcs (CAD and ArcGIS data: CircularString, CurvePolygon, MultiSurface) import as straight segments.

shapely reads no arcs, so a GeoPackage or a WKT ledger with one crashed the importer (a 500
through the API). GDAL approximates each arc with straight segments, as ogr2ogr and QGIS do;
the report says so. The files are made here: a CSV with WKT, written to a GeoPackage by
``ogr2ogr`` as ArcGIS or QGIS would write it.
"""

from __future__ import annotations

import functools
import math
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely

import layers.importer.pipeline as pipeline
from gis.io import read_source, stream_source
from layers.importer import ImportOptions, run_import
from tests.api.edit_support import auth, role_keys
from tests.api.server_support import serve
from tests.fixtures.io_files import compound_frame
from tests.layers.conftest import side_tables_state, table_state

R = 0.001
"""Radius of the round compounds, in degrees."""


def _circle(cx: float, cy: float) -> str:
    """A round compound: one CurvePolygon of two half-circle arcs, in a MultiSurface."""
    return (f"MULTISURFACE(CURVEPOLYGON(CIRCULARSTRING({cx - R} {cy}, {cx} {cy + R}, {cx + R} {cy}, "
            f"{cx} {cy - R}, {cx - R} {cy})))")


def _d_shape(cx: float, cy: float) -> str:
    """A compound with one straight and one arc edge: a CompoundCurve ring."""
    return (f"CURVEPOLYGON(COMPOUNDCURVE(CIRCULARSTRING({cx - R} {cy}, {cx} {cy + R}, {cx + R} {cy}), "
            f"({cx + R} {cy}, {cx - R} {cy})))")


def _rows(n: int, curved: dict[int, str], tin: int | None = None, odd: dict[int, str] | None = None,
          seed: int = 29) -> list[dict[str, Any]]:
    """``n`` compounds as WKT; rows in ``curved`` with arcs ('circle' or 'd'), row ``tin`` a TIN, ``odd`` as given."""
    # a seed of their own: compounds of other tests in the same database must not share their geometries
    frame = compound_frame(n, prefix="ARC", seed=seed)
    out = []
    for i in range(n):
        minx, miny, maxx, maxy = frame.geometry.iloc[i].bounds
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        wkt = frame.geometry.iloc[i].wkt
        if i in curved:
            wkt = _circle(cx, cy) if curved[i] == "circle" else _d_shape(cx, cy)
        if i == tin:
            wkt = f"TIN Z ((({cx} {cy} 0, {cx + R} {cy} 0, {cx} {cy + R} 0, {cx} {cy} 0)))"
        wkt = (odd or {}).get(i, wkt)
        row = {k: frame[k].iloc[i] for k in frame.columns if k != "geometry"}
        out.append({"WKT": wkt, **row, "cx": cx, "cy": cy})
    return out


def _csv(rows: list[dict[str, Any]], path: Path) -> Path:
    cols = [c for c in rows[0] if c not in ("cx", "cy")]
    lines = [",".join(cols)] + [",".join(f'"{r[c]}"' for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _gpkg(rows: list[dict[str, Any]], path: Path, geometry_type: str = "MULTISURFACE") -> Path:
    """The rows in a GeoPackage that keeps their arcs, written by ``ogr2ogr`` as a GIS would write it."""
    subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(path), str(_csv(rows, path.with_suffix(".csv"))), "-oo",
         "GEOM_POSSIBLE_NAMES=WKT", "-oo", "KEEP_GEOM_COLUMNS=NO", "-a_srs", "EPSG:4490", "-nln", "old_compounds",
         "-nlt", geometry_type],
        check=True, capture_output=True,
    )
    return path


def _area(conn: Any, wkt: str) -> float:
    """Geodesic area (m²) of the arc geometry as PostGIS straightens it finely (0.1° of arc a segment)."""
    row = conn.execute("SELECT ST_Area(ST_CurveToLine(ST_GeomFromText(%s, 4490), 0.1 * pi() / 180, 2)::geography)",
                       (wkt,)).fetchone()
    return float(row[0])


def test_arcs_in_a_later_batch_stay_on_their_rows(tmp_path: Path) -> None:
    """A generic-type layer with arcs only in its second batch: each straightened geometry is its own row's."""
    rows = _rows(7, {4: "circle", 5: "d"}, tin=6)
    path = _gpkg(rows, tmp_path / "mixed.gpkg", geometry_type="GEOMETRY")
    stream = stream_source(path, batch_rows=3)
    batches = list(stream.batches())
    assert [b.linearized for b in batches] == [0, 2, 0]
    geoms = [g for b in batches for g in b.geometry]
    for i, row in enumerate(rows[:6]):
        assert geoms[i] is not None and geoms[i].geom_type in ("Polygon", "MultiPolygon")
        assert geoms[i].representative_point().distance(shapely.Point(row["cx"], row["cy"])) < 0.002, i
    assert geoms[6] is None
    assert [(r, "could not be read") for r, m in stream.row_errors if "could not be read" in m] == [
        (6, "could not be read")]
    circle = geoms[4]
    assert shapely.get_num_coordinates(circle) > 40  # straight segments, not the 5 control points
    assert abs(circle.area / (math.pi * R * R) - 1) < 0.002
    whole = read_source(path)  # the whole-file read (used for layers with date-time fields) agrees
    assert all((a is None and b is None) or a.equals(b) for a, b in zip(whole.geometry, geoms, strict=True))
    assert any(n.startswith("2 geometries of curve types") for n in whole.notes)


@pytest.mark.parametrize("fmt", ["gpkg", "csv"])
def test_arc_compounds_import_with_their_area(
    fmt: str, io_db: str, io_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(6, {1: "circle", 3: "d"}, seed=31 if fmt == "gpkg" else 37)
    for r in rows:
        r["编号"] = f"ARC-{fmt}-{r['编号']}"
    path = _gpkg(rows, tmp_path / "arcs.gpkg") if fmt == "gpkg" else _csv(rows, tmp_path / "arcs.csv")
    monkeypatch.setattr(pipeline, "stream_source", functools.partial(stream_source, batch_rows=2))
    report = run_import(io_db, "old_compounds", path, ImportOptions(crs="EPSG:4490" if fmt == "csv" else None))
    assert report.status == "applied", report.as_dict()
    assert report.counts["added"] == 6
    # a layer declared MultiSurface holds every geometry as a curve type; a ledger's cells are read one by one
    curved = 6 if fmt == "gpkg" else 2
    assert any(n.startswith(f"{curved} geometries of curve types") for n in report.notes), report.notes
    for i in (1, 3):
        got = io_conn.execute("SELECT name, area_mu * 10000 / 15, ST_GeometryType(geom), ST_NPoints(geom) "
                              "FROM renewal.old_compounds WHERE code = %s", (rows[i]["编号"],)).fetchone()
        assert got is not None and got[0] == rows[i]["名称"] and got[2] == "ST_MultiPolygon" and got[3] > 20
        assert abs(got[1] / _area(io_conn, rows[i]["WKT"]) - 1) < 0.003, (got, rows[i]["WKT"])


ODD = {
    "tin": ("TIN Z (((114.52 38.05 0, 114.521 38.05 0, 114.52 38.051 0, 114.52 38.05 0)))", "could not be read"),
    # shapely reads a ring of two corners, PostGIS refuses to: it failed the COPY (a 500), repair or not
    "two_corner_ring": ("POLYGON((114.52 38.05, 114.521 38.05, 114.52 38.05))", "cannot be repaired"),
    "unclosed_ring": ("POLYGON((114.52 38.05, 114.521 38.05, 114.521 38.051, 114.52 38.051))", "could not be read"),
}


@pytest.mark.parametrize("on_invalid", ["repair", "reject"])
@pytest.mark.parametrize("kind", list(ODD))
def test_unreadable_geometries_are_row_errors_not_crashes(
    kind: str, on_invalid: str, io_db: str, io_conn: Any, tmp_path: Path
) -> None:
    wkt, expected = ODD[kind]
    path = _gpkg(_rows(4, {1: "circle"}, odd={2: wkt}), tmp_path / f"{kind}.gpkg", geometry_type="GEOMETRY")
    before = table_state(io_conn, "old_compounds"), side_tables_state(io_conn)
    report = run_import(io_db, "old_compounds", path, ImportOptions(on_invalid=on_invalid))
    assert report.status == "rejected", report.as_dict()
    assert {e["row"] for e in report.errors if expected in e["message"]} == {3}, report.errors
    assert {e["row"] for e in report.errors} == {3}
    assert (table_state(io_conn, "old_compounds"), side_tables_state(io_conn)) == before


def test_upload_with_arcs_is_applied_over_http(io_db: str, tmp_path: Path) -> None:
    """Through the API (a real server): 201 with the note, where it was a 500; a TIN row is a 422 report."""
    rows = _rows(3, {0: "circle", 2: "d"}, seed=41)
    for r in rows:
        r["编号"] = "HTTP-" + r["编号"]
    good = _gpkg(rows, tmp_path / "good.gpkg")
    tin = _gpkg(_rows(3, {}, tin=1), tmp_path / "tin.gpkg", geometry_type="GEOMETRY")
    admin = auth(role_keys(io_db, {"admin": ("arcadm", "admin", [])}), "admin")
    with serve(io_db, workers=1) as server:
        with good.open("rb") as f:
            r = httpx.post(f"{server.url}/collections/old_compounds/imports", headers=admin, timeout=60,
                           files={"file": ("圆形小区.gpkg", f, "application/geopackage+sqlite3")})
        assert r.status_code == 201, r.text
        assert r.json()["counts"]["added"] == 3
        assert any(n.startswith("3 geometries of curve types") for n in r.json()["notes"])
        with tin.open("rb") as f:
            r = httpx.post(f"{server.url}/collections/old_compounds/imports", headers=admin, timeout=60,
                           files={"file": ("tin.gpkg", f, "application/geopackage+sqlite3")})
        assert r.status_code == 422, r.text
        assert any("could not be read" in e["message"] for e in r.json()["errors"])
