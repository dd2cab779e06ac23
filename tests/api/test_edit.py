"""Editing through OGC API Features Part 4: validation, CRSs, lifecycle, ETags, tombstones, audit."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import (
    YUHUA,
    audit_count,
    auth,
    geojson_of,
    inner_square_wkt,
    insert_feature,
    make_client,
    row_md5,
    table_md5,
    unique,
)

TODAY = dt.date.today().isoformat()


@pytest.fixture(scope="module")
def ec(edit_db: str) -> Iterator[TestClient]:
    """A client on the editing database."""
    with make_client(edit_db) as c:
        yield c


@pytest.fixture()
def admin(keys: dict[str, str]) -> dict[str, str]:
    """Admin headers."""
    return auth(keys, "admin")


def _village(econn: psycopg.Connection, **props: Any) -> dict[str, Any]:
    square = geojson_of(econn, inner_square_wkt(econn, YUHUA), single=True)  # a Polygon: must be promoted
    return {"type": "Feature", "geometry": square,
            "properties": {"code": unique("UV"), "name": "测试村", "status": "planned", "households": 10, **props},
            "change": {"effective_date": "2023-03-01", "source_doc": "石政办〔2023〕7号", "note": "新增"}}


def _etag(ec: TestClient, admin: dict[str, str], layer: str, fid: int) -> str:
    r = ec.get(f"/collections/{layer}/items/{fid}", headers=admin)
    assert r.status_code == 200, r.text
    return r.headers["etag"]


def test_create_promotes_and_records_history_and_audit(ec: TestClient, admin: dict[str, str],
                                                       econn: psycopg.Connection) -> None:
    body = _village(econn)
    r = ec.post("/collections/urban_villages/items", json=body, headers={**admin, "X-Request-Id": "req-create-1"})
    assert r.status_code == 201, r.text
    feat = r.json()
    fid = feat["id"]
    assert r.headers["location"].endswith(f"/collections/urban_villages/items/{fid}")
    assert r.headers["content-type"].startswith("application/geo+json")
    assert feat["properties"]["district_code"] == YUHUA  # derived from the geometry
    got = ec.get(f"/collections/urban_villages/items/{fid}", headers=admin)
    assert got.headers["etag"] == r.headers["etag"]
    row = econn.execute("SELECT GeometryType(geom), code FROM renewal.urban_villages WHERE id = %s", (fid,)).fetchone()
    assert row == ("MULTIPOLYGON", body["properties"]["code"])
    hist = econn.execute("SELECT from_status, to_status, effective_date, source_doc, note, recorded_by "
                         "FROM renewal.status_history WHERE layer = 'urban_villages' AND feature_id = %s", (fid,)
                         ).fetchall()
    assert len(hist) == 1
    assert hist[0][:5] == (None, "planned", dt.date(2023, 3, 1), "石政办〔2023〕7号", "新增")
    assert hist[0][5].startswith("admin_")
    audit = econn.execute("SELECT action, channel, request_id, after->>'code', source_doc FROM renewal.audit_log "
                          "WHERE layer = 'urban_villages' AND feature_id = %s", (fid,)).fetchall()
    assert audit == [("INSERT", "api", "req-create-1", body["properties"]["code"], "石政办〔2023〕7号")]


def _poly(coords: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [coords]}


BOWTIE = _poly([[114.55, 38.0], [114.56, 38.01], [114.56, 38.0], [114.55, 38.01], [114.55, 38.0]])
BAD_CREATES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, str]]] = [
    ("unknown-property", {"colour": "red"}, None, {}),
    ("integer-as-text", {"households": "many"}, None, {}),
    ("integer-fraction", {"households": 1.5}, None, {}),
    ("below-min", {"households": -1}, None, {}),
    ("above-max", {"start_year": 2200}, None, {}),
    ("bool-as-int", {"households": True}, None, {}),
    ("unknown-status", {"status": "done"}, None, {}),
    ("empty-name", {"name": "  "}, None, {}),
    ("missing-code", {"code": None}, None, {}),
    ("bad-district-code", {"district_code": "13'; DROP TABLE x; --"}, None, {}),
    ("sql-in-code-too-long", {"code": "x" * 101}, None, {}),
    ("linestring-for-polygons", {}, {"type": "LineString", "coordinates": [[114.5, 38.0], [114.6, 38.1]]}, {}),
    ("self-intersecting", {}, BOWTIE, {}),
    ("outside-city", {}, _poly([[116.5, 39.9], [116.51, 39.9], [116.51, 39.91], [116.5, 39.9]]), {}),
    ("swapped-axes", {}, _poly([[38.0, 114.5], [38.01, 114.5], [38.01, 114.51], [38.0, 114.5]]), {}),
    ("string-coordinates", {}, {"type": "Polygon", "coordinates": [[["a", "b"]]]}, {}),
    ("no-coordinates", {}, {"type": "Polygon"}, {}),
    ("geometry-collection", {}, {"type": "GeometryCollection", "geometries": []}, {}),
    ("unknown-crs", {}, None, {"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/999999>"}),
    ("crs-injection", {}, None, {"Content-Crs": "EPSG:4490'; DROP TABLE renewal.urban_villages; --"}),
    ("bad-effective-date", {}, None, {"X-Effective-Date": "2024-13-01"}),
    ("future-effective-date", {}, None, {"X-Effective-Date": "2999-01-01"}),
]


@pytest.mark.parametrize(("case", "props", "geometry", "headers"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
def test_invalid_creates_are_400_and_change_nothing(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection,
                                                    case: str, props: dict[str, Any], geometry: dict[str, Any] | None,
                                                    headers: dict[str, str]) -> None:
    body = _village(econn)
    body["properties"].update(props)
    body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
    if geometry is not None:
        body["geometry"] = geometry
    if headers.get("X-Effective-Date"):
        body.pop("change")
    before = table_md5(econn, "urban_villages"), audit_count(econn)
    r = ec.post("/collections/urban_villages/items", json=body, headers={**admin, **headers})
    assert r.status_code == 400, (case, r.status_code, r.text)
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json") and problem["detail"]
    assert (table_md5(econn, "urban_villages"), audit_count(econn)) == before


@pytest.mark.parametrize("body", [
    {"type": "FeatureCollection", "features": []},
    {"type": "Feature", "properties": [], "geometry": None},
    ["not", "an", "object"],
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.5, 38.0]}, "properties": {},
     "change": {"effective_date": "2024-01-01", "secret": "x"}},
])
def test_malformed_bodies(ec: TestClient, admin: dict[str, str], body: Any) -> None:
    r = ec.post("/collections/parking_sites/items", json=body, headers=admin)
    assert r.status_code == 400, r.text


def test_transport_errors(ec: TestClient, admin: dict[str, str]) -> None:
    r = ec.post("/collections/parking_sites/items", content=b"{not json", headers={**admin, "Content-Type":
                                                                                   "application/json"})
    assert r.status_code == 400
    r = ec.post("/collections/parking_sites/items", content=b"code=1", headers={**admin, "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert ec.post("/collections/nosuch/items", json={}, headers=admin).status_code == 404
    assert ec.patch("/collections/parking_sites/items/abc", json={}, headers={**admin, "If-Match": "*"}
                    ).status_code == 404
    assert ec.patch("/collections/parking_sites/items/999999999", json={}, headers={**admin, "If-Match": "*"}
                    ).status_code == 404


def test_duplicate_code_is_409(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection) -> None:
    body = _village(econn)
    assert ec.post("/collections/urban_villages/items", json=body, headers=admin).status_code == 201
    r = ec.post("/collections/urban_villages/items", json=body, headers=admin)
    assert r.status_code == 409, r.text


# --------------------------------------------------------------------------- CRSs


def _expected_input(econn: psycopg.Connection, wkt: str, crs: str) -> dict[str, Any]:
    """The polygon's coordinates written in ``crs`` with that CRS's axis order, computed by PostGIS/chinacrs."""
    import numpy as np
    import shapely

    from gis import chinacrs

    if crs == "GCJ02":
        geom = shapely.from_wkt(wkt)
        coords = shapely.get_coordinates(geom)
        gx, gy = chinacrs.wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return json.loads(shapely.to_geojson(shapely.set_coordinates(geom, np.column_stack([gx, gy]))))
    srid = int(crs.split(":")[1])
    expr = "ST_Transform(ST_GeomFromText(%s, 4490), %s)" if srid != 4490 else "ST_GeomFromText(%s, 4490)"
    args: tuple[Any, ...] = (wkt, srid) if srid != 4490 else (wkt,)
    if srid in (4490, 4547):  # authority axis order: latitude/northing first
        expr = f"ST_FlipCoordinates({expr})"
    row = econn.execute(f"SELECT ST_AsGeoJSON({expr}, 10)", args).fetchone()
    assert row is not None
    return dict(json.loads(row[0]))


@pytest.mark.parametrize("crs", ["EPSG:4490", "EPSG:4547", "EPSG:3857", "GCJ02"])
def test_content_crs_is_honoured(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection, crs: str) -> None:
    wkt = inner_square_wkt(econn, YUHUA, dx=0.002)
    body = _village(econn)
    body["geometry"] = _expected_input(econn, wkt, crs)
    uri = crs if crs == "GCJ02" else f"http://www.opengis.net/def/crs/EPSG/0/{crs.split(':')[1]}"
    r = ec.post("/collections/urban_villages/items", json=body, headers={**admin, "Content-Crs": f"<{uri}>"})
    assert r.status_code == 201, r.text
    dist = econn.execute("SELECT ST_HausdorffDistance(geom, ST_GeomFromText(%s, 4490)) FROM renewal.urban_villages "
                         "WHERE id = %s", (wkt, r.json()["id"])).fetchone()
    assert dist is not None and dist[0] < (2e-6 if crs == "GCJ02" else 1e-7), dist  # ≤ 0.2 m / 1 cm


# --------------------------------------------------------------------------- lifecycle


def _patch(ec: TestClient, admin: dict[str, str], layer: str, fid: int, body: dict[str, Any],
           **headers: str) -> Any:
    return ec.patch(f"/collections/{layer}/items/{fid}", json=body,
                    headers={**admin, "If-Match": _etag(ec, admin, layer, fid),
                             "Content-Type": "application/merge-patch+json", **headers})


def _history(econn: psycopg.Connection, layer: str, fid: int) -> list[tuple[Any, ...]]:
    return econn.execute("SELECT from_status, to_status, effective_date, source_doc, note FROM renewal.status_history "
                         "WHERE layer = %s AND feature_id = %s ORDER BY id", (layer, fid)).fetchall()


def test_lifecycle_rules(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "urban_villages", status="planned")
    n0 = len(_history(econn, "urban_villages", fid))
    md5 = row_md5(econn, "urban_villages", fid)
    # a jump planned -> completed without reason/document, or with only one of them
    for change in ({"effective_date": "2024-01-02"}, {"effective_date": "2024-01-02", "reason": "合并验收"},
                   {"effective_date": "2024-01-02", "source_doc": "石政函〔2024〕3号"}):
        r = _patch(ec, admin, "urban_villages", fid, {"properties": {"status": "completed"}, "change": change})
        assert r.status_code == 409, r.text
        assert r.json()["allowed"] == ["started"]
    assert row_md5(econn, "urban_villages", fid) == md5 and len(_history(econn, "urban_villages", fid)) == n0
    # the next step, given by its Chinese label, with the metadata in headers (percent-encoded UTF-8)
    r = _patch(ec, admin, "urban_villages", fid, {"properties": {"status": "启动"}},
               **{"X-Effective-Date": "2024-02-01", "X-Source-Doc": quote("石政办〔2024〕9号"),
                  "X-Change-Note": quote("区里上报")})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "started"
    assert _history(econn, "urban_villages", fid)[-1] == ("planned", "started", dt.date(2024, 2, 1),
                                                         "石政办〔2024〕9号", "区里上报")
    # a jump with reason and document is recorded, the reason kept in the note
    r = _patch(ec, admin, "urban_villages", fid, {"properties": {"status": "completed"}, "change": {
        "effective_date": "2024-03-01", "reason": "整体验收", "source_doc": "石政函〔2024〕3号"}})
    assert r.status_code == 200, r.text
    last = _history(econn, "urban_villages", fid)[-1]
    assert last[:4] == ("started", "completed", dt.date(2024, 3, 1), "石政函〔2024〕3号") and "整体验收" in last[4]
    # a correction one step back is allowed; a non-status edit adds no history row
    assert _patch(ec, admin, "urban_villages", fid, {"properties": {"status": "construction"},
                                                     "change": {"effective_date": "2024-03-02"}}).status_code == 200
    n = len(_history(econn, "urban_villages", fid))
    assert _patch(ec, admin, "urban_villages", fid, {"properties": {"households": 99}}).status_code == 200
    assert len(_history(econn, "urban_villages", fid)) == n


# --------------------------------------------------------------------------- ETags and replace/patch semantics


def test_etags_and_preconditions(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "parking_sites", spaces=50, year=2023)
    url = f"/collections/parking_sites/items/{fid}"
    etag = _etag(ec, admin, "parking_sites", fid)
    assert ec.get(url, headers={**admin, "If-None-Match": etag}).status_code == 304
    # If-Match is optional (QGIS never sends it); when sent, it must match
    for stale in ('"0000"', f"W/{etag}", "garbage"):
        r = ec.patch(url, json={"properties": {"spaces": 60}}, headers={**admin, "If-Match": stale})
        assert r.status_code == 412, r.text
    r = ec.patch(url, json={"properties": {"spaces": 60}}, headers={**admin, "If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    assert ec.get(url, headers=admin).headers["etag"] == r.headers["etag"]
    # the old ETag is now stale: no lost update
    r2 = ec.patch(url, json={"properties": {"spaces": 70}}, headers={**admin, "If-Match": etag})
    assert r2.status_code == 412
    assert econn.execute("SELECT spaces FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone() == (60,)
    # a list of ETags and * match
    r3 = ec.patch(url, json={"properties": {"spaces": 80}}, headers={**admin, "If-Match": f'"x", {r.headers["etag"]}'})
    assert r3.status_code == 200
    assert ec.patch(url, json={"properties": {"spaces": 90}}, headers={**admin, "If-Match": "*"}).status_code == 200


def test_put_replaces_and_patch_merges(ec: TestClient, admin: dict[str, str], econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "parking_sites", spaces=50, year=2023, site_type="surface")
    url = f"/collections/parking_sites/items/{fid}"
    feature = ec.get(url, headers=admin).json()
    # a GET response sent back unchanged (read-only properties included) is a valid PUT
    r = ec.put(url, json=feature, headers={**admin, "If-Match": _etag(ec, admin, "parking_sites", fid)})
    assert r.status_code == 200, r.text
    # PUT without site_type clears it
    feature["properties"].pop("site_type")
    r = ec.put(url, json=feature, headers={**admin, "If-Match": r.headers["etag"]})
    assert r.status_code == 200 and r.json()["properties"]["site_type"] is None
    # PATCH null clears one property, others stay
    r = ec.patch(url, json={"properties": {"year": None}}, headers={**admin, "If-Match": r.headers["etag"]})
    assert r.status_code == 200
    row = econn.execute("SELECT year, spaces FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()
    assert row == (None, 50)
    # required properties cannot be cleared, geometry cannot be removed
    assert ec.patch(url, json={"properties": {"spaces": None}}, headers={**admin, "If-Match": "*"}).status_code == 400
    assert ec.patch(url, json={"geometry": None}, headers={**admin, "If-Match": "*"}).status_code == 400
    # a patch that names only members the server does not change (a typo, bare properties) is refused, not ignored
    before = econn.execute("SELECT updated_at FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()
    for slip in ({"propertis": {"spaces": 70}}, {"spaces": 70}):
        r = ec.patch(url, json=slip, headers={**admin, "If-Match": "*"})
        assert r.status_code == 400 and next(iter(slip)) in r.json()["detail"], r.text
    assert econn.execute("SELECT updated_at FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone() == before
    # moving the point by PATCH
    x, y = econn.execute("SELECT ST_X(geom), ST_Y(geom) FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()
    r = ec.patch(url, json={"geometry": {"type": "Point", "coordinates": [x + 0.001, y]}},
                 headers={**admin, "If-Match": "*"})
    assert r.status_code == 200
    assert math.isclose(econn.execute("SELECT ST_X(geom) FROM renewal.parking_sites WHERE id = %s",
                                      (fid,)).fetchone()[0], x + 0.001, abs_tol=1e-9)


# --------------------------------------------------------------------------- soft delete and audit


def test_delete_keeps_a_tombstone_and_the_trail(ec: TestClient, admin: dict[str, str],
                                                econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "old_compounds")
    code = econn.execute("SELECT code FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()[0]
    url = f"/collections/old_compounds/items/{fid}"
    r = ec.delete(url, headers={**admin, "If-Match": _etag(ec, admin, "old_compounds", fid),
                                "X-Change-Note": quote("重复录入"), "X-Request-Id": "req-del-1"})
    assert r.status_code == 204, r.text
    assert ec.get(url, headers=admin).status_code == 404
    assert ec.delete(url, headers={**admin, "If-Match": "*"}).status_code == 404
    tomb = ec.get("/collections/old_compounds/tombstones", headers=admin).json()["tombstones"]
    mine = [t for t in tomb if t["feature_id"] == fid]
    assert len(mine) == 1 and mine[0]["code"] == code and mine[0]["note"] == "重复录入"
    assert mine[0]["feature"]["geometry"]["type"] == "MultiPolygon" and mine[0]["request_id"] == "req-del-1"
    audit = ec.get("/audit", params={"feature": f"old_compounds/{fid}"}, headers=admin).json()["records"]
    assert [a["action"] for a in audit] == ["DELETE", "INSERT"]
    assert audit[0]["before"]["code"] == code and audit[0]["after"] is None and audit[0]["request_id"] == "req-del-1"
    hist = ec.get(f"{url}/history", headers=admin).json()
    assert hist["status_history"] and [a["action"] for a in hist["audit"]] == ["INSERT", "DELETE"]


def test_audit_filters(ec: TestClient, keys: dict[str, str], econn: psycopg.Connection) -> None:
    admin = auth(keys, "admin")
    editor = auth(keys, "editor_in")
    fid = insert_feature(econn, "old_compounds")
    r = ec.patch(f"/collections/old_compounds/items/{fid}", json={"properties": {"households": 7}},
                 headers={**editor, "If-Match": _etag(ec, admin, "old_compounds", fid)})
    assert r.status_code == 200, r.text
    editor_name = ec.get("/auth/whoami", headers=editor).json()["name"]
    recs = ec.get("/audit", params={"user": editor_name, "feature": str(fid)}, headers=admin).json()["records"]
    assert len(recs) == 1 and recs[0]["after"]["households"] == 7 and recs[0]["before"]["households"] == 120
    expected = econn.execute("SELECT count(*) FROM renewal.audit_log WHERE actor = %s", (editor_name,)).fetchone()[0]
    assert len(ec.get("/audit", params={"user": editor_name, "limit": 1000}, headers=admin).json()["records"]) \
        == expected
    assert ec.get("/audit", params={"since": "2999-01-01"}, headers=admin).json()["records"] == []
    assert ec.get("/audit", params={"since": "yesterday"}, headers=admin).status_code == 400
    assert ec.get("/audit", params={"feature": "x' OR '1'='1"}, headers=admin).json()["records"] == []


def test_audit_log_is_append_only_for_the_app_role_and_the_owner(edit_db: str, econn: psycopg.Connection) -> None:
    import asyncio

    from api.db import _configure
    from tests.conftest import api_url

    async def as_app_role() -> list[str]:
        errors: list[str] = []
        conn = await psycopg.AsyncConnection.connect(api_url(edit_db))  # the API's own login
        try:
            await _configure(conn, "renewal_app")
            cur = await conn.execute("SELECT current_user")
            assert (await cur.fetchone()) == ("renewal_app",)
            for stmt in ("UPDATE renewal.audit_log SET actor = 'mallory'", "DELETE FROM renewal.audit_log",
                         "TRUNCATE renewal.audit_log", "UPDATE renewal.tombstones SET note = 'x'",
                         "DELETE FROM renewal.tombstones"):
                try:
                    await conn.execute(stmt)
                except psycopg.errors.InsufficientPrivilege as exc:
                    errors.append(str(exc))
            await conn.execute("SELECT count(*) FROM renewal.audit_log")  # reading is allowed
        finally:
            await conn.close()
        return errors

    before = econn.execute("SELECT count(*), md5(string_agg(a::text, '' ORDER BY id)) FROM renewal.audit_log AS a"
                           ).fetchone()
    assert len(asyncio.run(as_app_role())) == 5
    for stmt in ("UPDATE renewal.audit_log SET actor = 'owner'", "DELETE FROM renewal.audit_log",
                 "TRUNCATE renewal.audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            econn.execute(stmt)
    after = econn.execute("SELECT count(*), md5(string_agg(a::text, '' ORDER BY id)) FROM renewal.audit_log AS a"
                          ).fetchone()
    assert before == after and before[0] > 0


# --------------------------------------------------------------------------- tiles and progress follow edits


def test_tiles_and_progress_reflect_an_edit_immediately(ec: TestClient, admin: dict[str, str],
                                                        econn: psycopg.Connection) -> None:
    from tests.api.test_auth_matrix import _tile_of

    body = {"type": "Feature", "geometry": geojson_of(econn, "POINT(114.53 38.02)"),
            "properties": {"code": unique("PK"), "name": "验收停车场", "status": "planned", "spaces": 777,
                           "year": 2023}, "change": {"effective_date": "2023-01-10"}}
    x, y = _tile_of(114.53, 38.02, 14)
    tile = f"/collections/parking_sites/tiles/WebMercatorQuad/14/{x}/{y}"
    t0 = ec.get(tile)
    p0 = ec.get("/progress/parking_spaces_2023", params={"as_of": "2023-12-31"})
    assert p0.status_code == 200, p0.text
    r = ec.post("/collections/parking_sites/items", json=body, headers=admin)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    t1 = ec.get(tile)
    assert t1.status_code == 200 and t1.headers["etag"] != t0.headers.get("etag")
    assert ec.get(tile, headers={"If-None-Match": t0.headers.get("etag", "")}).status_code == 200
    for status, eff in (("under_construction", "2023-03-01"), ("built", "2023-06-01")):
        assert _patch(ec, admin, "parking_sites", fid, {"properties": {"status": status},
                                                        "change": {"effective_date": eff}}).status_code == 200
    p1 = ec.get("/progress/parking_spaces_2023", params={"as_of": "2023-12-31"})
    assert p1.json()["actual"] == pytest.approx(p0.json()["actual"] + 777)
    assert ec.get(tile).headers["etag"] != t1.headers["etag"]
    assert ec.delete(f"/collections/parking_sites/items/{fid}", headers={**admin, "If-Match": "*"}).status_code == 204
    p2 = ec.get("/progress/parking_spaces_2023", params={"as_of": "2023-12-31"})
    assert p2.json()["actual"] == pytest.approx(p0.json()["actual"])
