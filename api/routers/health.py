"""Health: is the database reachable, and which PostGIS, GEOS and PROJ does it run.

With streaming replicas configured (``RENEWAL_READ_DATABASE_URLS``) the answer also lists each
replica, whether it is serving reads and how far it lags, and the state of the in-memory layer
versions. While the primary is down but a replica serves reads the answer is 200 with
``"status": "degraded"`` (reads go on; writes answer 503), so a load balancer keeps the
instance; with no database reachable at all it is 503.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import psycopg_pool
from fastapi import APIRouter, Request

from api.access import Public
from api.deps import PoolDep

ORDER = 1
router = APIRouter(tags=["health"])

_VERSIONS_SQL = (
    "SELECT current_setting('server_version'), postgis_lib_version(), postgis_geos_version(), "
    "postgis_proj_version()"
)


@router.get("/healthz", summary="Database, PostGIS, GEOS and PROJ versions; replicas and their lag",
            dependencies=[Public])
async def healthz(request: Request, pool: PoolDep) -> dict[str, Any]:
    """Answer 200 with versions, or 503 (via the error mapping) when no database is reachable."""
    databases = request.app.state.databases
    body: dict[str, Any] = {"status": "ok", "database": "reachable", "worker": os.getpid()}
    try:
        # with replicas to fall back on, do not hold a load balancer's check for the whole pool timeout
        # (hardly at all once the version listener has lost the primary)
        wait = (1.0 if request.app.state.versions.live else 0.2) if databases.replicas else None
        async with pool.connection(timeout=wait) as conn:
            cur = await conn.execute(_VERSIONS_SQL)
            row = await cur.fetchone()
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
        serving = [r for r in databases.replicas if r.in_service]
        if not serving:
            raise
        async with serving[0].pool.connection(timeout=2) as conn:
            cur = await conn.execute(_VERSIONS_SQL)
            row = await cur.fetchone()
        body.update(status="degraded", database="primary unreachable; reads from replicas, writes answer 503")
    assert row is not None
    body.update(postgresql=row[0], postgis=row[1], geos=row[2], proj=row[3])
    body["layer_versions"] = request.app.state.versions.status()
    if databases.replicas:
        body["replicas"] = databases.status()
        body["replica_max_lag_s"] = databases.max_lag_s
    breaker = getattr(request.app.state, "breaker", None)
    if breaker is not None:
        body["breaker"] = breaker.status()
    warning = getattr(request.app.state, "login_warning", None)
    if warning:
        body["warnings"] = [warning]
    return body
