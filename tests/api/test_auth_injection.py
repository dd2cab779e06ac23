"""Injection attempts in every parameter: answered with 400 (or, where the text is plain data, no match) and no effect.

Every layer table and the audit log are fingerprinted (md5 over all rows) before and after
the whole battery; the server runs as the application role, and every value is a bound
parameter, so nothing may change. Requests are sent as an administrator so that nothing is
stopped early by authorisation.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import auth, make_client, table_md5

LAYER = "old_compounds"
ITEMS = f"/collections/{LAYER}/items"

# (parameter, value) -> 400: malformed once the payload is appended
BAD_PARAMS: list[tuple[str, str]] = [
    ("filter", "name = 'x'; DROP TABLE renewal.old_compounds; --"),
    ("filter", "1=1) OR (1=1"),
    ("filter", "name = 'a' UNION SELECT version()"),
    ("filter", "households > 0; DELETE FROM renewal.audit_log"),
    ("filter", "\"name\"\"; DROP TABLE x; --\" = 'a'"),
    ("filter", "pg_sleep(5) = 1"),
    ("filter", "S_INTERSECTS(geom, POINT(114.5 38)); TRUNCATE renewal.old_compounds"),
    ("sortby", "name;DROP TABLE renewal.old_compounds"),
    ("sortby", "-name,(SELECT 1)"),
    ("sortby", "name desc--"),
    ("properties", "name,(select version())"),
    ("properties", "code;drop table x"),
    ("ids", "1;DROP TABLE renewal.old_compounds"),
    ("ids", "1 OR 1=1"),
    ("bbox", "114,38,115,39);DROP TABLE renewal.old_compounds;--"),
    ("bbox", "114,38,115,39 OR 1=1"),
    ("crs", "EPSG:4326';DROP TABLE renewal.old_compounds;--"),
    ("crs", "http://www.opengis.net/def/crs/EPSG/0/4326 OR 1=1"),
    ("bbox-crs", "EPSG:4490); DELETE FROM renewal.old_compounds; --"),
    ("filter-crs", "EPSG:4326'--"),
    ("datetime", "2020-01-01'; DROP TABLE renewal.old_compounds; --"),
    ("limit", "10; DROP TABLE renewal.old_compounds"),
    ("cursor", "'; DROP TABLE renewal.old_compounds; --"),
    ("filter-lang", "sql"),
]

# values that are well-formed literals: they must be treated as data (no match), never as SQL
DATA_PARAMS: list[tuple[str, str]] = [
    ("filter", "name = 'x'' OR ''1''=''1'"),
    ("filter", "name LIKE '%''; DROP TABLE renewal.old_compounds; --'"),
    ("name", "x' OR '1'='1"),
    ("code", "'; DELETE FROM renewal.old_compounds; --"),
]


@pytest.fixture(scope="module")
def ic(edit_db: str) -> Iterator[TestClient]:
    """A client on the editing database."""
    with make_client(edit_db) as c:
        yield c


@pytest.fixture()
def fingerprint(econn: psycopg.Connection) -> Iterator[None]:
    """Assert that no layer table and not the audit log changed during the test."""
    from layers.registry import get_registry

    tables = [layer.table for layer in get_registry()] + ["audit_log", "status_history", "tombstones"]
    before = {t: table_md5(econn, t) for t in tables}
    yield
    after = {t: table_md5(econn, t) for t in tables}
    assert after == before, [t for t in tables if after[t] != before[t]]


@pytest.mark.parametrize(("param", "value"), BAD_PARAMS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_PARAMS)])
def test_injection_in_query_parameters_is_400(ic: TestClient, keys: dict[str, str], fingerprint: None,
                                              param: str, value: str) -> None:
    params = {param: value}
    if param == "filter-crs":
        params["filter"] = "S_INTERSECTS(geom, POINT(114.5 38))"
    r = ic.get(ITEMS, params=params, headers=auth(keys, "admin"))
    assert r.status_code == 400, (param, value, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("param", "value"), DATA_PARAMS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(DATA_PARAMS)])
def test_quoted_payloads_are_only_data(ic: TestClient, keys: dict[str, str], fingerprint: None,
                                       param: str, value: str) -> None:
    r = ic.get(ITEMS, params={param: value}, headers=auth(keys, "admin"))
    assert r.status_code == 200, r.text[:300]
    assert r.json()["numberReturned"] == 0


@pytest.mark.parametrize("path_id", ["1;DROP TABLE renewal.old_compounds", "1 OR 1=1", "1'--", "-1", "1e3"])
def test_injection_in_feature_ids(ic: TestClient, keys: dict[str, str], fingerprint: None, path_id: str) -> None:
    admin = auth(keys, "admin")
    assert ic.get(f"{ITEMS}/{path_id}", headers=admin).status_code == 404
    assert ic.patch(f"{ITEMS}/{path_id}", json={"properties": {"name": "x"}},
                    headers={**admin, "If-Match": "*"}).status_code == 404
    assert ic.delete(f"{ITEMS}/{path_id}", headers={**admin, "If-Match": "*"}).status_code == 404


@pytest.mark.parametrize("body", [
    {"properties": {"name; DROP TABLE renewal.old_compounds; --": "x"}},
    {"properties": {"name\" = 'x', status = 'completed' --": "x"}},
    {"properties": {"status": "completed'; --"}},
    {"properties": {"name": "x"}, "change": {"effective_date": "2024-01-01'; DROP TABLE x; --"}},
    {"properties": {"name": "x"}, "change": {"source_doc'; --": "x"}},
])
def test_injection_in_edit_bodies(ic: TestClient, keys: dict[str, str], fingerprint: None, body: dict[str, object],
                                  econn: psycopg.Connection) -> None:
    fid = econn.execute("SELECT min(id) FROM renewal.old_compounds").fetchone()[0]
    r = ic.patch(f"{ITEMS}/{fid}", json=body, headers={**auth(keys, "admin"), "If-Match": "*"})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("params", [
    {"feature": "1 OR 1=1"}, {"user": "' OR ''='"}, {"layer": "old_compounds; DROP TABLE x"},
    {"since": "2020-01-01'; --"}, {"action": "UPDATE' OR '1'='1"},
])
def test_injection_in_audit_parameters(ic: TestClient, keys: dict[str, str], fingerprint: None,
                                       params: dict[str, str]) -> None:
    r = ic.get("/audit", params=params, headers=auth(keys, "admin"))
    if r.status_code == 200:
        assert r.json()["records"] == [], params  # only plain text that matches nothing
    else:
        assert r.status_code in (400, 404), (params, r.status_code)


GEOJSON_OK = json.dumps({"type": "FeatureCollection", "features": [{
    "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
        [114.52, 38.02], [114.521, 38.02], [114.521, 38.021], [114.52, 38.021], [114.52, 38.02]]]},
    "properties": {"code": "INJ-1", "name": "注入测试", "status": "pending"}}]}).encode()


@pytest.mark.parametrize("filename", [
    "../../../../tmp/renewal_pwned.geojson",
    "..\\..\\..\\tmp\\renewal_pwned.geojson",
    "x'; DROP TABLE renewal.old_compounds; --.geojson",
    "/etc/passwd",
    "$(touch /tmp/renewal_pwned).geojson",
])
def test_injection_in_upload_file_names(ic: TestClient, keys: dict[str, str], fingerprint: None,
                                        filename: str) -> None:
    r = ic.post(f"/collections/{LAYER}/imports", headers=auth(keys, "admin"),
                files={"file": (filename, io.BytesIO(b"not a spatial file; DROP TABLE x;"),
                                "application/octet-stream")},
                data={"dry_run": "true"})
    assert r.status_code == 400, (filename, r.status_code, r.text[:300])
    # a valid file under a hostile name is only ever read from the upload folder (dry run: nothing written)
    r = ic.post(f"/collections/{LAYER}/imports", headers=auth(keys, "admin"),
                files={"file": (filename, io.BytesIO(GEOJSON_OK), "application/geo+json")},
                data={"dry_run": "true", "effective_date": "2024-01-01"})
    assert r.status_code in (200, 400), (filename, r.status_code, r.text[:300])
    assert not Path("/tmp/renewal_pwned.geojson").exists() and not Path("/tmp/renewal_pwned").exists()
    if r.status_code == 200:
        name = r.json().get("file_name", "")
        assert "/" not in name and "\\" not in name and not name.startswith(".")


@pytest.mark.parametrize(("mapping", "allowed"), [
    ("!!python/object/apply:os.system ['touch /tmp/renewal_pwned']\n", (400, 422)),
    ("columns:\n  \"name; DROP TABLE renewal.old_compounds; --\": name\n", (400, 422)),
    ("columns:\n  name: \"name\\\"; DROP TABLE renewal.old_compounds; --\"\n", (400, 422)),
    ("defaults:\n  \"status'; --\": pending\n", (400, 422)),
    # a hostile *source value* is just a string to match: a dry run that matches nothing
    ("values:\n  status:\n    \"x'; DELETE FROM renewal.audit_log; --\": pending\n", (200, 400, 422)),
])
def test_injection_in_mapping_files(ic: TestClient, keys: dict[str, str], fingerprint: None, mapping: str,
                                    allowed: tuple[int, ...]) -> None:
    r = ic.post(f"/collections/{LAYER}/imports", headers=auth(keys, "admin"),
                files={"file": ("ok.geojson", io.BytesIO(GEOJSON_OK), "application/geo+json"),
                       "mapping": ("mapping.yaml", io.BytesIO(mapping.encode()), "application/yaml")},
                data={"dry_run": "true", "effective_date": "2024-01-01"})
    assert r.status_code in allowed, (mapping, r.status_code, r.text[:300])
    assert not Path("/tmp/renewal_pwned").exists()
