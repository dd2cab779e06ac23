"""OWSLib (the Python client analysts and pygeoapi users reach for) against a live server, unmodified.

Reads through ``owslib.ogcapi.features.Features``: conformance, collections, queryables, items
with bbox, limit, offset, sortby and a CQL2 filter, one feature; and the Part 4 writes OWSLib
sends (POST a plain GeoJSON Feature, PUT, DELETE) with an admin key in a header. Chinese text
must come back as written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from owslib.ogcapi.features import Features

from layers.registry import get_registry
from tests.conftest import LiveServer

REG = get_registry()


@pytest.fixture(scope="module")
def oapi(live_server: Any) -> Features:
    return Features(live_server.url)


def test_conformance_collections_and_queryables(oapi: Features) -> None:
    classes = oapi.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert any("ogcapi-features-4" in c for c in classes)
    ids = [c["id"] for c in oapi.collections()["collections"]]
    assert ids == REG.ids
    assert oapi.collection("old_compounds")["title"] == REG.get("old_compounds").title
    queryables = oapi.collection_queryables("old_compounds")["properties"]
    assert {"status", "district_code", "name"} <= set(queryables)


def test_items_with_the_parameters_owslib_sends(oapi: Features, conn: psycopg.Connection) -> None:
    page = oapi.collection_items("old_compounds", limit=7, sortby=("name", "desc"))
    names = [f["properties"]["name"] for f in page["features"]]
    expected = [r[0] for r in conn.execute(
        "SELECT name FROM renewal.old_compounds ORDER BY name COLLATE \"C\" DESC, id DESC LIMIT 7").fetchall()]
    assert names == expected and all("（演示）" in n for n in names)  # Chinese comes back as written
    second = oapi.collection_items("old_compounds", limit=7, offset=7, sortby=("name", "desc"))
    assert not {f["id"] for f in second["features"]} & {f["id"] for f in page["features"]}

    box = [114.45, 38.0, 114.55, 38.08]
    inside = oapi.collection_items("old_compounds", bbox=box, limit=10000)
    count = conn.execute("SELECT count(*) FROM renewal.old_compounds "
                         "WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4490))", box).fetchone()[0]
    assert len(inside["features"]) == inside["numberMatched"] == count > 0

    started = oapi.collection_items("old_compounds", filter="status = 'started' AND district_code = '130102'",
                                    limit=10000)
    n = conn.execute("SELECT count(*) FROM renewal.old_compounds WHERE status = 'started' "
                     "AND district_code = '130102'").fetchone()[0]
    assert started["numberMatched"] == n and {f["properties"]["status"] for f in started["features"]} <= {"started"}
    one = oapi.collection_item("old_compounds", page["features"][0]["id"])
    assert one["properties"]["name"] == names[0]


@pytest.fixture(scope="module")
def writer(edit_db: str, keys: dict[str, str]) -> Iterator[Features]:
    server = LiveServer(edit_db, env={"RENEWAL_REVIEW_REQUIRED": "false"})
    try:
        yield Features(server.url, headers={"X-API-Key": keys["admin"]})
    finally:
        server.stop()


def test_part4_writes_as_owslib_sends_them(writer: Features, edit_db: str) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.512, 38.043]},
               "properties": {"code": "OWS-0001", "name": "OWSLib新建停车场", "district_code": "130102",
                              "status": "planned", "spaces": 120}}
    assert writer.collection_item_create("parking_sites", feature) is True
    with psycopg.connect(edit_db) as conn:
        row = conn.execute("SELECT id, name, spaces FROM renewal.parking_sites WHERE code = 'OWS-0001'").fetchone()
    assert row is not None and row[1] == "OWSLib新建停车场" and row[2] == 120
    fid = row[0]
    feature["properties"]["spaces"] = 150
    assert writer.collection_item_update("parking_sites", str(fid), json.dumps(feature, ensure_ascii=False)) is True
    assert writer.collection_item("parking_sites", str(fid))["properties"]["spaces"] == 150
    assert writer.collection_item_delete("parking_sites", str(fid)) is True
    with psycopg.connect(edit_db) as conn:
        assert conn.execute("SELECT count(*) FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()[0] == 0
