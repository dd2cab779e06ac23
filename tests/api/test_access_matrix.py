"""The read and write policy on every route, built from the OpenAPI document itself.

Every operation of ``/api`` (so a route added later is covered without anyone remembering) is
called by anonymous, viewer, district-scoped editor and admin callers, once naming a restricted
layer (``old_compounds``; ``land_parcels`` is closed too) and once a public one
(``urban_villages``), and, for routes where the layers are optional, once without naming any.
Each cell is checked by status (from the route's access declaration, read from the app) and by
body: no response to an anonymous caller carries the restricted layer's id (features, search
hits, tile layers, counts) or the code of a restricted feature, while signed-in callers do get
them (the positive control that shows the checks could fail). Bodies are read with what their
documents unpack to (``tests.documents.unpacked``: ZIP members of an xlsx or docx, Flate
streams of a PDF), since a code in a compressed ledger is not in the bytes as sent; the layer
ledger is among the positive controls, so the unpacking is shown to work.

Also here: the POST /query/within leak of issue 12 as a regression test, every route declares
an access rule, and a district-scoped editor cannot write outside its districts by any route.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import QIAOXI, YUHUA, auth, geojson_of, insert_feature, make_client, row_md5
from tests.documents import unpacked

RESTRICTED = "old_compounds"
PUBLIC = "urban_villages"
CLOSED = ("land_parcels", RESTRICTED)
TARGETS = {RESTRICTED: "compounds_renovated_2021", PUBLIC: "villages_started_2021"}
ROLES = ("anonymous", "viewer", "editor_in", "admin")
SHAPES = ("named", "default")
REGISTRY_LISTINGS = {"/layers", "/viewer/config"}
"""Routes that list every layer's registry entry (documentation), with ``count: null`` when closed."""
REVEALS_CODE = {"/collections/{collection_id}/items/{feature_id}", "/viewer/search", "/query/point",
                "/query/nearest", "/viewer/history/{layer}/{feature_id}", "/maps/{collection_id}",
                "/collections/{collection_id}/ledger"}
REVEALS_LAYER = {"/tiles/{tms}/{z}/{x}/{y}", "/tiles/WebMercatorQuad/tilejson.json", "/query/district-summary",
                 "/collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json", "/query/within"}
LAYER_PARAMS = {"collection_id", "layer", "layers", "feature_id", "q", "target"}
"""Parameters whose value depends on the layer under test."""


@dataclass(frozen=True)
class Sample:
    """A feature of one layer, inserted for this module, and where to find it."""

    layer: str
    fid: int
    code: str
    lon: float
    lat: float
    tile: tuple[int, int, int]
    victim: int
    """A second feature that write requests target (a DELETE without If-Match may succeed)."""


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.fixture(scope="module")
def samples(edit_db: str) -> dict[str, Sample]:
    out = {}
    econn = psycopg.connect(edit_db, autocommit=True)
    for layer in (RESTRICTED, PUBLIC, "land_parcels"):
        fid = insert_feature(econn, layer, YUHUA)
        row = econn.execute(f"SELECT code, ST_X(c), ST_Y(c) FROM (SELECT code, ST_PointOnSurface(geom) AS c "  # noqa: S608
                            f"FROM renewal.{layer} WHERE id = %s) s", (fid,)).fetchone()
        assert row is not None
        out[layer] = Sample(layer, fid, row[0], row[1], row[2], _tile_of(row[1], row[2], 15),
                            insert_feature(econn, layer, YUHUA))
    econn.close()
    return out


@pytest.fixture(scope="module")
def mc(edit_db: str) -> Iterator[TestClient]:
    with make_client(edit_db, restricted_layers=",".join(CLOSED)) as c:
        yield c


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/api").json()
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def _declarations(client: TestClient) -> dict[tuple[str, str], set[str]]:
    from api.access import api_routes, declarations

    app: Any = client.app
    out: dict[tuple[str, str], set[str]] = {}
    for path, methods, dep in api_routes(app):
        for m in methods:
            out.setdefault((m, path.replace(":path}", "}")), set()).update(declarations(dep))
    return out


