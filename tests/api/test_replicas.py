"""Reads from a real streaming replica, read-your-writes, lag bound, failure and return (issue 18).

A throwaway primary and one streaming replica (``initdb`` + ``pg_basebackup``, see
``bench/pgcluster.py``) with the migrations and three parking sites; the app is configured
with ``RENEWAL_READ_DATABASE_URLS``. Replay on the replica is *paused* to make it lag on
purpose, so what each read returns shows exactly where it was served.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient

from bench.pgcluster import PGBIN, Cluster

pytestmark = pytest.mark.skipif(not (PGBIN / "pg_basebackup").exists(), reason=f"needs PostgreSQL binaries in {PGBIN}")

MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Primary + one replica with the schema and three parking sites."""
    from api.cli.db import upgrade

    c = Cluster(replicas=1)
    try:
        with psycopg.connect(c.primary.url("postgres"), autocommit=True) as p:
            p.execute("CREATE DATABASE renewal")
        with psycopg.connect(c.primary.url(), autocommit=True) as p:
            p.execute("CREATE EXTENSION postgis")
        upgrade(c.primary.url())
        with psycopg.connect(c.primary.url(), autocommit=True) as p:
            for i in range(3):
                p.execute(
                    "INSERT INTO renewal.parking_sites (code, name, district_code, status, spaces, geom) "
                    "VALUES (%s, %s, '130108', 'planned', 50, ST_SetSRID(ST_MakePoint(%s, 38.03), 4490))",
                    (f"P-{i}", f"停车场{i}", 114.52 + i * 0.001),
                )
        c.wait_replayed()
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def admin_key(cluster: Cluster) -> str:
    """An admin API key on the cluster (created on the primary with the real users code)."""
    from api.cli.users import add_user

    key = add_user(cluster.primary.url(), "admin_rep", "admin", [])
    cluster.wait_replayed()
    return key


@pytest.fixture()
def client(cluster: Cluster) -> Iterator[TestClient]:
    """The app with the replica for reads and a generous lag bound (tests lower it themselves)."""
    from api.app import create_app
    from api.settings import Settings

    settings = Settings(database_url=api_login(cluster.primary), owner_database_url=cluster.primary.url(),
                        read_database_urls=api_login(cluster.replicas[0]), replica_max_lag_s=60, pool_timeout_s=2)
    with TestClient(create_app(settings)) as c:
        _wait(lambda: c.get("/healthz").json()["replicas"][0]["in_service"], "replica in service")
        yield c


def api_login(node: Any) -> str:
    """The node reached as the API's least-privileged login (migration 0014; trust auth here)."""
    from api.settings import API_LOGIN, with_user

    return with_user(node.url(), API_LOGIN)


def _wait(cond: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.1)


def _replay(cluster: Cluster, pause: bool) -> None:
    with psycopg.connect(cluster.replicas[0].url(), autocommit=True) as r:
        r.execute("SELECT pg_wal_replay_pause()" if pause else "SELECT pg_wal_replay_resume()")


def _name(c: TestClient, fid: int) -> str:
    r = c.get(f"/collections/parking_sites/items/{fid}")
    assert r.status_code == 200, r.text
    return str(r.json()["properties"]["name"])


def _rename(c: TestClient, fid: int, name: str, key: str) -> Any:
    item = f"/collections/parking_sites/items/{fid}"
    etag = c.get(item).headers["etag"]
    r = c.patch(item, json={"properties": {"name": name}},
                headers={"X-API-Key": key, "If-Match": etag, "Content-Type": MERGE})
    assert r.status_code == 200, r.text
    return r


