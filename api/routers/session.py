"""Viewer sign-in routes (``/auth/session``): cookie sessions of :mod:`api.sessions`.

* ``POST /auth/session`` with ``{"user": ..., "password": ...}`` or ``{"api_key": ...}``: sets the
  ``renewal_session`` cookie and answers the caller's identity and the CSRF token for writes.
* ``GET /auth/session``: the current identity (and CSRF token) of a signed-in page, e.g. after a reload.
* ``DELETE /auth/session``: signs out (revokes the session, clears the cookie).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from api import sessions
from api.access import Public
from api.auth import get_principal
from api.body import JsonBody, read_json_object
from api.deps import PoolDep
from api.settings import Settings
from gis.errors import InvalidInputError

ORDER = 46
router = APIRouter(tags=["auth"])

SIGN_IN_BODY: Final = JsonBody(
    what="the sign-in", example='{"user": "...", "password": "..."} or {"api_key": "..."}',
    max_bytes=16 * 1024, empty_is_object=True)
"""A name and a password or a key: 16 KB is far more than any, and a sign-in is unauthenticated, so
it gets no more (the generic 20 MB limit would let anyone make the server parse 20 MB per request).
An empty body reads as ``{}`` and gets the "give a user name and password" answer."""


def _identity(principal: Any, csrf: str | None) -> dict[str, Any]:
    return {"name": principal.name, "role": principal.role, "districts": sorted(principal.districts),
            "via": principal.via, "csrf": csrf}


@router.post("/auth/session", summary="Sign in to the viewer (user name and password, or an API key)",
             dependencies=[Public], openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "properties": {"user": {"type": "string"},
                                                             "password": {"type": "string"},
                                                             "api_key": {"type": "string"}}}}}}})
async def sign_in(request: Request, pool: PoolDep) -> JSONResponse:
    """Sets an HttpOnly, SameSite=Strict session cookie; the answer carries the CSRF token for writes."""
    body = await read_json_object(request, SIGN_IN_BODY)
    if not all(isinstance(v, str) for v in body.values()):
        raise InvalidInputError(f"The sign-in's values must be text: send {SIGN_IN_BODY.example}.")
    settings: Settings = request.app.state.settings
    cache = request.scope.get("state", {}).get("key_cache")
    token, csrf, principal = await sessions.sign_in(pool, settings, user=body.get("user"),
                                                    password=body.get("password"), api_key=body.get("api_key"),
                                                    cache=cache)
    resp = JSONResponse(_identity(principal, csrf) | {"via": "session"})
    resp.headers["Set-Cookie"] = sessions.cookie_header(token, settings)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/auth/session", summary="The signed-in viewer's identity and CSRF token", dependencies=[Public])
async def current(request: Request) -> JSONResponse:
    """Anonymous callers get ``{"role": "anonymous"}``."""
    principal = get_principal(request)
    csrf = sessions.session_csrf(request.scope) if principal.via == "session" else None
    return JSONResponse(_identity(principal, csrf), headers={"Cache-Control": "no-store"})


@router.delete("/auth/session", summary="Sign out of the viewer", dependencies=[Public])
async def sign_out(request: Request, pool: PoolDep) -> JSONResponse:
    """Revokes the session and clears the cookie."""
    await sessions.sign_out(pool, request.scope)
    resp = JSONResponse({"signed_out": True})
    resp.headers["Set-Cookie"] = sessions.cookie_header("", request.app.state.settings, max_age=0)
    return resp
