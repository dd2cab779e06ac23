"""Base URLs and OGC link objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from api.settings import Settings

GEOJSON = "application/geo+json"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html"
SCHEMA_JSON = "application/schema+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
MVT = "application/vnd.mapbox-vector-tile"


def base_url(request: Request, settings: Settings) -> str:
    """The service root without a trailing slash (``RENEWAL_PUBLIC_URL`` behind a proxy)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def link(href: str, rel: str, type_: str | None = None, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """One link object."""
    out: dict[str, Any] = {"href": href, "rel": rel}
    if type_:
        out["type"] = type_
    if title:
        out["title"] = title
    out.update(extra)
    return out


def with_query(url: str, params: Mapping[str, str] | list[tuple[str, str]]) -> str:
    """``url`` with a query string (keeps the order of ``params``)."""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    return url + ("?" + urlencode(items) if items else "")


def replace_params(request: Request, **changes: str | None) -> list[tuple[str, str]]:
    """The request's query parameters with some replaced (``None`` removes one)."""
    out = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    out += [(k.replace("_", "-"), v) for k, v in changes.items() if v is not None]
    return out
