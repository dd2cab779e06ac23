"""The full authorisation matrix: every write (and read) endpoint × role × layer policy.

Roles: anonymous, viewer, editor of 裕华区 (the feature's district), editor of 桥西区 (another
district), admin. Policies: ``old_compounds`` open to anonymous readers, ``land_parcels``
closed (``RENEWAL_RESTRICTED_LAYERS``). Each cell uses a fresh feature, a valid body and the
current ETag, so the role and the policy are the only things that differ; denied cells
must leave the row and the audit log untouched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import (
    LAYER_PROPS,
    QIAOXI,
    YUHUA,
    audit_count,
    auth,
    geojson_of,
    inner_square_wkt,
    insert_feature,
    make_client,
    row_md5,
    unique,
)

ROLES = ["anonymous", "viewer", "editor_in", "editor_out", "admin"]
POLICIES = {"public": "old_compounds", "restricted": "land_parcels"}
WRITE_OK = {"create": 201, "replace": 200, "patch": 200, "delete": 204}
WRITE_EXPECTED = {
    "anonymous": 401,
    "viewer": 403,
    "editor_in": None,  # success code of the operation
    "editor_out": 403,
    "admin": None,
}


def expected(op: str, role: str, policy: str) -> int:
    """The status each cell must answer."""
    if op in WRITE_OK:
        code = WRITE_EXPECTED[role]
        return WRITE_OK[op] if code is None else code
    if role == "anonymous" and policy == "restricted":
        return 401
    return 200


CELLS = [
    pytest.param(op, role, policy, expected(op, role, policy), id=f"{op}-{role}-{policy}-{expected(op, role, policy)}")
    for op in ["create", "replace", "patch", "delete", "read_item", "read_items", "read_tile"]
    for role in ROLES
    for policy in POLICIES
]


@pytest.fixture(scope="module")
def mclient(edit_db: str) -> Iterator[TestClient]:
    """An app with land parcels closed to anonymous readers."""
    with make_client(edit_db, restricted_layers="land_parcels") as c:
        yield c


def _etag(client: TestClient, keys: dict[str, str], layer: str, fid: int) -> str:
    r = client.get(f"/collections/{layer}/items/{fid}", headers=auth(keys, "admin"))
    assert r.status_code == 200, r.text
    return r.headers["etag"]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.mark.parametrize(("op", "role", "policy", "status"), CELLS)
def test_authorisation_matrix(mclient: TestClient, keys: dict[str, str], econn: psycopg.Connection,
                              op: str, role: str, policy: str, status: int) -> None:
    layer = POLICIES[policy]
    headers = auth(keys, role)
    today = dt.date.today().isoformat()
    if op == "create":
        code = unique("NEW")
        body = {"type": "Feature", "geometry": geojson_of(econn, inner_square_wkt(econn, YUHUA)),
                "properties": {"code": code, "name": "新建要素", **LAYER_PROPS[layer]},
                "change": {"effective_date": today}}
        r = mclient.post(f"/collections/{layer}/items", json=body, headers=headers)
        assert r.status_code == status, r.text
        n = econn.execute(f"SELECT count(*) FROM renewal.{layer} WHERE code = %s", (code,)).fetchone()  # noqa: S608
        assert n is not None and n[0] == (1 if status == 201 else 0)
        return

    fid = insert_feature(econn, layer, YUHUA)
    before_md5, before_audit = row_md5(econn, layer, fid), audit_count(econn, layer, fid)
    if op in ("replace", "patch", "delete"):
        etag = _etag(mclient, keys, layer, fid)
        h = {**headers, "If-Match": etag}
        if op == "replace":
            body: dict[str, Any] = {
                "type": "Feature", "geometry": geojson_of(econn, inner_square_wkt(econn, YUHUA)),
                "properties": {"code": unique("REP"), "name": "替换", **LAYER_PROPS[layer]}}
            r = mclient.put(f"/collections/{layer}/items/{fid}", json=body, headers=h)
        elif op == "patch":
            r = mclient.patch(f"/collections/{layer}/items/{fid}", json={"properties": {"name": "改名"}},
                              headers={**h, "Content-Type": "application/merge-patch+json"})
        else:
            r = mclient.delete(f"/collections/{layer}/items/{fid}", headers=h)
        assert r.status_code == status, r.text
        if status >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert row_md5(econn, layer, fid) == before_md5
            assert audit_count(econn, layer, fid) == before_audit
        else:
            assert audit_count(econn, layer, fid) == before_audit + 1
            actor = econn.execute("SELECT actor, channel, request_id FROM renewal.audit_log WHERE layer = %s "
                                 "AND feature_id = %s ORDER BY id DESC LIMIT 1", (layer, fid)).fetchone()
            assert actor is not None and actor[1] == "api" and actor[2] == r.headers["x-request-id"]
            assert actor[0].startswith("admin_" if role == "admin" else "yuhua_")
        return

    if op == "read_item":
        r = mclient.get(f"/collections/{layer}/items/{fid}", headers=headers)
    elif op == "read_items":
        r = mclient.get(f"/collections/{layer}/items", params={"limit": 1}, headers=headers)
    else:
        lonlat = econn.execute(f"SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM renewal.{layer} "  # noqa: S608
                              "WHERE id = %s", (fid,)).fetchone()
        assert lonlat is not None
        x, y = _tile_of(lonlat[0], lonlat[1], 15)
        r = mclient.get(f"/collections/{layer}/tiles/WebMercatorQuad/15/{x}/{y}", headers=headers)
        if status == 200:
            assert r.status_code == 200 and len(r.content) > 0, r.status_code
    assert r.status_code == status, r.text[:300]


# --------------------------------------------------------------------------- district scope before/after


@pytest.mark.parametrize(
    ("role", "start", "target", "status"),
    [
        pytest.param("editor_in", YUHUA, QIAOXI, 403, id="editor-moves-own-feature-out-403"),
        pytest.param("editor_out", YUHUA, QIAOXI, 403, id="editor-pulls-foreign-feature-in-403"),
        pytest.param("editor_in", YUHUA, YUHUA, 200, id="editor-moves-within-district-200"),
        pytest.param("editor_out", QIAOXI, QIAOXI, 200, id="other-editor-in-own-district-200"),
        pytest.param("admin", YUHUA, QIAOXI, 200, id="admin-moves-anywhere-200"),
    ],
)
def test_district_scope_before_and_after(mclient: TestClient, keys: dict[str, str], econn: psycopg.Connection,
                                         role: str, start: str, target: str, status: int) -> None:
    fid = insert_feature(econn, "old_compounds", start)
    md5 = row_md5(econn, "old_compounds", fid)
    geom = geojson_of(econn, inner_square_wkt(econn, target, dx=0.0004))
    r = mclient.patch(f"/collections/old_compounds/items/{fid}", json={"geometry": geom},
                      headers={**auth(keys, role), "If-Match": _etag(mclient, keys, "old_compounds", fid)})
    assert r.status_code == status, r.text
    if status == 403:
        assert row_md5(econn, "old_compounds", fid) == md5
        assert ("before" if role == "editor_out" else "after") in r.json()["detail"]


@pytest.mark.parametrize(("role", "status"), [("editor_in", 403), ("viewer", 403), ("anonymous", 401),
                                              ("admin", 200)])
def test_reference_layers_are_admin_only(mclient: TestClient, keys: dict[str, str], econn: psycopg.Connection,
                                         role: str, status: int) -> None:
    fid = insert_feature(econn, "hutuo_river", YUHUA)
    r = mclient.patch(f"/collections/hutuo_river/items/{fid}", json={"properties": {"name": "支流"}},
                      headers={**auth(keys, role), "If-Match": _etag(mclient, keys, "hutuo_river", fid)})
    assert r.status_code == status, r.text


@pytest.mark.parametrize("role", ["anonymous", "viewer", "editor_in"])
def test_audit_and_tombstones_are_admin_only(mclient: TestClient, keys: dict[str, str], role: str) -> None:
    want = 401 if role == "anonymous" else 403
    assert mclient.get("/audit", headers=auth(keys, role)).status_code == want
    assert mclient.get("/collections/old_compounds/tombstones", headers=auth(keys, role)).status_code == want
    assert mclient.get("/admin/users", headers=auth(keys, role)).status_code == want
    assert mclient.get("/audit", headers=auth(keys, "admin")).status_code == 200
