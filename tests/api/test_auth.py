"""API keys (argon2, CLI), bearer JWTs, anonymous read policy and rate limiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import auth, make_client, point_in
from tests.conftest import ROOT

ISSUER = "https://idp.example.gov.cn/realms/sjz"
SECRET = "a-test-shared-secret-of-at-least-32-bytes!"


@pytest.fixture(scope="module")
def pc(edit_db: str) -> Iterator[TestClient]:
    """Land parcels closed to anonymous readers, JWTs accepted (HS256 for the test), no key cache."""
    with make_client(edit_db, restricted_layers="land_parcels", jwt_issuer=ISSUER, jwt_key=SECRET,
                     jwt_algorithms="HS256", auth_cache_ttl_s=0) as c:
        yield c


def _cli(edit_db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "users", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": edit_db}, timeout=120, check=False)


def test_cli_add_list_revoke_and_hashed_storage(pc: TestClient, edit_db: str, econn: psycopg.Connection) -> None:
    out = _cli(edit_db, "add", "cli.editor", "--role", "editor", "--district", "裕华区", "--district", "130104")
    assert out.returncode == 0, out.stderr
    key = next(w for w in out.stdout.split() if w.startswith("rk_"))
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    who = pc.get("/auth/whoami", headers={"X-API-Key": key}).json()
    assert who == {"name": "cli.editor", "role": "editor", "districts": ["130104", "130108"], "via": "key"}
    assert pc.get("/auth/whoami", headers={"Authorization": f"Bearer {key}"}).json()["name"] == "cli.editor"
    stored = econn.execute("SELECT key_hash FROM renewal.api_keys WHERE key_id = %s", (key_id,)).fetchone()[0]
    assert stored.startswith("$argon2id$") and secret not in stored
    listing = _cli(edit_db, "list")
    assert listing.returncode == 0 and "cli.editor" in listing.stdout and key_id in listing.stdout
    assert secret not in listing.stdout
    # a wrong secret for a real key id, a malformed key, an unknown scheme
    assert pc.get("/auth/whoami", headers={"X-API-Key": f"rk_{key_id}_{'x' * 43}"}).status_code == 401
    assert pc.get("/auth/whoami", headers={"X-API-Key": "hunter2"}).status_code == 401
    r = pc.get("/auth/whoami", headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
    # errors in the CLI: unknown district, duplicate user
    bad = _cli(edit_db, "add", "x.y", "--role", "editor", "--district", "火星区")
    assert bad.returncode == 2 and "火星区" in bad.stderr
    assert _cli(edit_db, "add", "cli.editor").returncode == 2
    # revoke by user name: the key stops working (cache TTL 0 here)
    assert _cli(edit_db, "revoke", "cli.editor").returncode == 0
    assert pc.get("/auth/whoami", headers={"X-API-Key": key}).status_code == 401


def test_admin_revoke_through_the_api_is_immediate(edit_db: str, keys: dict[str, str]) -> None:
    from api.cli.users import issue_key

    with make_client(edit_db, auth_cache_ttl_s=3600) as c:
        name = c.get("/auth/whoami", headers=auth(keys, "viewer")).json()["name"]
        key = issue_key(edit_db, name, "temp")
        assert c.get("/auth/whoami", headers={"X-API-Key": key}).json()["role"] == "viewer"  # now cached
        r = c.post(f"/admin/keys/{key.split('_')[1]}/revoke", headers=auth(keys, "admin"))
        assert r.status_code == 204
        assert c.get("/auth/whoami", headers={"X-API-Key": key}).status_code == 401


def _token(**claims: object) -> str:
    base = {"iss": ISSUER, "sub": "li.si", "exp": int(time.time()) + 600, "role": "editor", "districts": ["130108"]}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(("claims", "key", "status"), [
    ({}, SECRET, 200),
    ({"exp": int(time.time()) - 10}, SECRET, 401),
    ({"iss": "https://evil.example.com"}, SECRET, 401),
    ({"exp": None}, SECRET, 401),
    ({}, "another-secret-another-secret-another!", 401),
    ({"districts": "130108"}, SECRET, 401),
])
def test_bearer_jwts(pc: TestClient, claims: dict[str, object], key: str, status: int) -> None:
    base = {"iss": ISSUER, "sub": "li.si", "exp": int(time.time()) + 600, "role": "editor", "districts": ["130108"]}
    base.update(claims)
    token = jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="HS256")
    r = pc.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json() == {"name": "li.si", "role": "editor", "districts": ["130108"], "via": "jwt"}


def test_jwt_editor_edits_in_district_and_is_audited(pc: TestClient, econn: psycopg.Connection,
                                                     keys: dict[str, str]) -> None:
    from tests.api.edit_support import insert_feature

    fid = insert_feature(econn, "old_compounds")
    url = f"/collections/old_compounds/items/{fid}"
    etag = pc.get(url).headers["etag"]
    r = pc.patch(url, json={"properties": {"households": 33}},
                 headers={"Authorization": f"Bearer {_token()}", "If-Match": etag})
    assert r.status_code == 200, r.text
    actor = econn.execute("SELECT actor FROM renewal.audit_log WHERE layer = 'old_compounds' AND feature_id = %s "
                          "ORDER BY id DESC LIMIT 1", (fid,)).fetchone()
    assert actor == ("li.si",)


def test_anonymous_read_policy(pc: TestClient, keys: dict[str, str], econn: psycopg.Connection) -> None:
    viewer = auth(keys, "viewer")
    for path in ("/collections/land_parcels/items?limit=1", "/collections/land_parcels",
                 "/collections/land_parcels/tiles/WebMercatorQuad/14/13500/6200",
                 "/tiles/WebMercatorQuad/14/13500/6200?layers=old_compounds,land_parcels",
                 "/query/point?lon=114.5&lat=38.0&layers=land_parcels"):
        r = pc.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert pc.get(path, headers=viewer).status_code in (200, 204), path
    assert pc.get("/collections/old_compounds/items?limit=1").status_code == 200
    # "all layers" routes leave closed layers out for anonymous callers
    row = econn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM renewal.land_parcels "
                        "ORDER BY id LIMIT 1) AS s").fetchone()
    params = {"lon": row[0], "lat": row[1], "distance": 50}
    anon = pc.get("/query/point", params=params)
    signed = pc.get("/query/point", params=params, headers=viewer)
    assert anon.status_code == signed.status_code == 200
    assert "land_parcels" in signed.text and "land_parcels" not in anon.text


def test_registry_policy_can_be_reopened(edit_db: str) -> None:
    with make_client(edit_db, restricted_layers="land_parcels,old_compounds", public_layers="land_parcels") as c:
        assert c.get("/collections/land_parcels/items?limit=1").status_code == 200
        assert c.get("/collections/old_compounds/items?limit=1").status_code == 401
        # /layers says the policy in force, not the registry file's anonymous_read (it said true for both)
        anon = {lyr["id"]: lyr["anonymous_read"] for lyr in c.get("/layers").json()["layers"]}
        assert anon["land_parcels"] is True and anon["old_compounds"] is False and anon["urban_villages"] is True


def test_rate_limit_for_anonymous_clients(edit_db: str, keys: dict[str, str], econn: psycopg.Connection) -> None:
    with make_client(edit_db, anon_rate_per_s=0.5, anon_burst=5) as c:
        codes = [c.get("/collections/old_compounds/items?limit=1").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        r = c.get("/collections/old_compounds/items?limit=1")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 2
        assert r.headers["content-type"].startswith("application/problem+json")
        # signed-in clients are not limited
        assert all(c.get("/healthz", headers=auth(keys, "viewer")).status_code == 200 for _ in range(10))
        time.sleep(2.1)
        assert c.get("/healthz").status_code == 200


def test_request_id_is_echoed_or_generated(pc: TestClient) -> None:
    assert pc.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = pc.get("/healthz", headers={"X-Request-Id": "bad id\r\nX-Evil: 1"}).headers["x-request-id"]
    assert len(generated) == 32 and "evil" not in generated.lower()


def test_point_helper_is_inside_district(econn: psycopg.Connection) -> None:
    x, y = point_in(econn, "130108")
    inside = econn.execute("SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4490)) FROM renewal.districts "
                           "WHERE code = '130108'", (x, y)).fetchone()
    assert inside == (True,)


def test_cross_layer_search_hides_restricted_layers_from_anonymous(
    pc: TestClient, keys: dict[str, str], econn: psycopg.Connection
) -> None:
    code = econn.execute("SELECT code FROM renewal.land_parcels ORDER BY id LIMIT 1").fetchone()[0]
    anon = pc.get("/viewer/search", params={"q": code})
    assert anon.status_code == 200
    assert all(hit["layer"] != "land_parcels" for hit in anon.json()["hits"])
    assert pc.get("/viewer/search", params={"q": code, "layer": "land_parcels"}).status_code == 401
    signed = pc.get("/viewer/search", params={"q": code}, headers=auth(keys, "viewer"))
    assert any(hit["layer"] == "land_parcels" and hit["code"] == code for hit in signed.json()["hits"])
