"""OGC API Features Part 4 as QGIS's OAPIF provider speaks it, against a live ``renewal serve``.

The request sequence follows QGIS's source (``src/providers/wfs/oapif/``): the provider reads
the landing page, ``/api``, the collection, ``/conformance`` and ``items?limit=10`` (each with
the layer URL's extra query parameters appended, which is where a QGIS user puts ``apikey``);
then ``OPTIONS`` on the items (``POST`` in ``Allow`` enables adding) and on the first item
(``PUT``/``DELETE``/``PATCH`` enable changing and deleting). Edits are sent without the extra
parameters and without ``If-Match``: ``POST`` a plain GeoJSON Feature (no id, no ``change``
member) as ``application/geo+json`` with ``Content-Crs`` (EPSG:4490 in lat/lon order, axes
swapped by the provider), read back ``Location``; ``PATCH`` ``{"geometry":...}`` and
``{"properties":...}`` as ``application/merge-patch+json``; ``PUT`` the whole feature (with
``id``) when PATCH is not offered; ``DELETE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from layers.editing import DEFAULTED_DATE_NOTE
from tests.api.edit_support import QIAOXI, YUHUA, inner_square_wkt, insert_feature, unique
from tests.api.server_support import Server, serve
from tests.conftest import api_url

EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
LAYER = "urban_villages"


@pytest.fixture(scope="module")
def server(edit_db: str) -> Iterator[Server]:
    # an office where editors change features directly (no review step), as QGIS editing needs
    env = {"RENEWAL_ANON_RATE_PER_S": "0", "RENEWAL_REVIEW_REQUIRED": "false"}
    with serve(api_url(edit_db), workers=1, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def reviewed(edit_db: str) -> Iterator[Server]:
    """The default: editors' changes to renewal layers go through review (submissions)."""
    with serve(api_url(edit_db), workers=1, env={"RENEWAL_ANON_RATE_PER_S": "0"}) as s:
        yield s


def _allow(r: httpx.Response) -> set[str]:
    assert r.status_code in (200, 204), r.text
    return {m.strip() for m in r.headers["allow"].split(",")}


def _latlon_square(econn: psycopg.Connection, district: str) -> dict[str, Any]:
    """A polygon inside ``district`` as QGIS sends it in EPSG:4490: coordinates (lat, lon)."""
    wkt = inner_square_wkt(econn, district)
    ring = econn.execute("SELECT ST_AsGeoJSON(ST_GeometryN(ST_GeomFromText(%s), 1), 9)", (wkt,)).fetchone()
    assert ring is not None
    import json
    geom = json.loads(ring[0])
    geom["coordinates"] = [[[y, x] for x, y in r] for r in geom["coordinates"]]
    return dict(geom)


def test_options_allow_matrix(server: Server, keys: dict[str, str], econn: psycopg.Connection) -> None:
    inside = insert_feature(econn, LAYER, YUHUA, status="planned")
    outside = insert_feature(econn, LAYER, QIAOXI, status="planned")
    items = f"{server.url}/collections/{LAYER}/items"
    read = {"GET", "HEAD", "OPTIONS"}
    write = {"PUT", "PATCH", "DELETE"}
    cases = {
        None: (read, read, read),
        "viewer": (read, read, read),
        "editor_in": (read | {"POST"}, read | write, read),
        "editor_out": (read | {"POST"}, read, read | write),
        "admin": (read | {"POST"}, read | write, read | write),
    }
    for role, (on_items, on_inside, on_outside) in cases.items():
        h = {"X-API-Key": keys[role]} if role else {}
        assert _allow(httpx.options(items, headers=h)) == on_items, role
        assert _allow(httpx.options(f"{items}/{inside}", headers=h)) == on_inside, role
        assert _allow(httpx.options(f"{items}/{outside}", headers=h)) == on_outside, role
    # a reference layer: editors may not write it, administrators may
    ref = f"{server.url}/collections/districts/items"
    assert _allow(httpx.options(ref, headers={"X-API-Key": keys["editor_in"]})) == read
    assert _allow(httpx.options(ref, headers={"X-API-Key": keys["admin"]})) == read | {"POST"}
    # the key may come in the query string too (QGIS's extra query parameters)
    assert _allow(httpx.options(items, params={"apikey": keys["admin"]})) == read | {"POST"}


