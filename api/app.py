"""The FastAPI application factory.

``create_app(settings)`` builds settings (from the environment when none are given),
opens the async pool in the lifespan, installs the error mapping, and includes every
router module under :mod:`api.routers` (each exposes ``router`` and may set ``ORDER``),
so adding an endpoint family is adding a module.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI

from api import routers
from api.access import install_access
from api.auth import CREDENTIALS_CHANNEL
from api.breaker import Breaker, BreakerMiddleware
from api.city import CITY_CHANNEL, CityContext, forget_city, load_city
from api.consistency import ReadYourWritesMiddleware
from api.db import check_login, make_pool
from api.errors import install_error_handlers
from api.input_guard import InputGuardMiddleware
from api.openapi import install_openapi
from api.routing import Databases, ReplicaRetryMiddleware
from api.settings import Settings
from api.versions import LayerVersions
from layers.query import ESTIMATE_TTL_S, refresh_estimates
from layers.registry import get_registry

log = logging.getLogger(__name__)


def _router_modules() -> list[ModuleType]:
    mods = [importlib.import_module(f"api.routers.{m.name}") for m in pkgutil.iter_modules(routers.__path__)]
    mods = [m for m in mods if hasattr(m, "router")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.login_warning = await check_login(settings)  # refuses a superuser login
        pool = make_pool(settings)
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.breaker = breaker = Breaker(settings.database_url, pool)
        breaker.start()
        app.state.versions = versions = LayerVersions(settings.database_url)
        versions.subscribe(CREDENTIALS_CHANNEL, app.state.credential_caches.clear)
        versions.subscribe(CITY_CHANNEL, forget_city(app))
        layers = list(get_registry())
        versions.every(ESTIMATE_TTL_S / 3, lambda conn: refresh_estimates(conn, layers))
        app.state.databases = databases = Databases(settings, pool, versions)
        versions.start()
        await databases.open()
        app.state.city = None
        try:
            await load_city(app)
        except Exception as exc:  # noqa: BLE001 - the database may be down at start; routes load it later
            log.warning("city profile not loaded at start (%s); loading on first use", exc)
        try:
            yield
        finally:
            await breaker.stop()
            await databases.close()
            await versions.stop()
            await pool.close()

    app = FastAPI(
        title="城市更新 Urban renewal API",
        description=(
            "OGC API Features, vector tiles, planner queries and progress for a city's urban-renewal layers "
            "(the city is the database's profile: GET /viewer/config, `renewal city show`). "
            "Storage CRS CGCS2000 (EPSG:4490)."
        ),
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/api",
        docs_url=None,  # /api.html: the app's own copy of Swagger UI (api/routers/assets.py)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = get_registry()
    install_error_handlers(app)
    install_openapi(app)  # the document says errors are problem+json, as api.errors answers them
    for module in _router_modules():
        app.include_router(module.router)
        if hasattr(module, "install"):  # app-wide hooks a router module needs
            module.install(app)
    app.add_middleware(ReplicaRetryMiddleware)
    app.add_middleware(ReadYourWritesMiddleware)
    install_access(app)  # every route must declare what it reads or writes (api/access.py)
    # Added last, so it runs first: no route, middleware or log line sees unsafe text.
    app.add_middleware(InputGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(CityContext)
    # Outermost: during an outage nothing that would wait for the database runs (api/breaker.py).
    app.add_middleware(BreakerMiddleware)
    return app
