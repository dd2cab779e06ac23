"""Vector tiles: content vs SQL (decoded by GDAL's MVT driver), zoom ranges, attributes, ETag/304, invalidation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import morecantile
import psycopg
import pytest
from psycopg import sql

from api.routers.tiles import QUANTISE_MIN_ZOOM, _has_label_points, _tile_geometry, tile_columns
from layers.overview import shows_overview
from layers.registry import get_registry
from layers.styles import label_points

REG = get_registry()
TMS = morecantile.tms.get("WebMercatorQuad")
CENTRE = (114.50, 38.04)

pytestmark = pytest.mark.gdal


def tile_at(z: int, lon: float = CENTRE[0], lat: float = CENTRE[1]) -> tuple[int, int, int]:
    t = TMS.tile(lon, lat, z)
    return z, t.x, t.y


def decode(tmp_path: Path, data: bytes, z: int, x: int, y: int) -> dict[str, dict[str, Any]]:
    """Layers -> {count, fields} as GDAL's MVT driver reads them."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("gdal-bin (ogrinfo) is not installed")
    path = tmp_path / f"{z}_{x}_{y}.mvt"
    path.write_bytes(data)
    out = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", "-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    layers: dict[str, dict[str, Any]] = {}
    for block in out.split("Layer name: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        count = int(re.search(r"Feature Count: (\d+)", block).group(1))  # type: ignore[union-attr]
        fields = re.findall(r"^(\w+): (?:String|Integer|Integer64|Real)", block, re.M)
        layers[name] = {"count": count, "fields": set(fields)}
    return layers


def sql_count(conn: psycopg.Connection, table: str, z: int, x: int, y: int, margin: float) -> int:
    stmt = sql.SQL(
        "SELECT count(*) FROM {} "
        "WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s, margin => %s))"
    ).format(sql.Identifier("renewal", table))
    return int(conn.execute(stmt, (z, x, y, margin)).fetchone()[0])


@pytest.mark.parametrize("layer_id", ["old_compounds", "parking_sites", "land_parcels", "planned_roads"])
def test_collection_tile_matches_sql(client: Any, conn: psycopg.Connection, tmp_path: Path, layer_id: str) -> None:
    z, x, y = tile_at(14)
    r = client.get(f"/collections/{layer_id}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    lo = sql_count(conn, layer_id, z, x, y, 0.0)
    hi = sql_count(conn, layer_id, z, x, y, 64 / 4096)
    if hi == 0:
        assert r.status_code == 204
        return
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(tmp_path, r.content, z, x, y)
    points = _has_label_points(REG.get(layer_id), z)
    assert set(layers) - {points} == {layer_id}  # and its label points, tested below
    assert lo <= layers[layer_id]["count"] <= hi
    layer = REG.get(layer_id)
    assert set(tile_columns(layer)) <= layers[layer_id]["fields"]


def test_zoom_ranges_from_registry(client: Any, tmp_path: Path) -> None:
    """Layers appear from their min_zoom; land parcels from their overview zoom (layers/overview.py)."""
    parcels = REG.get("land_parcels")
    assert parcels.overview_min_zoom is not None
    for z in (parcels.overview_min_zoom - 1, parcels.min_zoom - 1, parcels.min_zoom + 1):
        z, x, y = tile_at(z)
        r = client.get(f"/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert r.status_code == 200
        names = set(decode(tmp_path, r.content, z, x, y))
        visible = {layer.id for layer in REG if layer.min_zoom <= z <= layer.max_zoom or shows_overview(layer, z)}
        labelled = {p for layer in REG if layer.id in visible and (p := _has_label_points(layer, z))}
        assert names <= visible | labelled
        assert ("land_parcels" in names) == (z >= parcels.overview_min_zoom)
    z, x, y = tile_at(parcels.overview_min_zoom - 1)
    r = client.get(f"/collections/land_parcels/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert r.status_code == 404 and r.json()["minzoom"] == parcels.overview_min_zoom  # outside its zooms: not a tile
    assert "zoom" in r.json()["detail"]
    z, x, y = tile_at(parcels.max_zoom + 1)
    assert client.get(f"/collections/land_parcels/tiles/WebMercatorQuad/{z}/{x}/{y}").status_code == 404


def test_multi_layer_selection(client: Any, tmp_path: Path) -> None:
    z, x, y = tile_at(13)
    r = client.get(f"/tiles/WebMercatorQuad/{z}/{x}/{y}", params={"layers": "districts,old_compounds"})
    names = set(decode(tmp_path, r.content, z, x, y))
    assert names - {"districts:label", "old_compounds:label"} == {"districts", "old_compounds"}


def test_tilejson(client: Any) -> None:
    tj = client.get("/collections/old_compounds/tiles/WebMercatorQuad/tilejson.json").json()
    layer = REG.get("old_compounds")
    assert tj["tilejson"] == "3.0.0" and tj["minzoom"] == layer.min_zoom and tj["maxzoom"] == layer.max_zoom
    assert tj["tiles"][0].endswith("/collections/old_compounds/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert set(tj["vector_layers"][0]["fields"]) == {"id", *tile_columns(layer)}
    multi = client.get("/tiles/WebMercatorQuad/tilejson.json").json()
    points = {layer.id: p[0] for layer in REG if (p := label_points(layer))}
    assert [v["id"] for v in multi["vector_layers"]] == [i for lid in REG.ids for i in (lid, points.get(lid)) if i]
    assert points and all(v["fields"].keys() <= {"id", "name", "status"} for v in multi["vector_layers"]
                          if v["id"] in points.values())
    sets = client.get("/collections/old_compounds/tiles").json()
    assert sets["tilesets"][0]["dataType"] == "vector"


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/WebMercatorQuad/3/8/0",
        "/tiles/WebMercatorQuad/3/0/8",
        "/tiles/WebMercatorQuad/25/0/0",
        "/tiles/WebMercatorQuad/-1/0/0",
        "/tiles/WebMercatorQuad/a/b/c",
        "/tiles/OtherTMS/3/1/1",
        "/collections/nosuch/tiles/WebMercatorQuad/3/1/1",
        "/collections/old_compounds/tiles/WebMercatorQuad/3/9/9",
    ],
)
def test_bad_tiles_404(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_unknown_layer_in_list_400(client: Any) -> None:
    assert client.get("/tiles/WebMercatorQuad/3/1/1", params={"layers": "nope"}).status_code == 400


def test_etag_304_and_invalidation_after_update(client: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    fid, lon, lat, old_name = conn.execute(
        "SELECT id, ST_X(geom), ST_Y(geom), name FROM renewal.parking_sites ORDER BY id LIMIT 1"
    ).fetchone()
    z, x, y = tile_at(15, lon, lat)
    url = f"/collections/parking_sites/tiles/WebMercatorQuad/{z}/{x}/{y}"
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    new_name = old_name + "（已更新）"
    try:
        conn.execute("UPDATE renewal.parking_sites SET name = %s WHERE id = %s", (new_name, fid))
        # a writer that bypasses the API sends its WAL position like an API client echoing Renewal-LSN
        # (without it the change arrives by NOTIFY within milliseconds: tests/api/test_workers.py)
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        after = client.get(url, headers={"If-None-Match": etag, "Renewal-LSN": lsn})
        assert after.status_code == 200 and after.headers["etag"] != etag
        assert new_name.encode() in after.content and new_name.encode() not in first.content
        multi = client.get(f"/tiles/WebMercatorQuad/{z}/{x}/{y}", params={"layers": "parking_sites"},
                           headers={"Renewal-LSN": lsn})
        assert new_name.encode() in multi.content
    finally:
        conn.execute("UPDATE renewal.parking_sites SET name = %s WHERE id = %s", (old_name, fid))
    lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
    restored = client.get(url, headers={"Renewal-LSN": lsn})
    assert restored.headers["etag"] not in (etag, after.headers["etag"])
    assert old_name.encode() in restored.content
    # a URL pinned to the current version may be cached
    token = restored.headers["etag"].removeprefix('W/"').rstrip('"')
    pinned = client.get(url, params={"v": token})
    assert pinned.headers["cache-control"].startswith("public, max-age=")


@pytest.mark.parametrize("layer_id", ["land_parcels", "planned_roads", "districts", "old_compounds"])
@pytest.mark.parametrize("dz", [0, 2])
def test_tile_same_features_as_explicit_null_filter(
    client: Any, conn: psycopg.Connection, tmp_path: Path, layer_id: str, dz: int
) -> None:
    """The tile SQL has no ``WHERE geom IS NOT NULL`` (it doubled the ST_AsMVTGeom work): ST_AsMVT must skip
    clipped-away rows itself, so the served tile has exactly the features of the explicitly filtered query."""
    layer = REG.get(layer_id)
    z, x, y = tile_at(min(max(14, layer.min_zoom) + dz, layer.max_zoom))
    r = client.get(f"/collections/{layer_id}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    tol = 40075016.685578488 / (512 * 2**z)
    geom = "ST_Transform(t.geom, 3857)"
    if layer.geometry_type not in ("Point", "MultiPoint"):
        geom = f"ST_Simplify({geom}, %(tol)s, true)"
    ref = sql.SQL(
        "SELECT ST_AsMVT(m, %(name)s, 4096, 'geom', 'id') FROM (SELECT t.id, t.code, "
        "ST_AsMVTGeom(" + geom + ", ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom "
        "FROM {} AS t WHERE ST_Intersects(ST_Transform(t.geom, 3857), "
        "ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096))) AS m WHERE m.geom IS NOT NULL"
    ).format(sql.Identifier("renewal", layer.table))
    expected = conn.execute(ref, {"name": layer_id, "z": z, "x": x, "y": y, "tol": tol}).fetchone()[0]
    if not expected:
        assert r.status_code == 204
        return
    assert r.status_code == 200
    got = decode(tmp_path, r.content, z, x, y)[layer_id]["count"]
    (tmp_path / "ref").mkdir()
    want = decode(tmp_path / "ref", bytes(expected), z, x, y)[layer_id]["count"]
    assert got == want > 0


@pytest.mark.parametrize(("layer_id", "dz"), [("land_parcels", 2), ("land_parcels", 3), ("old_compounds", 1),
                                              ("pipe_renewals", 5), ("parking_sites", 5)])
def test_quantised_geometry_matches_mvtgeom(
    demo_loaded: dict[str, int], conn: psycopg.Connection, layer_id: str, dz: int
) -> None:
    """From QUANTISE_MIN_ZOOM, geometry is mapped from degrees and features inside the tile skip ST_AsMVTGeom:
    every feature, inside or crossing the edge, has the reference's shape (within rounding) and rings.

    The reference is ST_AsMVTGeom of the projected geometry, without simplification (from that zoom
    nothing is simplified). Polygons must keep MVT's ring orientation, or a renderer reads exteriors as holes.
    """
    layer = REG.get(layer_id)
    source: sql.Composable = sql.Identifier("renewal", layer.table)
    if layer.geometry_type == "MultiLineString":  # lines of a few km cross every z15 tile: their first 5 %
        source = sql.SQL("(SELECT id, ST_Multi(ST_LineSubstring(ST_GeometryN(geom, 1), 0, 0.05)) AS geom FROM {})"
                         ).format(source)
    lon, lat = conn.execute(  # around the layer's most compact feature, so some lie wholly inside the tile
        sql.SQL("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM {} AS s "
                "ORDER BY ST_XMax(geom) - ST_XMin(geom) + ST_YMax(geom) - ST_YMin(geom), id LIMIT 1) AS f"
                ).format(source)).fetchone()
    z, x, y = tile_at(max(QUANTISE_MIN_ZOOM, layer.min_zoom + dz), lon, lat)
    params: dict[str, Any] = {"z": z, "x": x, "y": y}
    stmt = sql.SQL(
        "SELECT a IS NULL, b IS NULL, inside, ST_HausdorffDistance(a, b), ST_Area(a), ST_Area(b), "
        "ST_Length(a) + ST_Perimeter(a), ST_Length(b) + ST_Perimeter(b), ST_IsPolygonCW(a), ST_IsPolygonCW(b), "
        "ST_NumGeometries(a), ST_NumGeometries(b) "
        "FROM (SELECT {g} AS a, ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), "
        "4096, 64, true) AS b, t.geom @ ST_MakeEnvelope(%(q_w)s, %(q_s)s, %(q_e)s, %(q_n)s, 4490) AS inside "
        "FROM {t} AS t WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4490)"
        ") AS q"
    )
    g = _tile_geometry(layer, z, x, y, params)
    rows = conn.execute(stmt.format(g=g, t=source), params).fetchall()
    inside = [r for r in rows if r[2]]
    assert len(inside) >= (3 if layer_id == "land_parcels" else 1), f"too few features inside tile {z}/{x}/{y}"
    if layer_id == "land_parcels":
        assert len(rows) - len(inside) >= 3, "no parcel crosses the tile's edge"
    for a_null, b_null, _, dist, area_a, area_b, len_a, len_b, cw_a, cw_b, parts_a, parts_b in rows:
        assert a_null == b_null
        if a_null:
            continue
        assert dist <= 1.5  # both rounded to whole units; the affine map errs by < 0.1 unit here
        assert parts_a == parts_b
        if layer.geometry_type == "MultiPolygon":
            assert cw_a == cw_b
            assert abs(area_a - area_b) <= 0.02 * area_b + len_b
        elif layer.geometry_type == "MultiLineString":
            assert abs(len_a - len_b) <= 0.01 * len_b + 2


def label_features(tmp_path: Path, data: bytes, z: int, x: int, y: int, name: str) -> list[dict[str, Any]]:
    """The features of MVT layer ``name`` as GeoJSON in longitude/latitude, as GDAL's MVT driver reads them."""
    path = tmp_path / f"labels_{z}_{x}_{y}.mvt"
    path.write_bytes(data)
    out = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", "-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}",
         "-t_srs", "EPSG:4326", str(path), name],
        capture_output=True, text=True, check=True,
    ).stdout
    return list(json.loads(out)["features"]) if out.strip() else []


def test_each_polygon_name_is_in_one_tile_once(client: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    """MapLibre labels a polygon in every tile it crosses: a district over four tiles had its name four times
    on the map. Each named district now has one label point (layers/styles.label_points) in the whole set of
    tiles covering the city, inside its own polygon, with its name."""
    districts = REG.get("districts")
    points = label_points(districts)
    assert points is not None
    name, first, _below = points
    z = first + 1
    west, south, east, north = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM renewal.districts) AS x").fetchone()
    tiles = list(TMS.tiles(west, south, east, north, [z]))
    seen: dict[int, list[tuple[str, float, float]]] = {}
    for t in tiles:
        r = client.get(f"/collections/districts/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}")
        assert r.status_code in (200, 204)
        if r.status_code == 200 and name in decode(tmp_path, r.content, z, t.x, t.y):
            for f in label_features(tmp_path, r.content, z, t.x, t.y, name):
                lon, lat = f["geometry"]["coordinates"]
                seen.setdefault(int(f["properties"]["mvt_id"]), []).append((f["properties"]["name"], lon, lat))
    rows = conn.execute(
        "SELECT id, name, (SELECT count(*) FROM unnest(%s::int[], %s::int[]) AS tl(x, y) "
        "  WHERE ST_Intersects(ST_Transform(d.geom, 3857), ST_TileEnvelope(%s, tl.x, tl.y))) "
        "FROM renewal.districts AS d WHERE name <> ''",
        ([t.x for t in tiles], [t.y for t in tiles], z)).fetchall()
    assert any(crossed > 1 for _, _, crossed in rows)  # the case that drew a name more than once
    assert {i: len(v) for i, v in seen.items()} == {i: 1 for i, _, _ in rows}
    for i, label, _crossed in rows:
        (got, lon, lat), = seen[i]
        assert got == label
        inside = conn.execute(
            "SELECT ST_DWithin(geom::geography, ST_SetSRID(ST_Point(%s, %s), 4490)::geography, 30) "
            "FROM renewal.districts WHERE id = %s", (lon, lat, i)).fetchone()[0]
        assert inside, (label, lon, lat)
