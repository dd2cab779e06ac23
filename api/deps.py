"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request
from psycopg_pool import AsyncConnectionPool

from api.routing import STATE_READ_ONLY, ReadPool
from api.settings import Settings
from layers.models import Layer
from layers.registry import Registry


def settings_of(request: Request) -> Settings:
    """The settings the app was built with (for code outside a route's declared dependencies)."""
    settings: Settings = request.app.state.settings
    return settings


# The dependencies below are ``async def`` although they never await: FastAPI runs a plain ``def``
# dependency in its thread pool, a hand-off that cost more than these attribute reads (py-spy of a
# z16 tile under load: a fifth of the request's time in thread hand-offs). Run inline, they are free.


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return settings_of(request)


async def get_pool(request: Request) -> AsyncConnectionPool:
    """The app's connection pool."""
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


async def get_read_pool(request: Request) -> ReadPool:
    """A pool-like object for routes that only read: a replica in service when there is one.

    Declared by each read-only route (``ReadPoolDep``); writes keep :func:`get_pool` (the primary).
    """
    state = request.scope.setdefault("state", {})
    state[STATE_READ_ONLY] = True  # no WAL position to hand out afterwards (api/consistency.py)
    return ReadPool(request.app.state.databases, state)


def registry_of(request: Request) -> Registry:
    """The layer registry (for code outside a route's declared dependencies)."""
    registry: Registry = request.app.state.registry
    return registry


async def get_registry(request: Request) -> Registry:
    """The layer registry."""
    return registry_of(request)


async def get_layer(
    collection_id: Annotated[str, Path(description="Layer (collection) id, e.g. old_compounds")],
    registry: Annotated[Registry, Depends(get_registry)],
) -> Layer:
    """The layer named in the path; 404 problem+json for an unknown one."""
    return registry.get(collection_id)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
ReadPoolDep = Annotated[ReadPool, Depends(get_read_pool)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
LayerDep = Annotated[Layer, Depends(get_layer)]

# Request headers of the write routes (Part 4 edits and submissions), declared once so that every
# route documents them alike and reads them under the same alias.
ContentCrsHeader = Annotated[str | None, Header(alias="Content-Crs", description="CRS of the coordinates")]
IfMatchHeader = Annotated[
    str | None,
    Header(alias="If-Match", description="ETag of the feature as last read; when given, a stale one is 412 "
                                         "(optimistic locking)"),
]