def _fill(name: str, s: Sample, path: str) -> Any:
    target = TARGETS[s.layer]
    z, x, y = s.tile
    values: dict[str, Any] = {
        "collection_id": s.layer, "layer": s.layer, "layers": s.layer, "feature_id": s.fid, "q": s.code,
        "target": target, "lon": s.lon, "lat": s.lat, "distance": 30, "k": 50, "district": YUHUA,
        "quarter": "2022Q3", "indicator": "urbanisation_rate", "import_id": 999999, "key_id": "0" * 12,
        "package": "leaflet", "path": "leaflet.js", "tms": "WebMercatorQuad", "z": z, "x": x, "y": y,
        "limit": 5,
    }
    if path.startswith("/progress") and name == "target":
        return target
    return values.get(name)


def _request(client: TestClient, method: str, path: str, op: dict[str, Any], s: Sample, shape: str,
             role: str, keys: dict[str, str], polygon: dict[str, Any]) -> Any:
    url = path
    params: dict[str, Any] = {}
    for p in op.get("parameters", []):
        name, where, required = p["name"], p["in"], p.get("required", False)
        if where == "header":
            continue
        value = _fill(name, s, path)
        if name == "feature_id" and method in ("PUT", "PATCH", "DELETE"):
            value = s.victim
        if where == "path":
            url = url.replace("{" + name + "}", str(value))
        elif value is not None and (required or (name not in LAYER_PARAMS or shape == "named")):
            if path == "/audit" and name != "layer":
                continue
            params[name] = value
    headers = auth(keys, role)
    if method == "GET":
        return client.get(url, params=params, headers=headers)
    if path == "/query/within":
        body: dict[str, Any] = {"geometry": polygon, **({"layers": [s.layer]} if shape == "named" else {})}
        return client.post(url, json=body, headers=headers)
    if path.endswith("/imports"):
        return client.post(url, files={"file": ("x.geojson", io.BytesIO(b"{}"), "application/geo+json")},
                           data={"dry_run": "true"}, headers=headers)
    if method in ("PUT", "PATCH", "DELETE"):
        # If-Match is optional (QGIS sends none), so an allowed write would change the sample; a stale ETag
        # makes it a 412 after the authorization checks, and the sample stays for the cells that read it
        headers = {**headers, "If-Match": '"access-matrix-stale"'}
    return client.request(method, url, params=params, json={}, headers=headers)


def _expected(decl: set[str], path: str, role: str, s: Sample, shape: str, has_layer_param: bool) -> set[int] | None:
    """Exact statuses a cell must answer, or None for "any status that is neither 401/403 nor 5xx"."""
    anon, closed = role == "anonymous", s.layer in CLOSED
    if "require_admin" in decl:
        return {401} if anon else ({403} if role != "admin" else None)
    if "reviewer_only" in decl:  # submissions: reviewers and admins decide
        return {401} if anon else ({403} if role in ("viewer", "editor_in") else None)
    if "submission_reader" in decl or "submittable_layer" in decl:  # submissions: editors, reviewers, admins
        return {401} if anon else ({403} if role == "viewer" else None)
    if "writable_layer" in decl or "require_authenticated" in decl:
        return {401} if anon else ({403} if role == "viewer" and "writable_layer" in decl else None)
    if "read_access" in decl and anon:
        if path == "/maps/progress" and (shape == "default" or closed):
            return {401}  # the whole plan's map draws the restricted target layer
        names_layer = any(f"{{{p}}}" in path for p in ("collection_id", "layer", "target")) or path in (
            "/query/nearest", "/viewer/status-as-of", "/viewer/target-features")
        if closed and has_layer_param and (shape == "named" or names_layer):
            return {401} if path != "/viewer/target-features" or TARGETS[s.layer] else None
    return None


def _text(r: Any) -> str:
    """The answer as text, with what its documents unpack to: a code inside a ledger (xlsx) or report counts too."""
    return (r.content + b"\n" + unpacked(r.content)).decode("utf-8", "replace")


def test_every_route_declares_access(mc: TestClient) -> None:
    from api.access import undeclared_routes

    app: Any = mc.app
    assert undeclared_routes(app) == []
    decl = _declarations(mc)
    for method, path, _ in _operations(mc):
        assert decl.get((method, path)), f"{method} {path} declares no access rule"


def test_an_app_with_an_undeclared_route_refuses_to_start() -> None:
    from fastapi import APIRouter

    from api import app as app_module

    extra = APIRouter()

    @extra.get("/sneaky")
    async def sneaky() -> dict[str, str]:
        return {}

    original = app_module._router_modules

    class _Mod:
        router = extra
        __name__ = "sneaky"

    app_module._router_modules = lambda: [*original(), _Mod]  # type: ignore[assignment, list-item]
    try:
        with pytest.raises(RuntimeError, match="GET /sneaky"):
            app_module.create_app()
    finally:
        app_module._router_modules = original  # type: ignore[assignment]


