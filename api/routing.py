"""Reads to healthy streaming replicas, writes and read-your-writes to the primary.

``RENEWAL_READ_DATABASE_URLS`` lists replica URLs (comma-separated); each gets its own pool.
Routes that only read declare :data:`api.deps.ReadPoolDep` and get a :class:`ReadPool` for
the request; everything else (writes, auth, admin) keeps the primary pool.

Which database serves a read:

* A replica is *in service* while a monitor task (one small query a second on its own
  connection) finds it reachable, still in recovery (a promoted replica has left the cluster
  this instance knows) and behind the primary by at most ``RENEWAL_REPLICA_MAX_LAG_S``.
  Lag is measured against the primary's WAL insert position from the version listener's
  heartbeat: a replica that has replayed everything has no lag however long ago the last write
  was.
* A request that carries the WAL position of its client's last write (``api/consistency.py``)
  goes only to a replica whose replayed position is known to be past it, otherwise to the
  primary: read-your-writes.
* Reads rotate over the replicas in service; with none in service they go to the primary.
* A replica that fails a request is taken out at once (the monitor brings it back); a failure
  while checking out a connection falls back to the primary in the same request, and a failure
  in the middle of a read makes :class:`ReplicaRetryMiddleware` run the (safe, bodiless)
  request once more on the primary, so a dying replica costs readers no errors.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import psycopg
import psycopg_pool
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.db import make_pool
from api.settings import Settings
from api.tasks import stop_task
from api.versions import LayerVersions, format_lsn

log = logging.getLogger(__name__)

MONITOR_S: Final = 1.0
CHECKOUT_TIMEOUT_S: Final = 0.5
"""How long a read waits for a replica connection before taking the primary instead."""
_CHECK: Final = (
    "SELECT pg_is_in_recovery(), (coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::bigint, "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
)
STATE_FAILED: Final = "renewal_replica_failed"
STATE_PRIMARY_ONLY: Final = "renewal_primary_only"
STATE_MIN_LSN: Final = "renewal_min_lsn"
STATE_READ_ONLY: Final = "renewal_read_only"


def describe_url(url: str) -> str:
    """host:port/dbname of a URL or conninfo, without user or password (for /healthz and logs)."""
    try:
        if "://" in url:
            p = urlsplit(url)
            return f"{p.hostname or 'socket'}:{p.port or 5432}{p.path or ''}"
        d = conninfo_to_dict(url)
        return f"{d.get('host', 'socket')}:{d.get('port', 5432)}/{d.get('dbname', '')}"
    except Exception:  # noqa: BLE001 - a label only
        return "replica"


@dataclass
class Replica:
    """One streaming replica: its pool and what the monitor last found."""

    name: str
    url: str
    pool: AsyncConnectionPool
    in_service: bool = False
    replay_lsn: int = 0
    lag_s: float | None = None
    lag_bytes: int | None = None
    error: str | None = "not checked yet"
    checked_at: float = 0.0
    caught_up_at: float = 0.0
    reads: int = 0
    _conn: AsyncConnection[Any] | None = field(default=None, repr=False)

    def take_out(self, why: str) -> None:
        """Stop sending reads here until the monitor finds it healthy again."""
        if self.in_service:
            log.warning("replica %s taken out of service: %s", self.name, why)
        self.in_service = False
        self.error = why


class Databases:
    """The primary pool, the replica pools and the choice between them."""

    def __init__(self, settings: Settings, primary: AsyncConnectionPool, versions: LayerVersions) -> None:
        self.settings = settings
        self.primary = primary
        self.versions = versions
        self.max_lag_s = settings.replica_max_lag_s
        urls = [u.strip() for u in settings.read_database_urls.split(",") if u.strip()]
        self.replicas = [
            Replica(describe_url(u), u, make_pool(settings.model_copy(update={"database_url": u}))) for u in urls
        ]
        self._next = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.primary_reads = 0

    # ------------------------------------------------------------------ choice

    def choose(self, min_lsn: int = 0) -> Replica | None:
        """A replica in service that has replayed past ``min_lsn``, rotating; None means the primary."""
        ready = [r for r in self.replicas if r.in_service and r.replay_lsn >= min_lsn]
        if not ready:
            return None
        return ready[next(self._next) % len(ready)]

    # ------------------------------------------------------------------ monitoring

    async def _check(self, r: Replica) -> None:
        try:
            if r._conn is None or r._conn.closed:
                r._conn = await psycopg.AsyncConnection.connect(
                    r.url, autocommit=True, connect_timeout=2, application_name="renewal-replica-monitor")
            cur = await asyncio.wait_for(r._conn.execute(_CHECK), timeout=2)
            row = await cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - any failure takes the replica out
            if r._conn is not None:
                await r._conn.close()
            r._conn = None
            r.lag_s = r.lag_bytes = None
            r.take_out(f"unreachable: {type(exc).__name__}")
            return
        assert row is not None
        in_recovery, replay, since_replay = bool(row[0]), int(row[1]), row[2]
        r.checked_at = time.time()
        r.replay_lsn = replay
        primary = self.versions.primary_lsn
        if not in_recovery:
            r.lag_s = r.lag_bytes = None
            r.take_out("not a replica (promoted?)")
            return
        r.lag_bytes = max(0, primary - replay) if primary else None
        now = time.monotonic()
        if primary and replay >= primary:
            r.caught_up_at = now
        # lag: how long it has been behind the primary (since it last had replayed everything); a
        # replica never seen caught up falls back on the age of its last replayed transaction
        if r.caught_up_at:
            r.lag_s = round(now - r.caught_up_at, 3) if r.caught_up_at != now else 0.0
        else:
            r.lag_s = round(float(since_replay), 3) if since_replay is not None else None
        if r.lag_s is None:
            r.take_out("lag unknown")
            return
        if r.lag_s > self.max_lag_s:
            r.take_out(f"lag {r.lag_s:.1f} s over {self.max_lag_s:g} s")
            return
        if not r.in_service:
            log.info("replica %s in service (lag %.3f s)", r.name, r.lag_s)
        r.in_service, r.error = True, None

    async def _monitor(self) -> None:
        while True:
            await asyncio.gather(*(self._check(r) for r in self.replicas))
            await asyncio.sleep(MONITOR_S)

    async def open(self) -> None:
        """Open the replica pools (without waiting) and start the monitor."""
        for r in self.replicas:
            await r.pool.open(wait=False)
        if self.replicas:
            await asyncio.gather(*(self._check(r) for r in self.replicas))
            self._task = asyncio.get_running_loop().create_task(self._monitor(), name="replica-monitor")

    async def close(self) -> None:
        """Stop the monitor and close the replica pools."""
        await stop_task(self._task)
        for r in self.replicas:
            if r._conn is not None:
                await r._conn.close()
            await r.pool.close()

    def status(self) -> list[dict[str, Any]]:
        """Replica health and lag for ``/healthz``."""
        return [{
            "name": r.name, "in_service": r.in_service, "lag_s": r.lag_s, "lag_bytes": r.lag_bytes,
            "replay_lsn": format_lsn(r.replay_lsn) if r.replay_lsn else None, "error": r.error,
            "reads": r.reads,
        } for r in self.replicas]


class ReadPool:
    """What read routes get instead of the primary pool: ``connection()`` picks the database."""

    def __init__(self, dbs: Databases, scope_state: dict[str, Any]) -> None:
        self._dbs = dbs
        self._state = scope_state

    @property
    def min_lsn(self) -> int:
        """The client's last write position (0 when it has none)."""
        return int(self._state.get(STATE_MIN_LSN, 0))

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to a replica in service that is past the client's writes, else to the primary."""
        replica = None if self._state.get(STATE_PRIMARY_ONLY) else self._dbs.choose(self.min_lsn)
        conn: AsyncConnection[Any] | None = None
        if replica is not None:
            try:
                conn = await replica.pool.getconn(timeout=CHECKOUT_TIMEOUT_S)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                replica.take_out(f"checkout failed: {type(exc).__name__}")
                replica = None
        if replica is None or conn is None:
            self._dbs.primary_reads += 1
            async with self._dbs.primary.connection(timeout) as pconn:
                yield pconn
            return
        replica.reads += 1
        try:
            yield conn
        except psycopg.OperationalError as exc:
            replica.take_out(f"read failed: {type(exc).__name__}")
            self._state[STATE_FAILED] = True
            raise
        finally:
            await replica.pool.putconn(conn)


    @contextmanager
    def sync_url(self) -> Iterator[str]:
        """The database URL :meth:`connection` would read from, for a synchronous connection in a thread.

        Same choice (a replica in service past the client's writes, else the primary) and same
        failure rule: an ``OperationalError`` inside the block takes the replica out and marks the
        request for :class:`ReplicaRetryMiddleware` to run again on the primary.
        """
        replica = None if self._state.get(STATE_PRIMARY_ONLY) else self._dbs.choose(self.min_lsn)
        if replica is None:
            self._dbs.primary_reads += 1
            yield self._dbs.settings.database_url
            return
        replica.reads += 1
        try:
            yield replica.url
        except psycopg.OperationalError as exc:
            replica.take_out(f"read failed: {type(exc).__name__}")
            self._state[STATE_FAILED] = True
            raise


class ReplicaRetryMiddleware(HttpMiddleware):
    """Run a safe request once more on the primary when a replica failed under it.

    Only GET/HEAD (no body to replay). The first attempt's response is withheld only if its
    status is 5xx and a replica failure was recorded; otherwise it passes through untouched.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through; replay it on the primary if a replica failed under it."""
        if scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        swallowed = False

        async def guarded_send(message: Message) -> None:
            nonlocal swallowed
            if message["type"] == "http.response.start" and message["status"] >= 500 and state.get(STATE_FAILED):
                swallowed = True
            if not swallowed:
                await send(message)

        await self.app(scope, receive, guarded_send)
        if swallowed:
            state.pop(STATE_FAILED, None)
            state[STATE_PRIMARY_ONLY] = True
            await self.app(scope, receive, send)
