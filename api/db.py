"""Connection pool construction and small helpers around psycopg 3."""

from __future__ import annotations

import functools

import psycopg
import psycopg.sql
from psycopg_pool import AsyncConnectionPool

from api.settings import Settings


async def _configure(conn: psycopg.AsyncConnection, role: str = "") -> None:
    """Per-connection settings: UTF-8, a statement timeout, autocommit for reads.

    With ``role`` (``RENEWAL_DB_ROLE``, default ``renewal_app``), the connection switches to
    that role once migration 0005 has created and granted it, so the API cannot rewrite
    the audit log even if its code tried to.
    """
    await conn.set_autocommit(True)
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
        configure=functools.partial(_configure, role=settings.db_role),
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "client_encoding": "UTF8",
            # jit=off: compiling costs 70-100 ms on every spatial query and never pays back here
            "options": f"-c statement_timeout={settings.statement_timeout_ms} -c jit=off",
            "application_name": "renewal-api",
        },
        reconnect_timeout=60 * 60 * 24,
    )


def connect_sync(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """A synchronous connection configured like the pool's (role, timeout), for work done in a thread.

    Report rendering (matplotlib, docxtpl, LibreOffice) is CPU-bound and synchronous; it runs in
    a worker thread with its own connection rather than holding an async pool connection.
    """
    conn = psycopg.connect(
        settings.database_url, autocommit=True, client_encoding="UTF8", application_name="renewal-api-report",
        options=f"-c statement_timeout={settings.statement_timeout_ms} -c jit=off",
    )
    if settings.db_role:
        row = conn.execute(_ROLE_USABLE, {"role": settings.db_role}).fetchone()
        if row and row[0]:
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(settings.db_role)))
    return conn