def test_matrix_from_openapi(mc: TestClient, keys: dict[str, str], samples: dict[str, Sample],
                             econn: psycopg.Connection) -> None:
    ops = _operations(mc)
    decl = _declarations(mc)
    assert len(ops) >= 45
    failures: list[str] = []
    cells = 0
    for s in (samples[RESTRICTED], samples[PUBLIC]):
        square = econn.execute("SELECT ST_AsGeoJSON(ST_Expand(ST_Envelope(geom), 0.0005)) FROM renewal."
                               + s.layer + " WHERE id = %s", (s.fid,)).fetchone()
        assert square is not None
        polygon = json.loads(square[0])
        for method, path, op in ops:
            has_layer_param = any(p["name"] in LAYER_PARAMS for p in op.get("parameters", [])) or \
                path == "/query/within"
            for shape in SHAPES if has_layer_param else ("named",):
                for role in ROLES:
                    cells += 1
                    r = _request(mc, method, path, op, s, shape, role, keys, polygon)
                    cell = f"{method} {path} [{role}, {s.layer}, {shape}] -> {r.status_code}"
                    want = _expected(decl[(method, path)], path, role, s, shape, has_layer_param)
                    if r.status_code >= 500:
                        failures.append(f"{cell}: server error {_text(r)[:200]}")
                        continue
                    if want is not None and r.status_code not in want:
                        failures.append(f"{cell}: expected {sorted(want)} {_text(r)[:200]}")
                        continue
                    if want is None and r.status_code in (401, 403):
                        failures.append(f"{cell}: denied {_text(r)[:200]}")
                        continue
                    failures.extend(_body_checks(cell, r, role, s, shape, path, decl[(method, path)], samples))
    assert cells > 600
    assert not failures, f"{len(failures)} of {cells} cells failed:\n" + "\n".join(failures[:60])


def _body_checks(cell: str, r: Any, role: str, s: Sample, shape: str, path: str, decl: set[str],
                 samples: dict[str, Sample]) -> list[str]:
    text = _text(r)
    if path == "/viewer/search" and r.status_code == 200:
        text = json.dumps(r.json()["hits"])  # without the echo of the caller's own search text
    out: list[str] = []
    if role == "anonymous":
        for closed in CLOSED:
            if samples[closed].code in text:
                out.append(f"{cell}: anonymous response holds the code of a {closed} feature")
        if 200 <= r.status_code < 300 and "plan_aggregates" not in decl:
            if path in REGISTRY_LISTINGS:
                layers = r.json()["layers"]
                for entry in layers:
                    if entry["id"] in CLOSED and entry["count"] is not None:
                        out.append(f"{cell}: count of closed layer {entry['id']} shown")
            else:
                for closed in CLOSED:
                    if closed in text:
                        out.append(f"{cell}: anonymous response names closed layer {closed}")
    elif r.status_code == 200 and shape == "named" and s.layer == RESTRICTED and cell.startswith("GET "):
        # positive control: signed-in callers do get the restricted layer's data
        if path in REVEALS_CODE and s.code not in text:
            out.append(f"{cell}: signed-in caller did not get the feature {s.code}")
        if path in REVEALS_LAYER and RESTRICTED not in text:
            out.append(f"{cell}: signed-in caller did not get the layer {RESTRICTED}")
    return out


# --------------------------------------------------------------------------- the leak of issue 12


def test_anonymous_post_within_cannot_read_a_restricted_layer(edit_db: str, econn: psycopg.Connection,
                                                              keys: dict[str, str]) -> None:
    """Issue 12: anonymous POST /query/within with layers=[land_parcels] answered 200 with parcels."""
    row = econn.execute("SELECT ST_AsGeoJSON(ST_Expand(ST_Envelope(geom), 0.002)), code FROM renewal.land_parcels "
                        "WHERE district_code = %s ORDER BY id LIMIT 1", (YUHUA,)).fetchone()
    assert row is not None
    body = {"geometry": json.loads(row[0]), "layers": ["land_parcels"]}
    with make_client(edit_db, restricted_layers="land_parcels") as c:
        r = c.post("/query/within", json=body)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert row[1] not in r.text and "count" not in r.json()
        # the same caller may still ask about open layers, and "all layers" leaves parcels out
        assert c.post("/query/within", json={**body, "layers": ["old_compounds"]}).status_code == 200
        r = c.post("/query/within", json={"geometry": body["geometry"]})
        assert r.status_code == 200 and "land_parcels" not in r.text
        # signed in, the parcel is there (so the check above could fail)
        r = c.post("/query/within", json=body, headers=auth(keys, "viewer"))
        assert r.status_code == 200 and row[1] in r.text


