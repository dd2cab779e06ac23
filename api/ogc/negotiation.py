"""Content negotiation: the ``f`` parameter first, then the ``Accept`` header.

JSON is the default (GDAL, QGIS and scripts send ``application/json``, ``application/geo+json`` or
nothing); a browser, which prefers ``text/html``, gets the HTML page.

Landing page at ``/``
---------------------
The OGC router answers ``GET /`` only for clients that want JSON (:class:`JsonPreferredRoute`) and serves
HTML at ``/`` only while no other router defines ``GET /`` (:class:`HtmlFallbackRoute`). A map viewer can
therefore take the browser's ``/`` simply by adding a router with a ``GET /`` route: with a *higher*
``ORDER`` than the OGC router nothing more is needed; with a *lower* ``ORDER`` its route should use
``route_class=HtmlPreferredRoute`` so that JSON requests still fall through to the OGC landing page.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Scope

from gis.errors import InvalidInputError

JSON: Final = "json"
HTML: Final = "html"
_F_ALIASES: Final = {"json": JSON, "geojson": JSON, "application/json": JSON, "application/geo+json": JSON,
                     # a '+' typed into a URL unencoded arrives as a space (form encoding)
                     "application/geo json": JSON, "html": HTML, "text/html": HTML}


def _accept_prefers_html(accept: str) -> bool:
    """Whether an Accept header ranks text/html above every JSON type."""
    best_html = 0.0
    best_json = 0.0
    for part in accept.split(","):
        items = [p.strip() for p in part.split(";")]
        media = items[0].lower()
        q = 1.0
        for p in items[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media.endswith("json"):
            best_json = max(best_json, q)
    return best_html > 0 and best_html > best_json


def prefers_json_scope(scope: Scope) -> bool:
    """JSON wanted? ``f=json`` or an Accept header not preferring HTML (raw ASGI scope, for route matching)."""
    query = scope.get("query_string", b"").decode("latin-1")
    for pair in query.split("&"):
        if pair.startswith("f="):
            value = pair[2:].lower()
            return _F_ALIASES.get(value) != HTML
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    return not _accept_prefers_html(headers.get("accept", ""))


def negotiate(request: Request, allowed: tuple[str, ...] = (JSON, HTML)) -> str:
    """The output format of a request: ``json`` or ``html`` (or another of ``allowed``).

    Raises
    ------
    InvalidInputError
        For an ``f`` value the endpoint does not offer (HTTP 400).
    """
    f = request.query_params.get("f")
    if f is not None:
        key = f.strip().lower()
        fmt = _F_ALIASES.get(key, key)
        if fmt not in allowed:
            raise InvalidInputError(f"f='{f}' is not offered here. Use one of: {', '.join(allowed)}.")
        return fmt
    if HTML in allowed and _accept_prefers_html(request.headers.get("accept", "")):
        return HTML
    return JSON if JSON in allowed else allowed[0]


class JsonPreferredRoute(APIRoute):
    """Matches only requests that want JSON, so an HTML route for the same path can live elsewhere."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        """Starlette route matching, refused for HTML-preferring requests."""
        match, child = super().matches(scope)
        if match is Match.FULL and not prefers_json_scope(scope):
            return Match.NONE, {}
        return match, child


class HtmlPreferredRoute(APIRoute):
    """Matches only requests that prefer HTML (for a viewer at ``/``)."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        """Starlette route matching, refused for JSON-preferring requests."""
        match, child = super().matches(scope)
        if match is Match.FULL and prefers_json_scope(scope):
            return Match.NONE, {}
        return match, child


class HtmlFallbackRoute(APIRoute):
    """Matches only while no other route of the app serves the same path and method."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        """Starlette route matching, refused when another router owns this path."""
        match, child = super().matches(scope)
        if match is Match.FULL:
            app = scope.get("app")
            routes = getattr(getattr(app, "router", None), "routes", [])
            for route in routes:
                if route is self or isinstance(route, JsonPreferredRoute | HtmlFallbackRoute):
                    continue
                if getattr(route, "path", None) == self.path and scope.get("method") in (
                        getattr(route, "methods", None) or ()):
                    return Match.NONE, {}
        return match, child
