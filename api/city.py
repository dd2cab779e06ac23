"""The city this app serves: its profile, read once from the database the app is connected to.

One database holds one city (:mod:`layers.city`), so the profile comes from the pool. The
lifespan loads it; :class:`CityContext` makes it the city of every request (so code without a
connection, such as the plan catalog, follows it, even with two apps in one process); a route
that needs it declares :data:`CityDep`. Either loads it if the database was down at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Final

from fastapi import Depends, FastAPI, Request
from psycopg_pool import AsyncConnectionPool
from starlette.types import Receive, Scope, Send

from api.asgi import HttpMiddleware
from layers import city
from layers.city import CityProfile

log = logging.getLogger(__name__)


async def load_city(app: FastAPI) -> CityProfile:
    """Read the profile through the app's pool, keep it on ``app.state`` and activate it."""
    pool: AsyncConnectionPool = app.state.pool
    async with pool.connection() as conn:
        profile = await city.load_async(conn, fresh=True)
    app.state.city = profile
    return profile


async def get_city(request: Request) -> CityProfile:
    """The app's city profile (loaded on first use if the lifespan could not)."""
    profile: CityProfile | None = getattr(request.app.state, "city", None)
    if profile is None:
        profile = await load_city(request.app)
    return profile


CityDep = Annotated[CityProfile, Depends(get_city)]

CITY_CHANNEL: Final = "renewal_city"
"""Notified by the database when the city profile changes (migration 0020)."""


def forget_city(app: FastAPI) -> Callable[[], None]:
    """A listener handler: drop this process's profile, so the next request reads the changed one.

    Subscribed to :data:`CITY_CHANNEL` by the app's lifespan (:meth:`api.versions.LayerVersions.subscribe`),
    so a profile changed by another process (``renewal city create``, another instance) reaches every worker.
    """

    def forget() -> None:
        city.forget()
        app.state.city = None

    return forget


class CityContext(HttpMiddleware):
    """ASGI middleware: the app's city is :func:`layers.city.current` while a request runs."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with the app's city as the current one."""
        owner = scope["app"]
        profile: CityProfile | None = getattr(owner.state, "city", None)
        if profile is None:
            try:
                profile = await load_city(owner)
            except Exception as exc:  # noqa: BLE001 - routes that need the database answer 503 themselves
                log.warning("city profile not loaded (%s)", exc)
        token = city.use(profile)
        try:
            await self.app(scope, receive, send)
        finally:
            city.release(token)
