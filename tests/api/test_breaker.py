"""The database circuit breaker: fast 503s while the database is unreachable, closed again by a probe.

The full outage (a private cluster stopped under load) is ``bench/reliability.py``; here the
unreachable database is a closed port, and recovery is a breaker tripped on a live database.
"""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from api.errors import RETRY_AFTER_S
from api.settings import Settings


def test_requests_get_503_at_once_while_the_database_is_unreachable() -> None:
    from api.app import create_app

    settings = Settings(database_url="postgresql://renewal_api@127.0.0.1:1/nowhere?connect_timeout=1",
                        pool_timeout_s=3.0)
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 5
        while not c.app.state.breaker.is_open and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.1)
        assert c.app.state.breaker.is_open  # type: ignore[attr-defined]
        for path in ("/collections/old_compounds/items", "/healthz", "/query/district-summary", "/progress"):
            t = time.monotonic()
            r = c.get(path)
            assert time.monotonic() - t < 1.0, path
            assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER_S), (path, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
        # files that need no database are still served
        assert c.get("/api").status_code == 200


def test_a_tripped_breaker_closes_when_the_probe_succeeds(db_url: str) -> None:
    from api.breaker import Breaker
    from tests.conftest import api_url

    async def run() -> float:
        breaker = Breaker(api_url(db_url))
        breaker.trip("test")
        breaker.start()
        t = time.monotonic()
        try:
            while breaker.is_open and time.monotonic() - t < 5:
                await asyncio.sleep(0.05)
        finally:
            await breaker.stop()
        assert not breaker.is_open
        return time.monotonic() - t

    assert asyncio.run(run()) < 2.0
