"""The city this app serves: its profile, read once from the database the app is connected to.

One database holds one city (:mod:`layers.city`), so the profile comes from the pool. The
lifespan loads it and makes it the process's city (the plan catalog follows it); a route
that needs it declares :data:`CityDep`, which loads it then if the database was down at start.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from psycopg_pool import AsyncConnectionPool

from layers import city
from layers.city import CityProfile

log = logging.getLogger(__name__)


async def load_city(app: FastAPI) -> CityProfile:
    """Read the profile through the app's pool, keep it on ``app.state`` and activate it."""
    pool: AsyncConnectionPool = app.state.pool
    async with pool.connection() as conn:
        profile = await city.load_async(conn, fresh=True)
    app.state.city = profile
    city.activate(profile)
    return profile


async def get_city(request: Request) -> CityProfile:
    """The app's city profile (loaded on first use if the lifespan could not)."""
    profile: CityProfile | None = getattr(request.app.state, "city", None)
    if profile is None:
        profile = await load_city(request.app)
    return profile


CityDep = Annotated[CityProfile, Depends(get_city)]