def test_conformance_declares_part4(server: Server) -> None:
    c = set(httpx.get(f"{server.url}/conformance").json()["conformsTo"])
    for cls in ("create-replace-delete", "update", "optimistic-locking-etags"):
        assert f"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{cls}" in c


def test_query_key_never_appears_in_links(server: Server, keys: dict[str, str]) -> None:
    key = keys["viewer"]
    r = httpx.get(f"{server.url}/collections/{LAYER}/items", params={"limit": "2", "apikey": key})
    assert r.status_code == 200, r.text
    assert key not in r.text and "apikey" not in r.text
    assert any(lk["rel"] == "next" for lk in r.json()["links"])
    r = httpx.get(f"{server.url}/collections/{LAYER}/items", params={"limit": "2", "offset": "2", "api_key": key})
    assert r.status_code == 200 and key not in r.text
    assert httpx.get(f"{server.url}/collections", params={"apikey": key}).status_code == 200
    # a wrong query key is refused like a wrong header key
    assert httpx.get(f"{server.url}/collections", params={"apikey": "rk_nope_nope"}).status_code == 401


def test_qgis_edit_sequence(server: Server, keys: dict[str, str], econn: psycopg.Connection) -> None:
    base = server.url
    # the layer URL's extra query parameters (sent with reads): the key, and the district, so the
    # first item QGIS asks OPTIONS about is one this district editor may change
    extra = {"apikey": keys["editor_in"], "district_code": YUHUA}
    hdr = {"X-API-Key": keys["editor_in"]}          # the authentication configuration (every request)
    # what the provider reads first
    landing = httpx.get(f"{base}/", params=extra, headers={**hdr, "Accept": "application/json"})
    assert landing.status_code == 200
    rels = {lk["rel"]: lk["href"] for lk in landing.json()["links"]}
    assert httpx.get(rels["service-desc"], params=extra, headers=hdr).status_code == 200
    assert httpx.get(f"{base}/collections/{LAYER}", params=extra, headers=hdr).status_code == 200
    first = httpx.get(f"{base}/collections/{LAYER}/items?limit=10", params=extra, headers=hdr).json()
    items = f"{base}/collections/{LAYER}/items"
    assert "POST" in _allow(httpx.options(items, headers=hdr))
    assert {"PUT", "PATCH", "DELETE"} & _allow(httpx.options(f"{items}/{first['features'][0]['id']}", headers=hdr))

    # add: a plain feature, no id, no change member, EPSG:4490 lat/lon, as QgsJsonExporter writes it
    geom = _latlon_square(econn, YUHUA)
    code = unique("QG")
    body = {"type": "Feature", "geometry": geom,
            "properties": {"code": code, "name": "QGIS新增村", "status": "planned", "households": 12}}
    r = httpx.post(items, json=body, headers={**hdr, "Content-Type": "application/geo+json", "Content-Crs": EPSG4490})
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert loc.startswith(f"{base}/collections/{LAYER}/items/") and "apikey" not in loc
    new_id = loc[loc.rindex("/items/") + len("/items/"):]
    fid = int(new_id)
    stored = econn.execute(f"SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)), district_code "  # noqa: S608
                           f"FROM renewal.{LAYER} WHERE id = %s", (fid,)).fetchone()
    assert stored is not None and 113 < stored[0] < 116 and 37 < stored[1] < 39 and stored[2] == YUHUA
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    hist = econn.execute("SELECT to_status, effective_date, note FROM renewal.status_history "
                         "WHERE layer = %s AND feature_id = %s", (LAYER, fid)).fetchall()
    assert hist == [("planned", today, DEFAULTED_DATE_NOTE)]
    # the provider then reads the new feature back (with the extra parameters)
    got = httpx.get(f"{items}/{new_id}", params=extra, headers=hdr)
    assert got.status_code == 200 and got.json()["properties"]["code"] == code
    stale_etag = got.headers["etag"]

    # move a vertex: PATCH {"geometry": ...} with Content-Crs
    moved = {"type": geom["type"], "coordinates": [[[lat + 0.0002, lon] if i in (0, 4) else [lat, lon]
                                                     for i, (lat, lon) in enumerate(geom["coordinates"][0])]]}
    r = httpx.patch(f"{items}/{new_id}", content=httpx.Request("PATCH", "/", json={"geometry": moved}).content,
                    headers={**hdr, "Content-Type": "application/merge-patch+json", "Content-Crs": EPSG4490})
    assert r.status_code == 200, r.text
    vertex = econn.execute(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), "  # noqa: S608
                           f"1) AS p FROM renewal.{LAYER} WHERE id = %s) AS s", (fid,)).fetchone()
    lat0, lon0 = geom["coordinates"][0][0]
    assert vertex is not None and vertex == pytest.approx((lon0, lat0 + 0.0002), abs=1e-8)
    # change an attribute: PATCH {"properties": {...}} (no Content-Crs)
    r = httpx.patch(f"{items}/{new_id}", content=b'{"properties":{"name":"QGIS\\u6539\\u540d"}}',
                    headers={**hdr, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{items}/{new_id}", headers=hdr).json()["properties"]["name"] == "QGIS改名"
    # a status change without a date: defaulted and noted
    r = httpx.patch(f"{items}/{new_id}", json={"properties": {"status": "started"}},
                    headers={**hdr, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    last = econn.execute("SELECT to_status, effective_date, note FROM renewal.status_history WHERE layer = %s "
                         "AND feature_id = %s ORDER BY id DESC LIMIT 1", (LAYER, fid)).fetchone()
    assert last == ("started", today, DEFAULTED_DATE_NOTE)

    # ETag conflict: a client that read before QGIS's edits cannot overwrite them
    r = httpx.patch(f"{items}/{new_id}", json={"properties": {"name": "旧值"}},
                    headers={**hdr, "If-Match": stale_etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 412, r.text
    current = httpx.get(f"{items}/{new_id}", headers=hdr)
    assert current.json()["properties"]["name"] == "QGIS改名"

    # replace: PUT of the whole feature with its id, as QGIS does when PATCH is not offered
    feat = current.json()
    put_body = {"type": "Feature", "id": feat["id"], "geometry": geom,
                "properties": {k: v for k, v in feat["properties"].items()
                               if k in ("code", "name", "status", "households")} | {"households": 15}}
    r = httpx.put(f"{items}/{new_id}", json=put_body,
                  headers={**hdr, "Content-Type": "application/geo+json", "Content-Crs": EPSG4490})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["households"] == 15
    r = httpx.put(f"{items}/{new_id}", json=put_body,
                  headers={**hdr, "If-Match": current.headers["etag"], "Content-Type": "application/geo+json",
                           "Content-Crs": EPSG4490})
    assert r.status_code == 412

    # delete
    r = httpx.delete(f"{items}/{new_id}", headers=hdr)
    assert r.status_code == 204, r.text
    assert httpx.get(f"{items}/{new_id}", headers=hdr).status_code == 404


def test_editor_outside_district_cannot_post(server: Server, keys: dict[str, str], econn: psycopg.Connection) -> None:
    body = {"type": "Feature", "geometry": _latlon_square(econn, YUHUA),
            "properties": {"code": unique("QG"), "name": "区外", "status": "planned"}}
    r = httpx.post(f"{server.url}/collections/{LAYER}/items", json=body,
                   headers={"X-API-Key": keys["editor_out"], "Content-Type": "application/geo+json",
                            "Content-Crs": f"<{EPSG4490}>"})
    assert r.status_code == 403, r.text


def test_allow_follows_the_review_rule(reviewed: Server, keys: dict[str, str], econn: psycopg.Connection) -> None:
    """With review on, an editor's changes are submissions: Allow offers no write method, the admin's all."""
    fid = insert_feature(econn, LAYER, YUHUA, status="planned")
    items = f"{reviewed.url}/collections/{LAYER}/items"
    editor = {"X-API-Key": keys["editor_in"]}
    assert _allow(httpx.options(items, headers=editor)) == {"GET", "HEAD", "OPTIONS"}
    assert _allow(httpx.options(f"{items}/{fid}", headers=editor)) == {"GET", "HEAD", "OPTIONS"}
    assert httpx.delete(f"{items}/{fid}", headers=editor).status_code == 403
    admin = {"X-API-Key": keys["admin"]}
    everything = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}
    assert _allow(httpx.options(f"{items}/{fid}", headers=admin)) == everything
