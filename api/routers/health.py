"""Health: is the database reachable, and which PostGIS, GEOS and PROJ does it run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PoolDep

ORDER = 1
router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Database, PostGIS, GEOS and PROJ versions")
async def healthz(pool: PoolDep) -> dict[str, Any]:
    """Answer 200 with versions, or 503 (via the error mapping) when the database is down."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_setting('server_version'), postgis_lib_version(), postgis_geos_version(), "
            "postgis_proj_version()"
        )
        row = await cur.fetchone()
    assert row is not None
    return {
        "status": "ok",
        "database": "reachable",
        "postgresql": row[0],
        "postgis": row[1],
        "geos": row[2],
        "proj": row[3],
    }
