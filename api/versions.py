"""Layer versions kept in memory, invalidated by LISTEN/NOTIFY from the primary.

Every write to a layer table bumps ``renewal.layer_version`` in a statement-level trigger,
which also sends ``NOTIFY renewal_layer_version, '<table>:<version>'`` (migration 0008).
Each API process (every uvicorn worker, every instance behind the load balancer) holds one
listening connection to the primary and keeps the versions in a dict, so the hot paths (tile
ETags and tile-cache keys, collection extents, per-version estimates) need no version lookup:
a cached tile costs no database round trip at all.

Why this stays correct across processes:

* A notification reaches every listener when the writing transaction commits, typically
  within a millisecond, so another instance's caches change key at once (issue 18 asks for 1 s).
* A client that has just written carries the primary's WAL position (``api/consistency.py``:
  cookie ``renewal_lsn`` or header ``Renewal-LSN``). Memory is trusted for it only when the
  listener has *synced* past that position: a heartbeat on the listening connection reads
  ``pg_current_wal_insert_lsn()`` every :data:`HEARTBEAT_S`; PostgreSQL sends a session every
  pending notification before it answers a query, so once a heartbeat returns, every commit
  before the *previous* heartbeat has been delivered (one heartbeat of slack covers the
  instant between a commit becoming durable and its notification being signalled). Until then
  that client's request reads the versions from its database connection (the old round trip).
* While the listener is down (primary unreachable, connection lost) memory is not trusted at
  all and every request reads versions from its connection, as before; the listener reconnects
  by itself and reloads every version after ``LISTEN``, so nothing between is missed.
* Versions only grow, so merging any observation is a ``max``: an answer from a lagging replica
  can never move memory backwards.

The same connection listens on the channels other per-process caches subscribe to
(:meth:`LayerVersions.subscribe`: the credential caches, :class:`api.auth.CredentialCaches`);
their handler runs on every notification and again on every (re)connect, since notifications
sent while the listener was down are lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql

from api.tasks import stop_task

log = logging.getLogger(__name__)

CHANNEL: Final = "renewal_layer_version"
HEARTBEAT_S: Final = 0.25
RECONNECT_S: Final = 1.0
_SNAPSHOT: Final = (
    "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, "
    "coalesce((SELECT json_object_agg(layer, version) FROM renewal.layer_version), '{}'::json)"
)
_VERSIONS: Final = "SELECT layer, version FROM renewal.layer_version"


def parse_lsn(text: str | None) -> int:
    """A WAL position ``'16/B374D848'`` as an integer (0 for missing or malformed text)."""
    if not text:
        return 0
    hi, sep, lo = text.strip().partition("/")
    if not sep or not hi or not lo or len(hi) > 8 or len(lo) > 8:
        return 0
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        return 0


def format_lsn(value: int) -> str:
    """An integer WAL position in PostgreSQL's ``X/Y`` text form."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


