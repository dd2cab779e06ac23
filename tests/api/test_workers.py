"""Several worker processes and several API instances stay consistent (issues 14 and 18).

Real servers (``renewal serve --workers N``) on the editing database, real HTTP clients, a
real write through the edit API. Every worker keeps tiles and layer versions in memory; these
tests prove a write through one worker or instance is seen by the next tile and items request
to any other, at once for the client that wrote (it carries the ``renewal_lsn`` cookie, as a
browser does) and within 1 s for everybody else (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.api.server_support import Server, serve
from tests.conftest import run_coroutine

MERGE = "application/merge-patch+json"


def _tile_at(z: int, lon: float, lat: float) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@pytest.fixture()
def site(econn: psycopg.Connection) -> Iterator[tuple[int, str, str]]:
    """A parking site (id, tile path, name) whose name the test may change; restored afterwards."""
    fid, lon, lat, name = econn.execute(
        "SELECT id, ST_X(geom), ST_Y(geom), name FROM renewal.parking_sites ORDER BY id LIMIT 1 OFFSET 3"
    ).fetchone()
    z, x, y = _tile_at(16, lon, lat)
    yield fid, f"/collections/parking_sites/tiles/WebMercatorQuad/{z}/{x}/{y}", name
    econn.execute("UPDATE renewal.parking_sites SET name = %s WHERE id = %s", (name, fid))


def _write(base: str, fid: int, name: str, admin_key: str) -> httpx.Client:
    """PATCH the site's name through ``base``; the returned client holds the cookie it was given."""
    writer = httpx.Client(base_url=base, timeout=30)
    item = f"/collections/parking_sites/items/{fid}"
    etag = writer.get(item).headers["etag"]
    r = writer.patch(item, json={"properties": {"name": name}},
                     headers={"X-API-Key": admin_key, "If-Match": etag, "Content-Type": MERGE})
    assert r.status_code == 200, r.text
    assert r.headers["renewal-lsn"] and writer.cookies.get("renewal_lsn") == r.headers["renewal-lsn"]
    return writer


def _fresh_get(base: str, path: str, cookies: Any = None) -> httpx.Response:
    """GET on a new connection, so the kernel may hand it to any worker."""
    with httpx.Client(base_url=base, cookies=cookies, timeout=30) as c:
        return c.get(path)


def _everywhere_1s_after_write(base: str, path: str, text: str, n: int = 16) -> None:
    """1 s after a write, ``n`` fresh requests (any worker) all show ``text``: no worker is stale."""
    time.sleep(1.0)
    stale = sum(text.encode() not in _fresh_get(base, path).content for _ in range(n))
    assert stale == 0, f"{stale} of {n} requests 1 s after the write still got the old tile"


@pytest.fixture(scope="module")
def two_workers(edit_db: str) -> Iterator[Server]:
    """``renewal serve --workers 2`` on the editing database."""
    with serve(edit_db, workers=2) as server:
        yield server


def test_serve_runs_every_worker_and_each_listens(two_workers: Server) -> None:
    pids = two_workers.workers_seen()
    assert len(pids) == 2, f"only workers {pids} answered 60 fresh connections"
    for _ in range(20):
        assert httpx.get(two_workers.url + "/healthz").json()["layer_versions"]["listening"] is True


def test_keep_alive_connections_are_spread_over_the_workers(two_workers: Server) -> None:
    """16 connections opened in one burst and kept open (as a map viewer or QGIS does) reach both workers.

    With one shared listening socket the first worker to wake accepted the whole burst (asyncio
    accepts every pending connection per wake-up) and the other core idled; each worker now has its
    own socket (SO_REUSEPORT) and the kernel spreads connections by address (all 16 on one of two
    workers: probability 2 in 65,536).
    """
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=two_workers.url, timeout=30,
                                     limits=httpx.Limits(max_connections=16)) as client:
            async def ask() -> int:
                return int((await client.get("/healthz")).json()["worker"])

            return list(await asyncio.gather(*(ask() for _ in range(16))))  # 16 connections in one burst

    first = run_coroutine(burst())
    listening = [line for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(f":{two_workers.port:04X}") and line.split()[3] == "0A"]
    assert len(listening) == 2, f"{len(listening)} listening sockets on the port; one per worker expected"
    assert len(set(first)) == 2, f"16 kept-alive connections all went to worker {set(first)}"


def test_write_through_one_worker_is_seen_by_the_next_request_to_any_worker(
    two_workers: Server, site: tuple[int, str, str], keys: dict[str, str],
) -> None:
    fid, tile, old = site
    base = two_workers.url
    item = f"/collections/parking_sites/items/{fid}"
    for _ in range(16):  # every worker caches the tile (and its ETag) under the current version
        assert old.encode() in _fresh_get(base, tile).content
    new = old + "（多进程）"
    writer = _write(base, fid, new, keys["admin"])
    # the writing client's very next requests, each on a new connection: fresh from every worker
    for _ in range(16):
        assert new.encode() in _fresh_get(base, tile, writer.cookies).content
        assert _fresh_get(base, item, writer.cookies).json()["properties"]["name"] == new
    # everybody else: every worker within 1 s (LISTEN/NOTIFY), measured
    newer = new + "2"
    _write(base, fid, newer, keys["admin"]).close()
    writer.close()
    _everywhere_1s_after_write(base, tile, newer)


