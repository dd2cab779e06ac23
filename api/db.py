"""Connection pool construction and small helpers around psycopg 3."""

from __future__ import annotations

import psycopg
from psycopg_pool import AsyncConnectionPool

from api.settings import Settings


async def _configure(conn: psycopg.AsyncConnection) -> None:
    """Per-connection settings: UTF-8, a statement timeout, autocommit for reads."""
    await conn.set_autocommit(True)


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
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "client_encoding": "UTF8",
            "options": f"-c statement_timeout={settings.statement_timeout_ms}",
            "application_name": "renewal-api",
        },
        reconnect_timeout=60 * 60 * 24,
    )
