"""Viewer sign-in: a user name and password, or an API key, exchanged for a session cookie.

Why cookies here when the API uses keys: a district officer signs in in the browser and must
not keep an API key in page storage where any script could read it. The cookie
(``renewal_session``) is ``HttpOnly`` (scripts cannot read it), ``SameSite=Strict`` (other sites
cannot send it) and ``Secure`` when ``RENEWAL_SESSION_SECURE_COOKIE`` is set (behind HTTPS).
Only a SHA-256 of its value is stored (``renewal.sessions``), so a leaked table opens nothing.

CSRF: every write (any method but GET, HEAD, OPTIONS) made with the cookie must also send the
session's token in ``X-CSRF-Token`` (the sign-in answer gives it to the page; a page of
another origin cannot read it). API keys and bearer JWTs work as before and win over a cookie.

:func:`session_principal` is called by :class:`api.auth.AccessMiddleware` when a request has
no key and no bearer token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any, Final

import psycopg_pool

from api.asgi import SAFE_METHODS
from api.auth import Principal, SecretCache, principal_from_key, verify_secret
from api.settings import Settings
from gis.errors import InvalidInputError
from layers.errors import AuthenticationError

COOKIE: Final = "renewal_session"
CSRF_HEADER: Final = b"x-csrf-token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_value(scope: Any) -> str | None:
    """The session cookie of a request, if any."""
    for k, v in scope.get("headers", ()):
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE and value:
                    return str(value)
    return None


class SessionCache(SecretCache[tuple[Principal, str]]):
    """Valid sessions (principal and CSRF token) by cookie, per process (:class:`api.auth.SecretCache`).

    Why: without it every request of a signed-in viewer (each map tile) looked its session up
    first, a second database round trip. An entry never outlives the session's own expiry.
    """


async def session_principal(pool: psycopg_pool.AsyncConnectionPool, scope: Any, cache: SessionCache | None = None,
                            ttl: float = 0.0) -> tuple[Principal | None, bool, str | None]:
    """``(principal, csrf_ok, csrf)`` for the request's cookie; ``(None, True, None)`` without a valid session.

    An unknown or expired cookie is anonymous, not an error: the public map keeps working. A valid
    session is remembered in ``cache`` for ``ttl`` seconds (at most until it expires).
    """
    token = cookie_value(scope)
    if token is None or len(token) > 200:
        return None, True, None
    digest = _digest(token)
    hit = cache.get(token) if cache is not None else None
    if hit is None:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT u.name, u.role, u.districts, s.csrf, extract(epoch FROM s.expires_at - now()) "
                "FROM renewal.sessions AS s JOIN renewal.users AS u "
                "ON u.id = s.user_id WHERE s.id_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() "
                "AND u.disabled_at IS NULL", (digest,))
            row = await cur.fetchone()
        if row is None:
            return None, True, None
        hit = Principal(name=row[0], role=row[1], districts=frozenset(row[2] or ()), via="session"), str(row[3])
        if cache is not None:
            cache.put(token, hit, min(ttl, float(row[4])))
    principal, csrf = hit
    if scope.get("method", "GET") in SAFE_METHODS:
        return principal, True, csrf
    sent = next((v for k, v in scope.get("headers", ()) if k == CSRF_HEADER), b"")
    return principal, hmac.compare_digest(sent, csrf.encode()), csrf  # bytes: any header byte compares, none raises


def session_csrf(scope: Any) -> str | None:
    """The CSRF token of the request's session, as the access middleware found it (None without one)."""
    value = scope.get("state", {}).get("session_csrf")
    return value if isinstance(value, str) else None


async def sign_in(pool: psycopg_pool.AsyncConnectionPool, settings: Settings, *, user: str | None,
                  password: str | None, api_key: str | None, cache: Any) -> tuple[str, str, Principal]:
    """Check the credentials and open a session: ``(cookie value, csrf token, principal)``.

    Raises
    ------
    AuthenticationError
        Wrong name or password, a user without a password, or a bad key (401; the message
        does not say which, so names cannot be probed).
    """
    if api_key:
        principal = await principal_from_key(pool, api_key, settings, cache)
    else:
        if not user or not password:
            raise InvalidInputError("Give a user name and password, or an API key. 请输入用户名和密码。")
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, role, districts, password_hash FROM renewal.users WHERE name = %s "
                "AND disabled_at IS NULL", (user[:64],))
            row = await cur.fetchone()
        ok = row is not None and row[3] is not None and await asyncio.to_thread(verify_secret, row[3], password)
        if not ok or row is None:
            raise AuthenticationError("The user name or password is wrong. 用户名或密码错误。")
        principal = Principal(name=row[0], role=row[1], districts=frozenset(row[2] or ()), via="session")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO renewal.sessions (id_hash, user_id, csrf, expires_at) "
            "SELECT %s, u.id, %s, now() + make_interval(secs => %s) FROM renewal.users AS u WHERE u.name = %s",
            (_digest(token), csrf, settings.session_ttl_s, principal.name))
    return token, csrf, principal


async def sign_out(pool: psycopg_pool.AsyncConnectionPool, scope: Any) -> None:
    """Revoke the request's session (if any), in the database and in this process's cache."""
    token = cookie_value(scope)
    if token:
        cache = scope.get("state", {}).get("session_cache")
        if isinstance(cache, SessionCache):
            cache.forget(token)
        async with pool.connection() as conn:
            await conn.execute("UPDATE renewal.sessions SET revoked_at = now() WHERE id_hash = %s AND "
                               "revoked_at IS NULL", (_digest(token),))


def cookie_header(token: str, settings: Settings, *, max_age: int | None = None) -> str:
    """The ``Set-Cookie`` value of a session (HttpOnly, SameSite=Strict, Secure when configured)."""
    age = settings.session_ttl_s if max_age is None else max_age
    secure = "; Secure" if settings.session_secure_cookie else ""
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}"
