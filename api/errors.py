"""The one place where domain errors become HTTP responses (RFC 9457 problem+json).

Routers raise :class:`gis.errors.RenewalError` subclasses (generic ones from :mod:`gis.errors`,
domain ones from :mod:`layers.errors`); this module maps each class
to a status code. The ``detail`` message is written for a GIS officer; exception
internals go to the log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from gis import errors as e
from layers import errors as le

log = logging.getLogger("renewal.api")

STATUS_BY_ERROR: dict[type[e.RenewalError], int] = {
    e.InvalidInputError: 400,
    le.AuthenticationError: 401,
    le.PermissionDeniedError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    le.PreconditionFailedError: 412,
    le.PayloadTooLargeError: 413,
    le.UnsupportedMediaError: 415,
    le.ServiceUnavailableError: 503,
}

RETRY_AFTER_S = 2
WWW_AUTHENTICATE = 'Bearer realm="renewal", ApiKey realm="renewal"'


def status_for(exc: e.RenewalError) -> int:
    """The HTTP status for a domain error: the nearest mapped base class wins."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


DB_UNREACHABLE = "The database is not reachable right now. Please retry in a few seconds."


def unavailable(title: str, detail: str, *, instance: str | None = None) -> JSONResponse:
    """A 503 problem+json with ``Retry-After`` (:data:`RETRY_AFTER_S`).

    Why one helper: a 503 from this API always says when to try again, whether the database
    is down (the exception handlers, the key check in :mod:`api.auth`) or a query timed out.
    """
    return problem(503, title, detail, instance=instance, headers={"Retry-After": str(RETRY_AFTER_S)})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid value')}")
    return "Invalid request parameters. " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Register the exception-to-problem mapping on the app."""

    @app.exception_handler(e.RenewalError)
    async def _domain(request: Request, exc: e.RenewalError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        if status == 401:
            headers = {"WWW-Authenticate": WWW_AUTHENTICATE}
        return problem(status, exc.title, exc.message, instance=request.url.path, extra=exc.detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(400, "Invalid input", _validation_message(exc), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 406: "Not acceptable"}
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(psycopg_pool.PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        breaker = getattr(request.app.state, "breaker", None)
        if breaker is not None:  # api.breaker: later requests get their 503 without waiting for the pool
            breaker.trip(type(exc).__name__)
        return unavailable("Service unavailable", DB_UNREACHABLE, instance=request.url.path)

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def _timeout(request: Request, exc: Exception) -> JSONResponse:
        return unavailable(
            "Query timed out",
            "The query took too long. Narrow it with a smaller bbox, a filter or a lower limit.",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "Internal error", "An unexpected error occurred; it has been logged.")
