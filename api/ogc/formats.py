"""Extra encodings of ``/collections/{id}/items`` (``?f=gpkg``, ``shp``, ``csv``, ``xlsx``, ``kml``, ...).

The OGC router serves GeoJSON and HTML itself. Another module (the exporter) registers further
encodings here at import time; the items endpoint then validates the request with
:func:`api.params.items_request` (so every items filter applies) and hands the
:class:`layers.query.FeatureQuery` to the handler::

    from api.ogc.formats import register_items_format

    async def gpkg(request, layer, query, pool, settings) -> Response: ...

    register_items_format("gpkg", "application/geopackage+sqlite3", gpkg, title="GeoPackage")

For these formats ``query.limit`` is the client's ``limit`` when given (any positive number) and
:data:`EXPORT_ALL` otherwise, because an export wants every matching feature; handlers select with
``layers.export.select_sql`` (the query's condition, order and limit). ``query.crs`` is None
when the client gave no ``crs``, so the format's own default applies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from layers.query import NO_LIMIT

EXPORT_ALL = NO_LIMIT
"""``query.limit`` of an export request without ``limit``."""

ItemsHandler = Callable[[Request, Any, Any, Any, Any], Awaitable[Response]]
"""``(request, layer, query, pool, settings) -> Response``."""


@dataclass(frozen=True)
class ItemsFormat:
    """A registered items encoding."""

    name: str
    media_type: str
    handler: ItemsHandler
    title: str


_FORMATS: dict[str, ItemsFormat] = {}


def register_items_format(name: str, media_type: str, handler: ItemsHandler, *, title: str | None = None) -> None:
    """Offer ``?f=<name>`` on every items endpoint (and an alternate link to it)."""
    _FORMATS[name.lower()] = ItemsFormat(name.lower(), media_type, handler, title or name.upper())


def items_formats() -> dict[str, ItemsFormat]:
    """The registered extra encodings by ``f`` name."""
    return dict(_FORMATS)
