"""layers.planner: the planner's queries called directly (as a notebook does) give the API's answers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from gis.errors import GeometryError, InvalidInputError, NotFoundError
from layers import planner
from layers.city import SHIJIAZHUANG
from layers.planner import Area, Origin
from layers.registry import get_registry

P = (114.50, 38.04)
SQUARE = {"type": "Polygon", "coordinates": [[[114.48, 38.02], [114.53, 38.02], [114.53, 38.06], [114.48, 38.06],
                                              [114.48, 38.02]]]}


def test_point_runner_equals_the_api(client: Any, conn: psycopg.Connection) -> None:
    api = client.get("/query/point", params={"lon": P[0], "lat": P[1], "distance": 300}).json()
    direct = planner.point(conn, *P, distance=300)
    assert direct == api
    assert direct["features"] and direct["district"]["code"] and direct["land_parcel"] is not None
    only = planner.point(conn, *P, distance=300, layers=["old_compounds"], with_parcel=False)
    assert "land_parcel" not in only
    assert {f["layer"] for f in only["features"]} <= {"old_compounds"}
    assert only["features"] == [f for f in direct["features"] if f["layer"] == "old_compounds"]


def test_within_runner_equals_the_api(client: Any, conn: psycopg.Connection) -> None:
    api = client.get("/query/within", params={"district": "长安区", "layers": "old_compounds,parking_sites"}).json()
    direct = planner.within(conn, Area.from_selector(district="长安区"), layers="old_compounds,parking_sites")
    assert direct == api
    count = conn.execute(
        "SELECT count(*) FROM renewal.old_compounds AS t, renewal.districts AS d "
        "WHERE d.name = '长安区' AND ST_Intersects(t.geom, d.geom)").fetchone()
    assert count is not None and direct["layers"][0]["count"] == count[0] > 0
    posted = client.post("/query/within", json={"geometry": SQUARE, "predicate": "within"}).json()
    area = Area.from_geojson(SQUARE, None, SHIJIAZHUANG)
    assert planner.within(conn, area, predicate="within") == posted
    with pytest.raises(NotFoundError, match="No area matches district='无此区'"):
        planner.within(conn, Area.from_selector(district="无此区"))


def test_nearest_runner_equals_the_api(client: Any, conn: psycopg.Connection) -> None:
    params = {"layer": "parking_sites", "lon": P[0], "lat": P[1], "k": 3}
    assert planner.nearest(conn, "parking_sites", lon=P[0], lat=P[1], k=3) == \
        client.get("/query/nearest", params=params).json()
    code = conn.execute("SELECT code FROM renewal.old_compounds ORDER BY id LIMIT 1").fetchone()
    assert code is not None
    api = client.get("/query/nearest", params={"layer": "old_compounds", "from_layer": "old_compounds",
                                               "from_code": code[0], "k": 4}).json()
    direct = planner.nearest(conn, "old_compounds", from_layer="old_compounds", from_code=code[0], k=4)
    assert direct == api and len(direct["features"]) == 4
    assert code[0] not in [f["code"] for f in direct["features"]]  # not its own neighbour
    with pytest.raises(NotFoundError, match="has no feature with id 999999999"):
        planner.nearest(conn, "old_compounds", from_layer="old_compounds", from_id=999999999)


def test_district_summary_runner_equals_the_api(client: Any, conn: psycopg.Connection) -> None:
    api = client.get("/query/district-summary", params={"layers": "urban_villages"}).json()
    direct = planner.district_summary(conn, ["urban_villages"])
    assert direct == api
    total = sum(d["layers"].get("urban_villages", {}).get("count", 0) for d in direct["districts"])
    row = conn.execute("SELECT count(*) FROM renewal.urban_villages").fetchone()
    assert row is not None and total == row[0]


# --------------------------------------------------------------------------- inputs, no database


def test_area_selector_rules() -> None:
    assert Area.from_selector(ring_zone=" inside_2nd ") == Area("ring_zone", "inside_2nd")
    assert Area.from_selector(district="130102").info == {"kind": "district", "value": "130102"}
    for args in ({}, {"district": "a", "belt_zone": "b"}, {"district": "  "}):
        with pytest.raises(InvalidInputError, match="Give exactly one area"):
            Area.from_selector(**args)


def test_posted_area_rules() -> None:
    area = Area.from_geojson({"type": "Feature", "geometry": SQUARE}, None, SHIJIAZHUANG)
    assert area.kind == "polygon" and area.info == {"kind": "polygon"}
    with pytest.raises(GeometryError, match="Polygon or MultiPolygon"):
        Area.from_geojson({"type": "Point", "coordinates": [114.5, 38.0]}, None, SHIJIAZHUANG)
    far = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    with pytest.raises(GeometryError, match="outside Shijiazhuang"):
        Area.from_geojson(far, None, SHIJIAZHUANG)


def test_origin_and_layer_rules() -> None:
    reg = get_registry()
    with pytest.raises(InvalidInputError, match="not both"):
        Origin.of(reg, SHIJIAZHUANG, lon=P[0], lat=P[1], from_layer="old_compounds", from_id=1)
    with pytest.raises(InvalidInputError, match="exactly one of from_id or from_code"):
        Origin.of(reg, SHIJIAZHUANG, from_layer="old_compounds")
    with pytest.raises(InvalidInputError, match="Give lon and lat"):
        Origin.of(reg, SHIJIAZHUANG, lon=P[0])
    with pytest.raises(InvalidInputError, match="outside Shijiazhuang"):
        Origin.of(reg, SHIJIAZHUANG, lon=P[1], lat=P[0])  # swapped axes
    assert Origin.of(reg, SHIJIAZHUANG, lon=P[0], lat=P[1]).point == pytest.approx(P)
    assert [x.id for x in planner.layer_list(reg, "old_compounds, parking_sites,old_compounds")] == \
        ["old_compounds", "parking_sites"]
    assert len(planner.layer_list(reg, None)) == len(list(reg))
    with pytest.raises(InvalidInputError, match="'nope' is not a layer"):
        planner.layer_list(reg, ["nope"])


def test_builders_bind_every_value(conn: psycopg.Connection) -> None:
    """What the caller typed reaches PostgreSQL only as a bound parameter, never as SQL text."""
    reg = get_registry()
    evil = "x'); DROP TABLE renewal.districts; --"
    stmt, params = planner.within_query(reg, Area("district", evil), planner.renewal_layers(reg), srid=4547)
    assert evil not in stmt.as_string(conn) and evil in params.values()
    stmt, params = planner.nearest_query(reg.get("old_compounds"),
                                         Origin(layer=reg.get("old_compounds"), feature_code=evil))
    assert evil not in stmt.as_string(conn) and evil in params.values()
