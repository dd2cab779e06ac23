"""OGC API Features Part 2 (CRS) against pyproj, and Part 3 (CQL2) against equivalent SQL."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from pyproj import Transformer

URI = {
    "CRS84": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "EPSG:4326": "http://www.opengis.net/def/crs/EPSG/0/4326",
    "EPSG:4490": "http://www.opengis.net/def/crs/EPSG/0/4490",
    "EPSG:4547": "http://www.opengis.net/def/crs/EPSG/0/4547",
    "EPSG:3857": "http://www.opengis.net/def/crs/EPSG/0/3857",
}
NORTH_FIRST = {"EPSG:4326", "EPSG:4490", "EPSG:4547"}


def expected_coords(lonlat: np.ndarray, crs: str) -> np.ndarray:
    """Independent reference: pyproj in the CRS's authority axis order (always_xy=False)."""
    if crs == "CRS84":
        return lonlat
    t = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
    x, y = t.transform(lonlat[:, 0], lonlat[:, 1])
    xy = np.column_stack([x, y])
    return xy[:, ::-1] if crs in NORTH_FIRST else xy


def storage_coords(conn: psycopg.Connection, table: str, fid: int) -> np.ndarray:
    text = conn.execute(
        sql.SQL("SELECT ST_AsGeoJSON(geom, 15) FROM {} WHERE id = %s").format(sql.Identifier("renewal", table)), (fid,)
    ).fetchone()[0]
    return shapely.get_coordinates(shapely.from_geojson(text))


@pytest.mark.parametrize("crs", list(URI))
@pytest.mark.parametrize("uri_form", [False, True])
def test_feature_in_crs_matches_pyproj(client: Any, conn: psycopg.Connection, crs: str, uri_form: bool) -> None:
    fid = conn.execute("SELECT min(id) FROM renewal.old_compounds").fetchone()[0]
    r = client.get(f"/collections/old_compounds/items/{fid}", params={"crs": URI[crs] if uri_form else crs})
    assert r.status_code == 200
    assert r.headers["content-crs"] == f"<{URI[crs]}>"
    got = shapely.get_coordinates(shapely.geometry.shape(r.json()["geometry"]))
    want = expected_coords(storage_coords(conn, "old_compounds", fid), crs)
    tol = 1e-6 if crs in ("CRS84", "EPSG:4326", "EPSG:4490") else 2e-3
    assert np.allclose(got, want, atol=tol, rtol=0)


@pytest.mark.parametrize("crs", list(URI))
def test_items_in_crs(client: Any, conn: psycopg.Connection, crs: str) -> None:
    body = client.get("/collections/parking_sites/items", params={"crs": crs, "limit": "20"}).json()
    for f in body["features"]:
        want = expected_coords(storage_coords(conn, "parking_sites", f["id"]), crs)
        tol = 1e-6 if crs in ("CRS84", "EPSG:4326", "EPSG:4490") else 2e-3
        assert np.allclose(np.array([f["geometry"]["coordinates"]]), want, atol=tol, rtol=0)


def _ids(client: Any, params: dict[str, str], layer: str = "old_compounds") -> list[int]:
    r = client.get(f"/collections/{layer}/items", params={"limit": "10000", "properties": "code", **params})
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


def _sql_ids(conn: psycopg.Connection, where: str, params: Any = None, layer: str = "old_compounds") -> list[int]:
    stmt = sql.SQL("SELECT id FROM {} WHERE " + where + " ORDER BY id").format(sql.Identifier("renewal", layer))
    return [r[0] for r in conn.execute(stmt, params).fetchall()]


BOX = (114.46, 38.01, 114.53, 38.06)


@pytest.mark.parametrize("crs", list(URI))
def test_bbox_crs(client: Any, conn: psycopg.Connection, crs: str) -> None:
    """A box given in each CRS (in its axis order) selects what the same box, densified by shapely, selects in SQL."""
    poly = shapely.segmentize(shapely.box(*BOX), 0.0005)
    if crs == "CRS84":
        bbox = BOX
        ref = poly
    else:
        t = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
        xy = shapely.get_coordinates(poly)
        x, y = t.transform(xy[:, 0], xy[:, 1])
        minx, miny, maxx, maxy = float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))
        bbox = (miny, minx, maxy, maxx) if crs in NORTH_FIRST else (minx, miny, maxx, maxy)
        back = Transformer.from_crs(crs, "EPSG:4490", always_xy=True)
        ring = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), (maxx - minx) / 64)
        rc = shapely.get_coordinates(ring)
        bx, by = back.transform(rc[:, 0], rc[:, 1])
        ref = shapely.Polygon(np.column_stack([bx, by]))
    got = _ids(client, {"bbox": ",".join(repr(v) for v in bbox), "bbox-crs": crs})
    want = _sql_ids(conn, "ST_Intersects(geom, ST_GeomFromText(%s, 4490))", (ref.wkt,))
    assert len(got) > 10
    # projected boxes: edges may differ by the densification of the two independent approximations
    assert len(set(got) ^ set(want)) <= (0 if crs in ("CRS84", "EPSG:4326", "EPSG:4490") else 2)


@pytest.mark.parametrize("crs", ["CRS84", "EPSG:4326", "EPSG:4490", "EPSG:4547", "EPSG:3857"])
def test_filter_crs(client: Any, conn: psycopg.Connection, crs: str) -> None:
    lon, lat = 114.50, 38.04
    x, y = (lon, lat) if crs == "CRS84" else Transformer.from_crs("EPSG:4490", crs, always_xy=True).transform(lon, lat)
    a, b = (y, x) if crs in NORTH_FIRST else (x, y)
    got = _ids(client, {"filter": f"S_DWITHIN(geom, POINT({a!r} {b!r}), 1500, meters)", "filter-crs": crs})
    want = _sql_ids(
        conn, "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4490)::geography, 1500)", (lon, lat)
    )
    assert got == want and len(got) > 5


