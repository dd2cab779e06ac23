"""Connection pool construction and small helpers around psycopg 3.

Least privilege: the API logs in as ``renewal_api`` (migration 0014), which is not a superuser
and owns nothing. A superuser login is refused (:func:`check_login` at start-up, and again on
every new pooled connection) unless ``RENEWAL_ALLOW_SUPERUSER`` is set, in which case the app
warns in its log and in ``/healthz``.
"""

from __future__ import annotations

import functools
import logging
import select
from typing import Any

import psycopg
import psycopg.sql
from psycopg_pool import AsyncConnectionPool

from api.settings import API_LOGIN, Settings
from layers.query import SERIAL_OPTIONS

log = logging.getLogger("renewal.db")

SUPERUSER_WARNING = ("The API logs in to PostgreSQL as a superuser (RENEWAL_ALLOW_SUPERUSER is set). Use the "
                     f"least-privileged login {API_LOGIN} (DATABASE_URL=postgresql://{API_LOGIN}@/renewal).")


class SuperuserLoginError(psycopg.OperationalError):
    """The API was given a superuser login and superusers are not allowed."""


def _refusal(user: str) -> str:
    return (f"DATABASE_URL logs in as '{user}', a PostgreSQL superuser; the API refuses to run with it. "
            f"Use the API's own login {API_LOGIN} (DATABASE_URL=postgresql://{API_LOGIN}@/renewal, created by "
            "'renewal db upgrade' or scripts/provision-db.sh), or set RENEWAL_ALLOW_SUPERUSER=true to accept "
            "the risk.")


_SUPERUSER_SQL = "SELECT session_user::text, rolsuper FROM pg_roles WHERE rolname = session_user"


async def check_login(settings: Settings, timeout_s: float = 3.0) -> str | None:
    """Refuse a superuser login at start-up; return the warning to show when it is allowed.

    A database that is down cannot be asked: the pool's per-connection check then applies.

    Raises
    ------
    SuperuserLoginError
        The login is a superuser and ``allow_superuser`` is false.
    """
    try:
        conn = await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=max(1, int(timeout_s)),
                                                     application_name="renewal-api-check")
    except psycopg.OperationalError as exc:
        log.warning("could not check the database login at start-up (%s); checking each connection instead", exc)
        return None
    async with conn:
        cur = await conn.execute(_SUPERUSER_SQL)
        row = await cur.fetchone()
    if not row or not row[1]:
        return None
    if not settings.allow_superuser:
        raise SuperuserLoginError(_refusal(row[0]))
    log.warning(SUPERUSER_WARNING)
    return SUPERUSER_WARNING


async def _configure(conn: psycopg.AsyncConnection, role: str = "", allow_superuser: bool = False) -> None:
    """Per-connection settings: UTF-8, a statement timeout, autocommit for reads.

    With ``role`` (``RENEWAL_DB_ROLE``, default ``renewal_app``), the connection switches to
    that role once migration 0005 has created and granted it, so the API cannot rewrite
    the audit log even if its code tried to.
    """
    await conn.set_autocommit(True)
    if not allow_superuser:
        cur = await conn.execute(_SUPERUSER_SQL)
        row = await cur.fetchone()
        if row and row[1]:
            log.error(_refusal(row[0]))
            raise SuperuserLoginError(_refusal(row[0]))
    if role:
        cur = await conn.execute(_ROLE_USABLE, {"role": role})
        row = await cur.fetchone()
        if row and row[0]:
            await conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))


_ROLE_USABLE = """
SELECT coalesce(bool_and(pg_has_role(current_user, r.oid, 'MEMBER')
                AND has_schema_privilege(r.oid, to_regnamespace('renewal')::oid, 'USAGE')), false)
FROM pg_roles r WHERE r.rolname = %(role)s
"""


async def check_without_round_trip(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check of a connection it hands out: a round trip only when the server has spoken.

    Why: psycopg_pool's ``check_connection`` sends an empty query on every checkout, one extra round
    trip per request (py-spy: 45 % of a metadata request's time). An idle pooled connection receives
    nothing unless the server is closing it (a restart or ``pg_terminate_backend`` sends a FATAL
    notice, then hangs up), so a socket with data waiting, or already closed, is checked properly
    (and dropped if dead); a quiet one is handed out as is. The breaker's recovery still checks
    every idle connection with a round trip (``pool.check()``).
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


def make_pool(settings: Settings) -> AsyncConnectionPool:
    """An unopened async pool; the app's lifespan opens and closes it.

    The pool is opened without waiting so the app starts (and answers 503 with
    Retry-After) while the database is down, and reconnects on its own when it returns.
    """
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        open=False,
        configure=functools.partial(_configure, role=settings.db_role, allow_superuser=settings.allow_superuser),
        check=check_without_round_trip,
        kwargs={
            "client_encoding": "UTF8",
            # jit=off: compiling costs 70-100 ms on every spatial query and never pays back here.
            # Serial (no parallel workers): launching them costs 20-50 ms, more than a page or tile needs,
            # and a busy server has no idle core to give them (see layers.query.fetch_one_serial).
            "options": f"-c statement_timeout={settings.statement_timeout_ms} -c jit=off {SERIAL_OPTIONS}",
            "application_name": "renewal-api",
        },
        # short reconnection chains: psycopg_pool backs off 1, 2, 4, 8 ... s inside a chain, so a long
        # chain left the pool waiting seconds after the database returned; after a chain gives up the
        # next demand (the breaker's pool.check() on recovery, or a request) starts a new one at once
        reconnect_timeout=settings.pool_reconnect_timeout_s,
    )


def connect_sync(
    settings: Settings, url: str | None = None, *, application_name: str = "renewal-api-report"
) -> psycopg.Connection[tuple[object, ...]]:
    """A synchronous connection configured like the pool's (role, timeout), for work done in a thread.

    Report rendering (matplotlib, docxtpl, LibreOffice) is CPU-bound and synchronous, and a
    streamed GeoPackage download writes through GDAL for minutes; both run in a worker thread with
    their own connection rather than holding an async pool connection. ``url``: the database
    (a replica chosen by :meth:`api.routing.ReadPool.sync_url`), by default the primary.
    """
    conn = psycopg.connect(
        url or settings.database_url, autocommit=True, client_encoding="UTF8", application_name=application_name,
        options=f"-c statement_timeout={settings.statement_timeout_ms} -c jit=off",
    )
    if settings.db_role:
        row = conn.execute(_ROLE_USABLE, {"role": settings.db_role}).fetchone()
        if row and row[0]:
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(settings.db_role)))
    return conn
