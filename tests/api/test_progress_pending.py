"""``/progress?include_pending=true`` says how many pending submissions it counted.

A database of this module's own, so the number is exact: 0 before anything is submitted, 1 after
one submission. The number is the one the switch applied (:func:`layers.submissions.counted_changes`),
and the notice is the maps' and ledgers' (:func:`api.pending.pending_notice`).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers.submissions import PENDING_NOTICE
from tests.api.edit_support import REVIEW_USERS, YUHUA, auth, insert_feature, make_client, role_keys
from tests.conftest import scratch_demo_database


@pytest.fixture(scope="module")
def pending_db() -> Iterator[str]:
    with scratch_demo_database("renewal_pending") as url:
        yield url


@pytest.fixture(scope="module")
def people(pending_db: str) -> dict[str, str]:
    return role_keys(pending_db, REVIEW_USERS)


@pytest.fixture(scope="module")
def client(pending_db: str) -> Iterator[TestClient]:
    with make_client(pending_db, review_required=True) as c:
        yield c


def _preview(client: TestClient, people: dict[str, str]) -> dict[str, object]:
    r = client.get("/progress", params={"task": 13, "include_pending": "true"}, headers=auth(people, "viewer"))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_notice_counts_the_pending_submissions(client: TestClient, people: dict[str, str], pending_db: str) -> None:
    official = client.get("/progress", params={"task": 13}).json()
    assert "notice" not in official and "pending_applied" not in official

    none = _preview(client, people)
    assert none["pending_applied"] == 0
    assert none["notice"] == f"{PENDING_NOTICE}（0 项待审核填报 pending submissions applied）"

    with psycopg.connect(pending_db, autocommit=True) as conn:
        fid = insert_feature(conn, "old_compounds", YUHUA, status="pending", renovation_year=2023)
    body = {"type": "Feature", "properties": {"status": "started"},
            "change": {"effective_date": "2025-06-01", "document": "裕政字〔2026〕8号", "note": "已进场施工"}}
    r = client.post(f"/collections/old_compounds/items/{fid}/submissions", json=body,
                    headers=auth(people, "editor_in"))
    assert r.status_code == 201, r.text

    one = _preview(client, people)
    assert one["pending_applied"] == 1
    assert one["notice"] == f"{PENDING_NOTICE}（1 项待审核填报 pending submissions applied）"