class LayerVersions:
    """The per-process view of ``renewal.layer_version``, kept fresh by a listener task."""

    def __init__(self, database_url: str | None, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self._url = database_url
        self._heartbeat_s = heartbeat_s
        self._versions: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.live = False
        """True while the listening connection is up and memory is complete."""
        self.synced_lsn = 0
        """Primary WAL position up to which every version bump is known to be in memory."""
        self.primary_lsn = 0
        """The primary's WAL insert position at the last heartbeat (replica lag is measured against it)."""
        self.notifications = 0
        self._handlers: dict[str, Callable[[], None]] = {}
        self._jobs: list[tuple[float, Callable[[AsyncConnection[Any]], Awaitable[object]]]] = []

    # ------------------------------------------------------------------ reading

    def known(self, tables: Iterable[str], min_lsn: int = 0) -> dict[str, int] | None:
        """Versions from memory, or None when memory may be behind for this request."""
        if not self.live or min_lsn > self.synced_lsn:
            return None
        return {t: self._versions.get(t, 0) for t in tables}

    def merge(self, versions: Mapping[str, Any]) -> None:
        """Take newer versions from any observation (notification, write response, query)."""
        for table, version in versions.items():
            v = int(version)
            if v > self._versions.get(table, 0):
                self._versions[table] = v

    async def lookup(self, conn: AsyncConnection[Any], tables: list[str], min_lsn: int = 0) -> dict[str, int]:
        """Versions of ``tables``: from memory when trusted, else read on ``conn`` (one round trip)."""
        mem = self.known(tables, min_lsn)
        if mem is not None:
            return mem
        cur = await conn.execute(_VERSIONS)
        seen = {str(k): int(v) for k, v in await cur.fetchall()}
        self.merge(seen)
        return {t: seen.get(t, 0) for t in tables}

    # ------------------------------------------------------------------ listening

    def subscribe(self, channel: str, handler: Callable[[], None]) -> None:
        """Call ``handler`` on every notification on ``channel`` and after every (re)connect; before :meth:`start`."""
        if not channel.isidentifier() or channel == CHANNEL:
            raise ValueError(f"cannot subscribe to channel {channel!r}")
        self._handlers[channel] = handler

    def every(self, interval_s: float, job: Callable[[AsyncConnection[Any]], Awaitable[object]]) -> None:
        """Run ``job`` on the listening connection at connect and every ``interval_s``; before :meth:`start`.

        For per-process knowledge that requests would otherwise fetch themselves (the tables' row
        estimates): kept fresh here, off the request path. A job whose statement fails is logged and
        tried again at its next turn (requests then fetch what has expired themselves); a lost
        connection reconnects as for a failed heartbeat.
        """
        self._jobs.append((interval_s, job))

    def _on_notify(self, n: psycopg.Notify) -> None:
        handler = self._handlers.get(n.channel)
        if handler is not None:
            handler()
            return
        table, _, version = n.payload.rpartition(":")
        try:
            self.merge({table: int(version)})
        except ValueError:
            log.warning("ignoring malformed %s payload %r", CHANNEL, n.payload)
            return
        self.notifications += 1

    async def _listen_once(self) -> None:
        assert self._url is not None
        async with await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name="renewal-versions", connect_timeout=5
        ) as conn:
            conn.add_notify_handler(self._on_notify)
            for channel in (CHANNEL, *self._handlers):
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            for handler in self._handlers.values():
                handler()  # whatever was missed while not listening
            due = [0.0] * len(self._jobs)
            cur = await conn.execute(_SNAPSHOT)
            row = await cur.fetchone()
            assert row is not None
            self.merge(row[1])
            previous = int(row[0])
            self.primary_lsn = previous
            self.live = True
            log.info("layer versions: listening on %s", CHANNEL)
            while True:
                for i, (interval_s, job) in enumerate(self._jobs):
                    if time.monotonic() >= due[i]:
                        due[i] = time.monotonic() + interval_s
                        try:
                            await job(conn)
                        except psycopg.OperationalError:
                            raise  # the connection is gone: reconnect, as for a failed heartbeat
                        except psycopg.Error as exc:  # a failed job leaves the versions trusted
                            log.warning("listener job %s failed (%s); next try in %.0f s", job, exc, interval_s)
                await asyncio.sleep(self._heartbeat_s)
                cur = await conn.execute("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
                row = await cur.fetchone()
                assert row is not None
                # every notification of a commit before the previous heartbeat has been handled now
                self.synced_lsn = max(self.synced_lsn, previous)
                previous = self.primary_lsn = int(row[0])

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: not trusted, reconnect
                if self.live:
                    log.warning("layer versions: listener lost (%s); reading versions per request", exc)
                self.live = False
            await asyncio.sleep(RECONNECT_S)

    def start(self) -> None:
        """Start the listener task (in the app's lifespan); no-op without a URL."""
        if self._url and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="layer-versions")

    async def stop(self) -> None:
        """Cancel the listener task."""
        self.live = False
        await stop_task(self._task)
        self._task = None

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: whether memory is trusted and how far it has synced."""
        return {"listening": self.live, "synced_lsn": format_lsn(self.synced_lsn) if self.synced_lsn else None,
                "notifications": self.notifications}
