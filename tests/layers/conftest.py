"""Fixtures of the import/export tests: their own demo database, since imports write."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import scratch_demo_database


@pytest.fixture(scope="session")
def io_db() -> Iterator[str]:
    """A separate, migrated demo database that import tests may write to."""
    with scratch_demo_database("renewal_io") as url:
        yield url


@pytest.fixture()
def io_conn(io_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the import test database."""
    with psycopg.connect(io_db, autocommit=True) as c:
        yield c


def table_state(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """Row count and md5 of every row (all columns, in id order) of a layer table."""
    row = conn.execute(
        sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {} AS t").format(
            sql.Identifier("renewal", table))
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def side_tables_state(conn: psycopg.Connection) -> tuple[int, int, int]:
    """Rows in status_history, audit_log and applied imports."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM renewal.status_history), (SELECT count(*) FROM renewal.audit_log), "
        "(SELECT count(*) FROM renewal.imports WHERE status = 'applied')"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def sha(path) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256(path.read_bytes()).hexdigest()
