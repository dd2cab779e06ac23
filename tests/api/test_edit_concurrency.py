"""100 concurrent updates of one feature against a real server: no lost update, every success in the history."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.api.edit_support import insert_feature
from tests.conftest import LiveServer

N = 100
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(edit_db: str) -> Iterator[LiveServer]:
    """A live server on the editing database with room for 100 concurrent writers."""
    s = LiveServer(edit_db, env={"RENEWAL_POOL_MAX_SIZE": "20", "RENEWAL_POOL_TIMEOUT_S": "60"})
    try:
        yield s
    finally:
        s.stop()


def _audit(econn: psycopg.Connection, fid: int) -> list[tuple[Any, ...]]:
    return econn.execute(
        "SELECT request_id, (before->>'spaces')::int, (after->>'spaces')::int, before->>'status', after->>'status' "
        "FROM renewal.audit_log WHERE layer = 'parking_sites' AND feature_id = %s AND action = 'UPDATE' ORDER BY id",
        (fid,)).fetchall()


def test_same_etag_exactly_one_winner(server: LiveServer, keys: dict[str, str], econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "parking_sites", spaces=1)
    url = f"{server.url}/collections/parking_sites/items/{fid}"
    headers = {"X-API-Key": keys["admin"]}

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=N)) as c:
            etag = (await c.get(url, headers=headers)).headers["etag"]
            return await asyncio.gather(*(
                c.patch(url, json={"properties": {"spaces": 1000 + i}}, headers={**headers, "If-Match": etag})
                for i in range(N)))

    responses = asyncio.run(run())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * (N - 1), codes
    winner = next(r for r in responses if r.status_code == 200)
    audit = _audit(econn, fid)
    assert [a[0] for a in audit] == [winner.headers["x-request-id"]]
    final = econn.execute("SELECT spaces FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()
    assert final == (winner.json()["properties"]["spaces"],)


def test_100_concurrent_increments_lose_nothing(server: LiveServer, keys: dict[str, str],
                                                econn: psycopg.Connection) -> None:
    fid = insert_feature(econn, "parking_sites", spaces=500, status="planned")
    url = f"{server.url}/collections/parking_sites/items/{fid}"
    headers = {"X-API-Key": keys["admin"]}
    history_before = econn.execute("SELECT count(*) FROM renewal.status_history WHERE layer = 'parking_sites' "
                                   "AND feature_id = %s", (fid,)).fetchone()[0]

    async def client(c: httpx.AsyncClient, i: int, attempts: list[int]) -> str:
        for attempt in range(1, 2000):
            got = await c.get(url, headers=headers)
            assert got.status_code == 200, got.text
            props = got.json()["properties"]
            nxt = "under_construction" if props["status"] == "planned" else "planned"
            r = await c.patch(url, headers={**headers, "If-Match": got.headers["etag"]}, json={
                "properties": {"spaces": props["spaces"] + 1, "status": nxt},
                "change": {"effective_date": "2024-05-01", "note": f"client {i}"}})
            if r.status_code == 200:
                attempts.append(attempt)
                return str(r.headers["x-request-id"])
            assert r.status_code == 412, (r.status_code, r.text)
            await asyncio.sleep(random.uniform(0, 0.05))
        raise AssertionError("client never succeeded")

    async def run() -> tuple[list[str], list[int]]:
        attempts: list[int] = []
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=N)) as c:
            ids = await asyncio.gather(*(client(c, i, attempts) for i in range(N)))
        return list(ids), attempts

    request_ids, attempts = asyncio.run(run())
    assert len(set(request_ids)) == N
    final = econn.execute("SELECT spaces, status FROM renewal.parking_sites WHERE id = %s", (fid,)).fetchone()
    assert final == (500 + N, "planned")  # an even number of toggles
    audit = _audit(econn, fid)
    assert len(audit) == N and {a[0] for a in audit} == set(request_ids)
    # each update started from the state the previous one left: a chain with no gap and no overwrite
    for prev, cur in zip(audit, audit[1:], strict=False):
        assert cur[1] == prev[2] and cur[3] == prev[4]
    assert [a[2] for a in audit] == list(range(501, 501 + N))
    history = econn.execute("SELECT count(*) FROM renewal.status_history WHERE layer = 'parking_sites' "
                            "AND feature_id = %s", (fid,)).fetchone()[0]
    assert history - history_before == N
    print(f"100 writers: {sum(attempts)} attempts, max {max(attempts)} for one client")
