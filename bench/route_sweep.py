"""Every route of ``/api``, as an anonymous caller and as each role, with real and with hostile input.

A sweep, run and reported, not a test (the suite's access matrix and schemathesis runs are the
tests; this is the "careful outsider" pass over the whole surface before a release):

1. A scratch demo database (dropped at the end), one user per role made with the real
   ``renewal users`` code (viewer, a district editor of 长安区, reviewer, admin), and a live
   ``renewal serve`` with two workers and ``RENEWAL_RESTRICTED_LAYERS=land_parcels``.
2. **Reads:** every GET path of the OpenAPI document, each path parameter filled with real values
   (every collection, a real feature id of it, every target, indicator and style, a tile in the
   city at z11 and z15), asked plain, with ``f=html`` and with ``f=json``.
3. **Hostile reads:** the same paths for two collections (land_parcels, old_compounds) with every
   declared query parameter set, in turn, to a NUL byte, 60,000 characters, full-width digits,
   ``-1`` and ``1e309``.
4. **Writes:** every POST/PUT/PATCH/DELETE path, for the same two collections and a real feature, with
   bodies that are not JSON, GBK bytes, a JSON array, ``{}`` and a JSON string holding ``\\u0000``.
   The anonymous caller and the viewer go first; the audit log's highest id before and after
   their turn shows whether anything was written.

Checks: no 5xx anywhere; no answer to the anonymous caller carries land_parcels data (the leak
detector of ``bench/schemathesis_large.py``); no write succeeds (2xx) for the anonymous caller or
the viewer, and the audit log did not move during their turn. Prints statuses per caller and
every finding; exits 1 on any.

Usage: ``.venv/bin/python bench/route_sweep.py``
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESTRICTED = "land_parcels"
HOSTILE_LAYERS = ("land_parcels", "old_compounds")
ROLES: tuple[tuple[str, str | None, list[str]], ...] = (
    ("anonymous", None, []), ("viewer", "viewer", []), ("editor", "editor", ["长安区"]),
    ("reviewer", "reviewer", []), ("admin", "admin", []))
HOSTILE_VALUES = ("\x00", "a\x00b", "x" * 60_000, "１２３", "-1", "1e309")
BAD_BODIES: tuple[tuple[str, bytes], ...] = (
    ("not-json", b"status=done"), ("gbk", "{\"name\": \"老旧小区\"}".encode("gbk")), ("array", b"[1, 2]"),
    ("empty-object", b"{}"), ("nul-string", b"{\"name\": \"a\\u0000b\"}"))
TILES = {"z": ["11", "15"], "x": ["1675", "26806"], "y": ["789", "12634"]}


def _path_values(name: str, layer: str | None, real: dict[str, Any], ids: dict[str, int]) -> list[str]:
    if name in ("collection_id", "layer_id", "layer"):
        return [layer] if layer else []
    if name in ("feature_id", "fid", "id"):
        return [str(ids.get(layer or "", 1))]
    if name in ("target", "target_id"):
        return list(real["targets"])
    if name in ("indicator", "indicator_id"):
        return list(real["indicators"])
    if name in ("style_id", "style"):
        return list(real["styles"])
    if name in ("tileMatrixSetId", "tms"):
        return ["WebMercatorQuad"]
    return ["1"]  # z, x and y are set together by expand()


def expand(path: str, real: dict[str, Any], ids: dict[str, int], layers: list[str]) -> list[str]:
    """Concrete URLs for ``path``: one per collection (if it has one) x the other parameters' real values.

    A tile's z, x and y go together: (11, 1675, 789) and (15, 26806, 12634), both in the city.
    """
    names = re.findall(r"{([^}]+)}", path)
    per_layer = any(n in ("collection_id", "layer_id", "layer") for n in names)
    tiled = any(n in ("tileMatrix", "z") for n in names)
    out: list[str] = []
    for layer in (layers if per_layer else [None]):
        for i in range(len(TILES["z"]) if tiled else 1):
            urls = [path]
            for name in names:
                tile_key = {"tileMatrix": "z", "tileRow": "y", "tileCol": "x"}.get(name, name)
                values = [TILES[tile_key][i]] if tiled and tile_key in TILES else _path_values(name, layer, real, ids)
                urls = [u.replace("{" + name + "}", v, 1) for u in urls for v in values]
            out.extend(urls)
    return sorted(set(out))


def main() -> int:
    import httpx
    import psycopg

    from api.cli.users import add_user
    from bench.schemathesis_large import code_pattern, leak_findings, real_values, restricted_codes
    from tests.conftest import LiveServer, scratch_demo_database

    t0 = time.monotonic()
    load_start = os.getloadavg()
    statuses: dict[str, Counter[int]] = {role: Counter() for role, _, _ in ROLES}
    findings: list[str] = []
    requests = 0
    with scratch_demo_database("renewal_sweep") as db:
        keys = {role: add_user(db, f"sweep_{role}_{uuid.uuid4().hex[:6]}", r, d) if r else None
                for role, r, d in ROLES}
        codes = restricted_codes(db, RESTRICTED)
        code_set, pattern = set(codes), code_pattern(codes)
        server = LiveServer(db, env={"RENEWAL_RESTRICTED_LAYERS": RESTRICTED, "RENEWAL_ANON_RATE_PER_S": "0"})
        try:
            real = real_values(db, server.url, str(keys["admin"]))
            layers = real["layers"]
            with psycopg.connect(db) as conn:
                ids = {layer: conn.execute(psycopg.sql.SQL("SELECT min(id) FROM renewal.{}").format(
                    psycopg.sql.Identifier(layer))).fetchone()[0] for layer in layers}  # type: ignore[index]
            spec = httpx.get(f"{server.url}/api", headers={"X-API-Key": str(keys["admin"])}, timeout=60).json()
            client = httpx.Client(base_url=server.url, timeout=120)

            def ask(role: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
                nonlocal requests
                headers = dict(kw.pop("headers", {}))
                if keys[role]:
                    headers["X-API-Key"] = str(keys[role])
                try:
                    r = client.request(method, url, headers=headers, **kw)
                except httpx.HTTPError as exc:
                    findings.append(f"{role} {method} {url[:120]}: transport error {exc!r}")
                    return None
                requests += 1
                statuses[role][r.status_code] += 1
                if r.status_code >= 500:
                    findings.append(f"{role} {method} {url[:160]} -> {r.status_code}: {r.text[:200]}")
                if role == "anonymous":
                    sent = (url + str(kw.get("params", ""))).encode() + (kw.get("content") or b"")
                    for f in leak_findings(RESTRICTED, code_set, pattern, url.split("?")[0], r.status_code,
                                           r.headers.get("content-type", ""), r.content, sent):
                        findings.append(f"anonymous {method} {url[:160]} -> {r.status_code}: leak {f}")
                return r

            gets: list[tuple[str, str, list[str]]] = []
            writes: list[tuple[str, str, list[str]]] = []
            for path, ops in spec["paths"].items():
                for method, op in ops.items():
                    params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
                    # OPTIONS and HEAD read (Part 4's OPTIONS lists the allowed methods)
                    reads = method in ("get", "head", "options")
                    (gets if reads else writes).append((path, method.upper(), params))
            for role, _, _ in ROLES:
                for path, method, params in gets:
                    for url in expand(path, real, ids, layers):
                        for extra in ({}, {"f": "html"}, {"f": "json"}):
                            ask(role, method, url, params=extra)
                        if any(f"/{layer}" in url for layer in HOSTILE_LAYERS) or "{" not in path:
                            for name in params:
                                for value in HOSTILE_VALUES:
                                    ask(role, method, url, params={name: value})
            # then the writes (an admin's valid DELETE removes the sample feature), the audit log watched
            bodies = list(BAD_BODIES)
            for layer in HOSTILE_LAYERS:  # a valid feature: the sample, renamed
                doc = client.get(f"/collections/{layer}/items/{ids[layer]}",
                                 headers={"X-API-Key": str(keys["admin"])}).json()
                doc.get("properties", {})["name"] = "路线巡检（演示）"
                bodies.append((f"valid-{layer}", json.dumps(doc, ensure_ascii=False).encode()))
            with psycopg.connect(db, autocommit=True) as conn:
                def audit_mark() -> int:
                    row = conn.execute("SELECT coalesce(max(id), 0) FROM renewal.audit_log").fetchone()
                    return int(row[0]) if row else 0

                for role, _, _ in ROLES:
                    before = audit_mark()
                    for path, method, _params in writes:
                        for url in expand(path, real, ids, list(HOSTILE_LAYERS)):
                            for _kind, body in bodies:
                                r = ask(role, method, url, content=body,
                                        headers={"Content-Type": "application/json"})
                                if r is not None and role in ("anonymous", "viewer") and r.status_code < 300 \
                                        and not url.startswith(("/auth/session", "/query")):
                                    findings.append(f"{role} {method} {url} -> {r.status_code}: a write succeeded")
                    if role in ("anonymous", "viewer") and audit_mark() != before:
                        findings.append(f"{role}: the audit log moved during its turn ({before} -> {audit_mark()})")
        finally:
            server.stop()
    print(f"route_sweep: {requests} requests in {time.monotonic() - t0:.0f} s; load average "
          f"{load_start[0]:.2f} -> {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); restricted {RESTRICTED}")
    for role, counts in statuses.items():
        print(f"  {role:9} " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"findings: {len(findings)}")
    for f in findings[:60]:
        print(f"  {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
