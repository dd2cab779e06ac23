"""The API's connections are serial and JIT-free from the start, so hot statements need no per-request SET.

``layers.query.fetch_one_serial`` runs a statement alone on such a connection (no transaction, no
``SET LOCAL``) and wraps it in a pipelined ``SET LOCAL`` transaction on any other connection; both
must give the same answer and both must run without parallel workers.
"""

from __future__ import annotations

import asyncio

import psycopg
from psycopg import sql

from api.db import make_pool
from layers.query import fetch_one_serial
from tests.conftest import api_settings, run_coroutine

SHOW = sql.SQL("SELECT current_setting('max_parallel_workers_per_gather'), current_setting('jit'), "
               "pg_current_xact_id_if_assigned() IS NULL, now() = statement_timestamp()")


def test_pool_connections_are_serial_and_run_hot_statements_alone(db_url: str) -> None:
    async def run() -> tuple[object, object]:
        pool = make_pool(api_settings(db_url, pool_min_size=1, pool_max_size=1))
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                pooled = await fetch_one_serial(conn, SHOW, {})
        finally:
            await pool.close()
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as plain:
            wrapped = await fetch_one_serial(plain, SHOW, {})
            cur = await plain.execute("SELECT current_setting('max_parallel_workers_per_gather')")
            after = await cur.fetchone()
        return pooled, (wrapped, after)

    pooled, (wrapped, after) = run_coroutine(run())
    assert pooled == ("0", "off", True, True)  # serial from its options; the statement is its own transaction
    assert wrapped is not None and wrapped[0] == "0"  # SET LOCAL inside a transaction ...
    assert after is not None and after[0] != "0"  # ... and gone afterwards


def test_checkout_costs_no_round_trip_yet_replaces_a_terminated_connection(db_url: str) -> None:
    """A quiet pooled connection is handed out unchecked; one the server has closed is replaced."""

    async def run() -> tuple[str, int, int, str]:
        pool = make_pool(api_settings(db_url, pool_min_size=1, pool_max_size=1))
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 'marker-1'")
                pid = conn.info.backend_pid
            async with pool.connection() as conn:  # no check query may replace the backend's last statement
                assert conn.info.backend_pid == pid
                async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
                    cur = await admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
                    last = (await cur.fetchone() or ("",))[0]
            async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.sleep(0.3)
            async with pool.connection() as conn:  # the dead one is noticed at checkout, not by the request
                cur = await conn.execute("SELECT 'alive'")
                alive = (await cur.fetchone() or ("",))[0]
                new_pid = conn.info.backend_pid
        finally:
            await pool.close()
        return last, pid, new_pid, alive

    last, pid, new_pid, alive = run_coroutine(run())
    assert last == "SELECT 'marker-1'"
    assert new_pid != pid and alive == "alive"