def _reads(cluster: Cluster, node: Any) -> int:
    with psycopg.connect(node.url(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'renewal-api' "
                           "AND datname = 'renewal'").fetchone()
    return int(row[0]) if row else 0


def test_reads_go_to_the_replica_and_writes_are_read_back_from_the_primary(
    cluster: Cluster, client: TestClient, admin_key: str,
) -> None:
    c = client
    before = c.get("/healthz").json()["replicas"][0]["reads"]
    assert c.get("/collections/parking_sites/items?limit=10").json()["numberReturned"] == 3
    assert c.get("/healthz").json()["replicas"][0]["reads"] > before
    assert _reads(cluster, cluster.replicas[0]) >= 1  # the replica pool holds the app's connections
    fid = int(c.get("/collections/parking_sites/items?limit=1").json()["features"][0]["id"])
    old = _name(c, fid)
    _replay(cluster, pause=True)
    try:
        r = _rename(c, fid, old + "（新）", admin_key)
        lsn = r.headers["renewal-lsn"]
        assert c.cookies.get("renewal_lsn") == lsn
        # read-your-writes: the writer (its cookie) reads its own write at once ...
        assert _name(c, fid) == old + "（新）"
        c.cookies.clear()
        assert _name(c, fid) == old  # ... a reader without it is served by the paused replica ...
        r2 = c.get(f"/collections/parking_sites/items/{fid}", headers={"Renewal-LSN": lsn})
        assert r2.json()["properties"]["name"] == old + "（新）"  # ... an API client echoing the header too
        # the lag bound: lowered below the replica's lag, it is taken out and reads fall back
        c.app.state.databases.max_lag_s = 0.5
        _wait(lambda: not c.get("/healthz").json()["replicas"][0]["in_service"], "replica out for lag")
        health = c.get("/healthz").json()["replicas"][0]
        assert health["error"].startswith("lag") and health["lag_s"] > 0.5 and health["lag_bytes"] > 0
        assert _name(c, fid) == old + "（新）"
    finally:
        _replay(cluster, pause=False)
    # caught up again: back in service by itself
    _wait(lambda: c.get("/healthz").json()["replicas"][0]["in_service"], "replica back after catching up")
    assert c.get("/healthz").json()["replicas"][0]["lag_s"] == 0.0


def test_gpkg_download_reads_where_the_items_page_reads(
    cluster: Cluster, client: TestClient, admin_key: str,
) -> None:
    # the streamed GeoPackage uses its own synchronous connection: to the replica the read pool
    # would pick, and to the primary for a client whose last write the replica has not replayed
    c = client
    fid = int(c.get("/collections/parking_sites/items?limit=1").json()["features"][0]["id"])
    old = _name(c, fid)

    def names() -> set[str]:
        r = c.get("/collections/parking_sites/items", params={"f": "gpkg"})
        assert r.status_code == 200, r.text
        return set(pyogrio.read_dataframe(io.BytesIO(r.content))["name"])

    _replay(cluster, pause=True)
    try:
        _rename(c, fid, old + "（导出）", admin_key)
        assert old + "（导出）" in names()  # read-your-writes: the writer's download comes from the primary
        c.cookies.clear()
        before = c.get("/healthz").json()["replicas"][0]["reads"]
        got = names()
        assert old in got and old + "（导出）" not in got  # the paused replica served it
        assert c.get("/healthz").json()["replicas"][0]["reads"] == before + 1
    finally:
        _replay(cluster, pause=False)


def test_a_failed_replica_costs_readers_no_errors_and_comes_back(cluster: Cluster, client: TestClient) -> None:
    c = client
    replica = cluster.replicas[0]
    assert c.get("/collections/parking_sites/items?limit=10").status_code == 200
    replica.stop("immediate")
    try:
        statuses = [c.get("/collections/parking_sites/items?limit=10").status_code for _ in range(10)]
        assert statuses == [200] * 10
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["replicas"][0]["in_service"] is False
    finally:
        replica.start()
    _wait(lambda: c.get("/healthz").json()["replicas"][0]["in_service"], "replica back after restart", timeout=20)
    assert c.get("/collections/parking_sites/items?limit=10").status_code == 200


def test_primary_down_reads_go_on_and_writes_get_503_retry_after(
    cluster: Cluster, client: TestClient, admin_key: str,
) -> None:
    c = client
    fid = int(c.get("/collections/parking_sites/items?limit=1").json()["features"][0]["id"])
    item = f"/collections/parking_sites/items/{fid}"
    etag = c.get(item).headers["etag"]
    cluster.primary.stop("immediate")
    try:
        # the breaker (api/breaker.py) watches the primary; once it is open, reads must still pass
        _wait(lambda: c.app.state.breaker.is_open, "breaker open on the primary outage")  # type: ignore[attr-defined]
        for _ in range(5):
            assert c.get("/collections/parking_sites/items?limit=10").status_code == 200
        assert c.get("/healthz").json()["status"] == "degraded"
        r = c.patch(item, json={"properties": {"name": "写不进去"}},
                    headers={"X-API-Key": admin_key, "If-Match": etag, "Content-Type": MERGE})
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    finally:
        cluster.primary.start()
    _wait(lambda: c.get("/healthz").json()["status"] == "ok", "primary back")