# --------------------------------------------------------------------------- district scope on every write


def test_district_editor_cannot_write_outside_its_districts(mc: TestClient, keys: dict[str, str],
                                                            econn: psycopg.Connection) -> None:
    from tests.api.edit_support import LAYER_PROPS, inner_square_wkt, unique

    editor = auth(keys, "editor_in")  # 裕华区 only
    layer = PUBLIC
    outside = geojson_of(econn, inner_square_wkt(econn, QIAOXI))
    code = unique("OUT")
    r = mc.post(f"/collections/{layer}/items", headers=editor, json={
        "type": "Feature", "geometry": outside, "properties": {"code": code, "name": "区外", **LAYER_PROPS[layer]},
        "change": {"effective_date": "2024-01-01"}})
    assert r.status_code == 403, r.text
    assert econn.execute(f"SELECT count(*) FROM renewal.{layer} WHERE code = %s", (code,)).fetchone() == (0,)  # noqa: S608
    foreign = insert_feature(econn, layer, QIAOXI)
    md5 = row_md5(econn, layer, foreign)
    etag = mc.get(f"/collections/{layer}/items/{foreign}", headers=editor).headers["etag"]
    h = {**editor, "If-Match": etag}
    assert mc.patch(f"/collections/{layer}/items/{foreign}", json={"properties": {"name": "改"}},
                    headers=h).status_code == 403
    assert mc.put(f"/collections/{layer}/items/{foreign}", headers=h, json={
        "type": "Feature", "geometry": outside, "properties": {"code": unique("P"), "name": "x",
                                                               **LAYER_PROPS[layer]}}).status_code == 403
    assert mc.delete(f"/collections/{layer}/items/{foreign}", headers=h).status_code == 403
    assert row_md5(econn, layer, foreign) == md5
    # the import route applies the same scope
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": outside, "properties": {
        "code": unique("IMP"), "name": "区外导入", **LAYER_PROPS[layer]}}]}
    before = econn.execute(f"SELECT count(*) FROM renewal.{layer}").fetchone()  # noqa: S608
    r = mc.post(f"/collections/{layer}/imports", headers=editor,
                files={"file": ("out.geojson", io.BytesIO(json.dumps(fc).encode()), "application/geo+json")},
                data={"effective_date": "2024-01-01"})
    assert r.status_code in (403, 422), r.text
    assert econn.execute(f"SELECT count(*) FROM renewal.{layer}").fetchone() == before  # noqa: S608
    r = mc.post(f"/collections/{layer}/imports", headers=editor, data={"mode": "replace"},
                files={"file": ("out.geojson", io.BytesIO(json.dumps(fc).encode()), "application/geo+json")})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("path", ["/query/nearest?layer=&lat=0&k=5", "/query/nearest?layer=",
                                  "/viewer/status-as-of?layer=", "/viewer/history/%20/1",
                                  "/query/nearest?layer=urban_villages&from_layer=&from_id=1"])
def test_empty_layer_names_are_400(mc: TestClient, path: str) -> None:
    """Found by schemathesis: an empty layer id was a 500."""
    r = mc.get(path)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("filename", "data", "parameter"), [
    ("x" * 600 + ".geojson", {}, "file"),
    ("ok.geojson", {"source_doc": "石政\x00字"}, "source_doc"),
    ("ok.geojson", {"crs": "EPSG:4490" + "x" * 600}, "crs"),
])
def test_upload_file_names_and_form_fields_are_guarded(mc: TestClient, keys: dict[str, str], filename: str,
                                                       data: dict[str, str], parameter: str) -> None:
    """NUL bytes and oversized text in a multipart upload are a 400 naming the field, never a 500."""
    r = mc.post(f"/collections/{PUBLIC}/imports", headers=auth(keys, "admin"), data={"dry_run": "true", **data},
                files={"file": (filename, io.BytesIO(b'{"type":"FeatureCollection","features":[]}'),
                                "application/geo+json")})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json().get("parameter") == parameter, r.text