CQL = [
    ("status = 'started'", "status = 'started'"),
    ("status = '已开工'", "status = 'started'"),
    ("status <> 'completed' AND households > 500", "status <> 'completed' AND households > 500"),
    ("households >= 300 OR buildings < 3", "households >= 300 OR buildings < 3"),
    ("NOT (households <= 300)", "NOT (households <= 300)"),
    ("households BETWEEN 100 AND 400", "households BETWEEN 100 AND 400"),
    ("households NOT BETWEEN 100 AND 400", "NOT (households BETWEEN 100 AND 400)"),
    ("status IN ('pending', 'started')", "status IN ('pending', 'started')"),
    ("status NOT IN ('pending', 'started')", "status NOT IN ('pending', 'started')"),
    ("name LIKE '%小区%'", "name LIKE '%%小区%%'"),
    ("name NOT LIKE '%宿舍%'", "name NOT LIKE '%%宿舍%%'"),
    ("CASEI(code) LIKE casei('ljxq-00%')", "lower(code) LIKE 'ljxq-00%%'"),
    ("renovation_year IS NULL", "renovation_year IS NULL"),
    ("renovation_year IS NOT NULL AND renovation_year = 2022", "renovation_year = 2022"),
    ("area_mu * 2 > 60", "area_mu * 2 > 60"),
    ("floor_area_m2 / households > 80", "floor_area_m2 / nullif(households, 0) > 80"),
    ("district_code = '130102' AND area_mu > 20", "district_code = '130102' AND area_mu > 20"),
    (
        "S_INTERSECTS(geom, BBOX(114.46, 38.01, 114.53, 38.06))",
        "ST_Intersects(geom, ST_MakeEnvelope(114.46, 38.01, 114.53, 38.06, 4490))",
    ),
    (
        "S_WITHIN(geom, POLYGON((114.46 38.01, 114.53 38.01, 114.53 38.06, 114.46 38.06, 114.46 38.01)))",
        "ST_Within(geom, ST_MakeEnvelope(114.46, 38.01, 114.53, 38.06, 4490))",
    ),
    (
        "S_CONTAINS(geom, POINT(114.4862 38.0418))",
        "ST_Contains(geom, ST_SetSRID(ST_MakePoint(114.4862, 38.0418), 4490))",
    ),
    (
        "S_DWITHIN(geom, POINT(114.5 38.04), 2, km)",
        "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(114.5, 38.04), 4490)::geography, 2000)",
    ),
    (
        "S_DISJOINT(geom, BBOX(114.0, 37.0, 114.5, 39.0))",
        "NOT ST_Intersects(geom, ST_MakeEnvelope(114.0, 37.0, 114.5, 39.0, 4490))",
    ),
    ("T_AFTER(updated_at, TIMESTAMP('2000-01-01T00:00:00Z'))", "updated_at > '2000-01-01T00:00:00Z'"),
    ("T_BEFORE(updated_at, DATE('2000-01-01'))", "updated_at < '2000-01-01T00:00:00Z'"),
    ("T_INTERSECTS(renovation_year, INTERVAL('2022-06-01', '2023-01-15'))", "renovation_year BETWEEN 2022 AND 2023"),
    ("T_DURING(renovation_year, INTERVAL('2021-12-31', '..'))", "renovation_year >= 2022"),
    ("updated_at > DATE('2000-01-01')", "updated_at > '2000-01-01'"),
]


@pytest.mark.parametrize(("cql", "where"), CQL)
def test_cql2_text_equals_sql(client: Any, conn: psycopg.Connection, cql: str, where: str) -> None:
    assert _ids(client, {"filter": cql}) == _sql_ids(conn, where)


def test_cql2_json_equals_sql(client: Any, conn: psycopg.Connection) -> None:
    expr = {
        "op": "and",
        "args": [
            {"op": "in", "args": [{"property": "status"}, ["pending", "started"]]},
            {
                "op": "s_intersects",
                "args": [
                    {"property": "geom"},
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [[114.46, 38.01], [114.53, 38.01], [114.53, 38.06], [114.46, 38.06], [114.46, 38.01]]
                        ],
                    },
                ],
            },
            {"op": "like", "args": [{"property": "name"}, "%区%"]},
        ],
    }
    got = _ids(client, {"filter": json.dumps(expr, ensure_ascii=False), "filter-lang": "cql2-json"})
    want = _sql_ids(
        conn,
        "status IN ('pending','started') AND name LIKE '%%区%%' AND "
        "ST_Intersects(geom, ST_MakeEnvelope(114.46, 38.01, 114.53, 38.06, 4490))",
    )
    assert got == want and got


def test_filter_combines_with_bbox_and_paging(client: Any, conn: psycopg.Connection) -> None:
    params = {"filter": "status = 'completed'", "bbox": "114.40,38.00,114.60,38.10", "limit": "97"}
    ids: list[int] = []
    url: str | None = "/collections/old_compounds/items"
    first = True
    while url:
        body = client.get(url, params=params if first else None).json()
        first = False
        ids += [f["id"] for f in body["features"]]
        url = next((lk["href"] for lk in body["links"] if lk["rel"] == "next"), None)
    assert ids == _sql_ids(
        conn, "status = 'completed' AND ST_Intersects(geom, ST_MakeEnvelope(114.40, 38.00, 114.60, 38.10, 4490))"
    )
