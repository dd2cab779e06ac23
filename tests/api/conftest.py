"""Fixtures of the API tests.

Editing, access-control and reliability tests write to the database, so they get their own
demo database (``edit_db``) instead of the shared session one: other tests that count demo
features stay exact whatever order the suite runs in.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.api.edit_support import role_keys
from tests.conftest import scratch_demo_database


@pytest.fixture(scope="session")
def edit_db() -> Iterator[str]:
    """A separate, migrated demo database for tests that write."""
    with scratch_demo_database("renewal_edit") as url:
        yield url


@pytest.fixture()
def econn(edit_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection (as the owner) to the editing database."""
    with psycopg.connect(edit_db, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def keys(edit_db: str) -> dict[str, str]:
    """API keys per role in the editing database, created with the real ``renewal users`` code."""
    return role_keys(edit_db)