def test_items_and_paging_agree_across_workers(two_workers: Server) -> None:
    """The same page asked of any worker is the same page (no per-worker state in paging)."""
    path = "/collections/old_compounds/items?limit=7&bbox=114.4,37.95,114.6,38.1"
    first = _fresh_get(two_workers.url, path).json()
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    nxt_path = httpx.URL(nxt).raw_path.decode()
    pages = {tuple(f["id"] for f in _fresh_get(two_workers.url, nxt_path).json()["features"]) for _ in range(8)}
    assert len(pages) == 1 and len(next(iter(pages))) == 7
    for _ in range(8):
        again = _fresh_get(two_workers.url, path).json()
        assert [f["id"] for f in again["features"]] == [f["id"] for f in first["features"]]


def test_write_through_one_instance_reaches_another_instance_within_1s(
    edit_db: str, two_workers: Server, site: tuple[int, str, str], keys: dict[str, str],
) -> None:
    """Two API processes (instances) on the same primary: caches follow each other's writes."""
    fid, tile, old = site
    with serve(edit_db, workers=1) as other:
        assert old.encode() in _fresh_get(other.url, tile).content  # cached in the other instance
        new = old + "（跨实例）"
        writer = _write(two_workers.url, fid, new, keys["admin"])
        # the writer's next read through the other instance (its cookie travels with it)
        assert new.encode() in _fresh_get(other.url, tile, writer.cookies).content
        writer.close()
        newer = new + "2"
        t_write = time.monotonic()
        _write(two_workers.url, fid, newer, keys["admin"]).close()
        while newer.encode() not in _fresh_get(other.url, tile).content:
            assert time.monotonic() - t_write < 1.0, "the other instance still serves the old tile after 1 s"
            time.sleep(0.01)
        status = httpx.get(other.url + "/healthz").json()["layer_versions"]
        assert status["listening"] and status["notifications"] >= 2


def _kept_alive_on_every_worker(base: str, n: int = 16) -> list[httpx.Client]:
    """``n`` clients, each holding one kept-alive connection; between them they reach both workers."""
    clients = [httpx.Client(base_url=base, timeout=30) for _ in range(n)]
    seen = {int(c.get("/healthz").json()["worker"]) for c in clients}
    assert len(seen) == 2, f"{n} kept-alive connections all went to worker {seen}"
    return clients


def _everywhere_within_1s(clients: list[httpx.Client], changed: Any, what: str) -> None:
    """Every client's next request sees the change (``changed(client)``) within 1 s of it."""
    t0 = time.monotonic()
    pending = list(clients)
    while pending:
        pending = [c for c in pending if not changed(c)]
        assert not pending or time.monotonic() - t0 < 1.0, (
            f"{len(pending)} of {len(clients)} connections still {what} 1 s after the change")
        time.sleep(0.01)


def test_revoked_key_and_signed_out_session_are_refused_by_every_worker_within_1s(
    two_workers: Server, edit_db: str,
) -> None:
    """Workers cache verified credentials; a revocation or sign-out elsewhere reaches each at once.

    The key is revoked with the ``renewal users`` code in this process (a third process, as the CLI
    would be), the session is signed out through one worker: every kept-alive connection to either
    worker, each of which had the credential cached, refuses it within 1 s (without migration 0019
    and its listener, each worker honoured it for ``RENEWAL_AUTH_CACHE_TTL_S``, 30 s).
    """
    from api.cli.users import add_user, revoke, set_password

    name = f"cache-probe-{time.monotonic_ns()}"
    key = add_user(edit_db, name, "viewer", [])
    set_password(edit_db, name, "probe-password-1")
    clients = _kept_alive_on_every_worker(two_workers.url)
    try:
        for c in clients:  # cached by both workers
            assert c.get("/auth/session", headers={"X-API-Key": key}).json()["role"] == "viewer"
        key_id = key.split("_")[1]
        revoke(edit_db, key_id)
        _everywhere_within_1s(clients, lambda c: c.get("/auth/session", headers={"X-API-Key": key}).status_code == 401,
                              "honour the revoked key")

        signed_in = clients[0].post("/auth/session", json={"user": name, "password": "probe-password-1"})
        assert signed_in.status_code == 200, signed_in.text
        cookie = {"Cookie": f"renewal_session={signed_in.cookies['renewal_session']}"}
        for c in clients[1:]:
            assert c.get("/auth/session", headers=cookie).json()["role"] == "viewer"
        out = clients[0].delete("/auth/session", headers={"X-CSRF-Token": signed_in.json()["csrf"]})
        assert out.status_code == 200, out.text
        def anonymous(c: httpx.Client) -> bool:
            return bool(c.get("/auth/session", headers=cookie).json()["role"] == "anonymous")

        _everywhere_within_1s(clients[1:], anonymous, "honour the signed-out session")
    finally:
        for c in clients:
            c.close()


def test_city_profile_change_reaches_every_worker_within_1s(two_workers: Server, econn: psycopg.Connection) -> None:
    """The profile (titles, extent, plan catalog) is read once per worker; a change in the database reaches each."""
    old = econn.execute("SELECT title FROM renewal.city").fetchone()[0]
    clients = _kept_alive_on_every_worker(two_workers.url)
    try:
        for c in clients:
            assert c.get("/viewer/config").json()["title"] == old
        new = old + "（多进程）"
        econn.execute("UPDATE renewal.city SET title = %s", (new,))
        _everywhere_within_1s(clients, lambda c: c.get("/viewer/config").json()["title"] == new, "show the old title")
    finally:
        econn.execute("UPDATE renewal.city SET title = %s", (old,))
        for c in clients:
            c.close()
