"""The planner's queries (/query/...) against independent SQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pyproj import Transformer

from gis.chinacrs import wgs84_to_gcj02

P = (114.50, 38.04)


def test_point_what_is_here(client: Any, conn: psycopg.Connection) -> None:
    r = client.get("/query/point", params={"lon": P[0], "lat": P[1], "distance": 500})
    assert r.status_code == 200
    body = r.json()
    pt = "ST_SetSRID(ST_MakePoint(%s, %s), 4490)"
    d = conn.execute(f"SELECT code, name FROM renewal.districts WHERE ST_Intersects(geom, {pt})", P).fetchone()
    assert (body["district"]["code"], body["district"]["name"]) == d
    z = conn.execute(f"SELECT zone FROM renewal.ring_zones WHERE ST_Intersects(geom, {pt})", P).fetchone()
    assert body["ring_zone"]["zone"] == z[0]
    parcel = conn.execute(
        f"SELECT id, land_use_code FROM renewal.land_parcels WHERE ST_Intersects(geom, {pt}) ORDER BY id LIMIT 1", P
    ).fetchone()
    assert body["land_parcel"]["id"] == parcel[0]
    assert body["land_parcel"]["properties"]["land_use_code"] == parcel[1]
    got = {(f["layer"], f["id"]): f["distance_m"] for f in body["features"]}
    want = dict(
        ((lid, fid), dist)
        for lid, fid, dist in conn.execute(
            f"SELECT 'old_compounds', id, ST_Distance(geom::geography, {pt}::geography) FROM renewal.old_compounds "
            f"WHERE ST_DWithin(geom::geography, {pt}::geography, 500)",
            (*P, *P),
        ).fetchall()
    )
    got_oc = {k: v for k, v in got.items() if k[0] == "old_compounds"}
    assert set(got_oc) == set(want)
    for k, v in want.items():
        assert got_oc[k] == pytest.approx(v, abs=0.01)
    dists = [f["distance_m"] for f in body["features"]]
    assert dists == sorted(dists)
    assert any(f["contains"] and f["layer"] == "land_parcels" for f in body["features"])


def test_point_in_gcj02_equals_wgs84(client: Any) -> None:
    gx, gy = wgs84_to_gcj02(P[0], P[1])
    a = client.get("/query/point", params={"lon": P[0], "lat": P[1]}).json()
    b = client.get("/query/point", params={"lon": float(gx), "lat": float(gy), "crs": "GCJ02"}).json()
    assert b["point"]["lon"] == pytest.approx(P[0], abs=1e-5) and a["land_parcel"]["id"] == b["land_parcel"]["id"]


def test_point_in_4547(client: Any) -> None:
    e, n = Transformer.from_crs(4490, 4547, always_xy=True).transform(*P)
    b = client.get("/query/point", params={"lon": e, "lat": n, "crs": "EPSG:4547"}).json()
    assert b["point"]["lon"] == pytest.approx(P[0], abs=1e-7)


@pytest.mark.parametrize(
    ("selector", "where"),
    [
        ({"district": "130102"}, "SELECT geom FROM renewal.districts WHERE code = '130102'"),
        ({"district": "长安区"}, "SELECT geom FROM renewal.districts WHERE name = '长安区'"),
        ({"ring_zone": "inside_2nd"}, "SELECT geom FROM renewal.ring_zones WHERE zone = 'inside_2nd'"),
        (
            {"belt_zone": "flood_channel"},
            "SELECT ST_Union(geom) FROM renewal.hutuo_belt_zones WHERE zone_type = 'flood_channel'",
        ),
    ],
)
def test_within_area(client: Any, conn: psycopg.Connection, selector: dict[str, str], where: str) -> None:
    r = client.get(
        "/query/within", params={**selector, "layers": "old_compounds,land_parcels,parking_sites", "limit": "10000"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    for entry in body["layers"]:
        table = entry["layer"]
        n, mu = conn.execute(
            f"SELECT count(*), coalesce(sum({'area_mu' if table != 'parking_sites' else '0'}), 0) "
            f"FROM renewal.{table} t, ({where}) a(g) WHERE ST_Intersects(t.geom, a.g)"
        ).fetchone()
        assert entry["count"] == n and len(entry["features"]) == min(n, 10000)
        if table != "parking_sites":
            assert entry["area_mu"] == pytest.approx(mu, abs=0.01)
            assert entry["area_mu_inside"] <= entry["area_mu"] + 0.01
        by = conn.execute(
            f"SELECT status, count(*) FROM renewal.{table} t, ({where}) a(g) "
            "WHERE ST_Intersects(t.geom, a.g) GROUP BY status"
        ).fetchall()
        assert {k: v["count"] for k, v in entry["by_status"].items()} == dict(by)


def test_within_posted_polygon_and_predicate(client: Any, conn: psycopg.Connection) -> None:
    ring = [[114.45, 38.0], [114.55, 38.0], [114.55, 38.08], [114.45, 38.08], [114.45, 38.0]]
    body = client.post(
        "/query/within",
        json={
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "layers": ["old_compounds"],
            "predicate": "within",
        },
    ).json()
    n = conn.execute(
        "SELECT count(*) FROM renewal.old_compounds "
        "WHERE ST_Within(geom, ST_MakeEnvelope(114.45, 38.0, 114.55, 38.08, 4490))"
    ).fetchone()[0]
    assert body["layers"][0]["count"] == n
    area = conn.execute(
        "SELECT ST_Area(ST_Transform(ST_MakeEnvelope(114.45, 38.0, 114.55, 38.08, 4490), 4547)) * 0.0015"
    ).fetchone()[0]
    assert body["area"]["area_mu"] == pytest.approx(area, rel=1e-6)


@pytest.mark.parametrize(
    ("method", "args", "status"),
    [
        ("get", {}, 400),
        ("get", {"district": "130102", "ring_zone": "inside_2nd"}, 400),
        ("get", {"district": "nowhere"}, 404),
        ("get", {"district": "130102", "layers": "nope"}, 400),
        ("get", {"district": "130102", "predicate": "touches"}, 400),
        ("get", {"district": "130102", "limit": "-1"}, 400),
        ("post", {"geometry": {"type": "Point", "coordinates": [114.5, 38]}}, 400),
        ("post", {"geometry": {"type": "Polygon", "coordinates": [[[1, 2]]]}}, 400),
        ("post", {"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, 400),
        ("post", {"geometry": {"type": "Polygon", "coordinates": "x"}}, 400),
        ("post", {"nothing": 1}, 400),
        (
            "post",
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[114.4, 38], [114.5, 38], [114.5, 38.1], [114.4, 38]]],
                },
                "crs": "EPSG:0",
            },
            400,
        ),
    ],
)
def test_within_errors(client: Any, method: str, args: dict[str, Any], status: int) -> None:
    r = client.get("/query/within", params=args) if method == "get" else client.post("/query/within", json=args)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_nearest_from_point(client: Any, conn: psycopg.Connection) -> None:
    body = client.get("/query/nearest", params={"layer": "parking_sites", "lon": P[0], "lat": P[1], "k": 7}).json()
    want = conn.execute(
        "SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4490)::geography) d "
        "FROM renewal.parking_sites ORDER BY d, id LIMIT 7",
        P,
    ).fetchall()
    assert [f["id"] for f in body["features"]] == [w[0] for w in want]
    assert [f["distance_m"] for f in body["features"]] == pytest.approx([w[1] for w in want], abs=0.01)


def test_nearest_from_feature(client: Any, conn: psycopg.Connection) -> None:
    fid = conn.execute("SELECT min(id) FROM renewal.old_compounds").fetchone()[0]
    body = client.get(
        "/query/nearest", params={"layer": "parking_sites", "from_layer": "old_compounds", "from_id": fid, "k": 3}
    ).json()
    want = conn.execute(
        "SELECT p.id FROM renewal.parking_sites p, renewal.old_compounds o WHERE o.id = %s "
        "ORDER BY ST_Distance(p.geom::geography, o.geom::geography), p.id LIMIT 3",
        (fid,),
    ).fetchall()
    assert [f["id"] for f in body["features"]] == [w[0] for w in want]


@pytest.mark.parametrize(
    "params",
    [
        {"layer": "parking_sites"},
        {"layer": "nope", "lon": 114.5, "lat": 38},
        {"layer": "parking_sites", "lon": 0, "lat": 0},
        {"layer": "parking_sites", "lon": 114.5, "lat": 38, "k": 0},
        {"layer": "parking_sites", "lon": 114.5, "lat": 38, "k": 1000},
        {"layer": "parking_sites", "from_layer": "old_compounds"},
        {"layer": "parking_sites", "lon": "x", "lat": 38},
        {"layer": "parking_sites", "lon": 114.5, "lat": 38, "crs": "EPSG:99999"},
        {"layer": "parking_sites", "lon": "nan", "lat": 38},
    ],
)
def test_nearest_errors(client: Any, params: dict[str, Any]) -> None:
    r = client.get("/query/nearest", params=params)
    assert r.status_code == 400, r.text


def test_nearest_unknown_feature_404(client: Any) -> None:
    r = client.get(
        "/query/nearest", params={"layer": "parking_sites", "from_layer": "old_compounds", "from_id": 999999999}
    )
    assert r.status_code == 404


def test_district_summary(client: Any, conn: psycopg.Connection) -> None:
    body = client.get("/query/district-summary").json()
    rows = conn.execute(
        "SELECT district_code, status, count(*), sum(area_mu) FROM renewal.old_compounds GROUP BY 1, 2"
    ).fetchall()
    by = {d["district_code"]: d for d in body["districts"]}
    for dc, status, n, mu in rows:
        entry = by[dc]["layers"]["old_compounds"]["by_status"][status]
        assert entry["count"] == n and entry["area_mu"] == pytest.approx(mu, abs=0.01)
    names = dict(conn.execute("SELECT code, name FROM renewal.districts").fetchall())
    for dc, name in names.items():
        assert by[dc]["district_name"] == name
    total = conn.execute("SELECT count(*) FROM renewal.land_parcels").fetchone()[0]
    assert sum(d["layers"].get("land_parcels", {}).get("count", 0) for d in body["districts"]) == total


def test_point_errors(client: Any) -> None:
    for params in (
        {"lon": 0, "lat": 0},
        {"lon": "x", "lat": 1},
        {"lat": 38},
        {"lon": 114.5, "lat": 38, "distance": -1},
        {"lon": 114.5, "lat": 38, "distance": 1e9},
        {"lon": 114.5, "lat": 38, "crs": "nonsense"},
        {"lon": 114.5, "lat": 38, "layers": "nope"},
        {"lon": "inf", "lat": 38},
    ):
        r = client.get("/query/point", params=params)
        assert r.status_code == 400, (params, r.text)
