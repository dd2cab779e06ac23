"""A circuit breaker for database outages: detect once, answer 503 at once, close on a probe.

Without it every request during an outage waits for the pool's timeout (seconds) before its
503, and under load the waiting requests pile up. Here a monitor keeps one connection of its
own and runs ``SELECT 1`` every :data:`PROBE_INTERVAL_S`; a failed probe (or a request that hit
``OperationalError``/``PoolTimeout``, see :mod:`api.errors`) *opens* the breaker, and while it is
open :class:`BreakerMiddleware` answers every request that needs the database with 503
problem+json and ``Retry-After`` without touching the pool. The monitor keeps probing; the
first probe that succeeds *closes* the breaker and asks the pool to replace its dead
connections at once (``pool.check()``), so requests succeed again within a second or two.

With streaming replicas (api/routing.py) the breaker still watches the primary, but reads pass
while a replica is in service, so a primary outage costs readers nothing.

Static files (``/vendor``, ``/viewer``, the API document) never need the database and are
served while the breaker is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.types import Receive, Scope, Send

from api.asgi import NO_DB_PREFIXES, SAFE_METHODS, HttpMiddleware
from api.errors import DB_UNREACHABLE, unavailable
from api.tasks import stop_task

log = logging.getLogger("renewal.breaker")

PROBE_INTERVAL_S: Final = 0.25
PROBE_TIMEOUT_S: Final = 1.0


class Breaker:
    """Open while the database is unreachable; closed by the first successful probe."""

    def __init__(self, database_url: str, pool: AsyncConnectionPool | None = None) -> None:
        self.url = database_url
        self.pool = pool
        self.is_open = False
        self.opened_at: float | None = None
        self.trips = 0
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def trip(self, reason: str) -> None:
        """Open the breaker (idempotent); the monitor keeps probing."""
        if not self.is_open:
            self.is_open = True
            self.opened_at = time.monotonic()
            self.trips += 1
            log.warning("database unreachable (%s): answering 503 until a probe succeeds", reason)

    def start(self) -> None:
        """Start the monitor task (in the app's lifespan)."""
        if self._task is None:
            self._task = asyncio.create_task(self._monitor(), name="renewal-db-breaker")

    async def stop(self) -> None:
        """Stop the monitor and close its connection."""
        await stop_task(self._task)
        self._task = None
        await self._close_conn()

    async def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _probe(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(
                self.url, connect_timeout=max(1, int(PROBE_TIMEOUT_S)), autocommit=True,
                application_name="renewal-api-probe"), PROBE_TIMEOUT_S + 0.5)
            self._conn = conn
        assert conn is not None
        await asyncio.wait_for(conn.execute("SELECT 1"), PROBE_TIMEOUT_S)

    async def _monitor(self) -> None:
        while True:
            try:
                await self._probe()
            except (TimeoutError, psycopg.Error, OSError) as exc:
                await self._close_conn()
                self.trip(f"probe failed: {type(exc).__name__}")
            else:
                if self.is_open:
                    down = time.monotonic() - (self.opened_at or time.monotonic())
                    log.warning("database reachable again after %.1f s: closing the breaker", down)
                    if self.pool is not None:
                        with contextlib.suppress(Exception):
                            await self.pool.check()  # replace the dead connections now, not after a backoff
                    self.is_open = False
            await asyncio.sleep(PROBE_INTERVAL_S)

    def status(self) -> dict[str, Any]:
        """For /healthz."""
        return {"open": self.is_open, "trips": self.trips}


def _replica_can_serve(scope: Scope) -> bool:
    """A read goes on while a streaming replica is in service (the breaker watches the primary only).

    Writes still get their 503 at once; /healthz then answers 200 "degraded" (api/routers/health.py).
    """
    if scope.get("method", "GET") not in SAFE_METHODS:
        return False
    databases = getattr(scope["app"].state, "databases", None)
    return any(r.in_service for r in getattr(databases, "replicas", ()))


class BreakerMiddleware(HttpMiddleware):
    """Answer 503 with Retry-After at once while the breaker is open (pure ASGI)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request."""
        breaker = getattr(scope["app"].state, "breaker", None)
        if (isinstance(breaker, Breaker) and breaker.is_open and not scope["path"].startswith(NO_DB_PREFIXES)
                and not _replica_can_serve(scope)):
            await unavailable("Service unavailable", DB_UNREACHABLE, instance=scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
