"""The base of the app's pure ASGI middlewares."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS: Final = ("GET", "HEAD", "OPTIONS")
"""Methods that read only (RFC 9110 safe methods, in the order an Allow header lists them)."""
NO_DB_PREFIXES: Final = ("/vendor/", "/viewer/static/", "/api", "/docs")
"""Paths served from files: they never need the database (the breaker lets them through, no session lookup)."""


class HttpMiddleware:
    """A pure ASGI middleware that acts on HTTP requests only; subclasses implement :meth:`handle`.

    Why a base class: every middleware of the app must hand the lifespan (and any websocket)
    call to the app untouched, or startup and shutdown never reach it. That pass-through was
    written out in each middleware; here it is one rule, and a subclass sees only HTTP scopes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a non-HTTP call straight through; hand an HTTP request to :meth:`handle`."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (``scope["type"] == "http"``)."""
        raise NotImplementedError
