"""Who is calling, what may they read, and how fast: API keys, JWTs, read policy, rate limits.

Roles
-----
``viewer``
    Reads every layer, including layers closed to anonymous readers.
``editor``
    A viewer who may create, change and delete features of *renewal* layers inside their
    districts (``renewal.users.districts``, adcodes). "Inside" is decided by geometry, before
    and after the edit: the feature's interior must intersect one of the editor's districts
    (see :func:`layers.editing.check_district_scope`). Reference layers are admin-only.
``reviewer``
    Reviews editors' submissions (``layers.submissions``) for the city (no districts) or for
    some districts, and writes renewal layers directly within that scope, like an editor.
``admin``
    Edits everything and reads the audit trail and tombstones.
anonymous
    No credentials: reads layers whose registry entry has ``anonymous_read: true`` (unless
    ``RENEWAL_RESTRICTED_LAYERS`` names them; ``RENEWAL_PUBLIC_LAYERS`` opens a closed layer),
    rate limited per client address by a token bucket (``RENEWAL_ANON_RATE_PER_S``,
    ``RENEWAL_ANON_BURST``; one bucket per address across every worker, :mod:`api.ratelimit`);
    never writes.

Credentials
-----------
API keys look like ``rk_<key id>_<secret>``. Only an argon2id hash of the secret is stored
(``renewal.api_keys``); the key id finds the row, so one hash is verified per request (and
a verified key is cached in memory, forgotten by every process when any key, user or session
changes (:class:`CredentialCaches`), and for at most ``RENEWAL_AUTH_CACHE_TTL_S`` seconds). Send the key as
``X-API-Key: <key>`` or ``Authorization: Bearer <key>``, or in the query string as
``apikey=<key>`` (or ``api_key``) for desktop clients that can only add URL parameters (QGIS's
"extra query parameters", ArcGIS Pro's custom parameters). The middleware takes a query key
*out* of the request before any route sees it (:func:`take_query_key`), so no link, ``Location``
or log line the server writes can repeat it. Bearer JWTs from an external identity
provider are accepted when ``RENEWAL_JWT_ISSUER`` and ``RENEWAL_JWT_KEY`` are set: ``sub`` is
the user, ``role`` the role (default viewer), ``districts`` a list of adcodes.

:class:`AccessMiddleware` (installed by the app factory through :func:`api.access.install_access`)
establishes *who* is calling from the request headers (or the query key), rate-limits anonymous callers and gives
each request an id (``X-Request-Id``, echoed back and written to the audit log). It never looks
at the path, nor at the query string beyond the key: *what* a caller may read or write is declared by each route
(:mod:`api.access`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import unquote_to_bytes

import jwt
import psycopg
import psycopg_pool
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from starlette.responses import JSONResponse, Response

from api.asgi import NO_DB_PREFIXES, HttpMiddleware
from api.errors import DB_UNREACHABLE, problem, unavailable
from api.ratelimit import Buckets
from api.ratelimit import buckets as rate_buckets
from api.settings import Settings
from layers.errors import AuthenticationError, PermissionDeniedError
from layers.models import Layer
from layers.registry import Registry

log = logging.getLogger("renewal.auth")

Role = Literal["anonymous", "viewer", "editor", "reviewer", "admin"]
ROLES: Final[tuple[str, ...]] = ("viewer", "editor", "reviewer", "admin")
KEY_PREFIX: Final = "rk"
_KEY_RE: Final = re.compile(r"^rk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# argon2id with the OWASP minimum memory cost: keys are 256-bit random secrets, so the hash
# guards a leaked table rather than weak passwords; verification stays around 10-20 ms.
_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    name: str
    role: Role
    districts: frozenset[str] = field(default_factory=frozenset)
    via: Literal["anonymous", "key", "jwt", "session"] = "anonymous"

    @property
    def is_anonymous(self) -> bool:
        """True when no credentials were given."""
        return self.role == "anonymous"

    @property
    def can_read_restricted(self) -> bool:
        """Every authenticated role reads every layer."""
        return not self.is_anonymous

    def can_edit(self, layer: Layer) -> bool:
        """Whether the role allows writing this layer at all (district scope is checked separately)."""
        if self.role == "admin":
            return True
        return self.role in ("editor", "reviewer") and layer.kind == "renewal"

    @property
    def district_scope(self) -> frozenset[str] | None:
        """Districts an editor or reviewer is limited to; None means unrestricted (admins, city reviewers)."""
        if self.role == "admin" or (self.role == "reviewer" and not self.districts):
            return None
        return self.districts


ANONYMOUS: Final = Principal(name="anonymous", role="anonymous")


# --------------------------------------------------------------------------- API keys


def generate_key() -> tuple[str, str, str]:
    """A new API key: ``(key_id, secret, full_key)``; only the key id and the hash are stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}_{key_id}_{secret}"


def hash_secret(secret: str) -> str:
    """The argon2id hash stored for a key's secret."""
    return _HASHER.hash(secret)


def verify_secret(key_hash: str, secret: str) -> bool:
    """Constant-time check of a secret against its stored hash."""
    try:
        return _HASHER.verify(key_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def split_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    m = _KEY_RE.match(key.strip())
    return (m.group(1), m.group(2)) if m else None


_KEY_LOOKUP: Final = """
SELECT k.key_hash, u.name, u.role, u.districts
FROM renewal.api_keys AS k JOIN renewal.users AS u ON u.id = k.user_id
WHERE k.key_id = %s AND k.revoked_at IS NULL AND u.disabled_at IS NULL
"""


V = TypeVar("V")


class SecretCache(Generic[V]):
    """What a secret (an API key, a session cookie) stood for, kept by its SHA-256 for a short time.

    One rule for every credential: an entry lives at most ``ttl`` seconds (``RENEWAL_AUTH_CACHE_TTL_S``),
    and every process forgets them all when the database says a credential changed
    (:class:`CredentialCaches`). At most 10,000 entries (all are dropped when full).
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[V, float]] = {}

    @staticmethod
    def _digest(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def get(self, secret: str) -> V | None:
        """The cached value, if still fresh."""
        hit = self._entries.get(self._digest(secret))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, secret: str, value: V, ttl: float) -> None:
        """Remember a verified secret for ``ttl`` seconds (not at all when ``ttl`` is not positive)."""
        if ttl <= 0:
            return
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[self._digest(secret)] = (value, time.monotonic() + ttl)

    def forget(self, secret: str) -> None:
        """Drop one secret (signed out)."""
        self._entries.pop(self._digest(secret), None)

    def clear(self) -> None:
        """Forget everything (after a revocation through the API)."""
        self._entries.clear()


class KeyCache(SecretCache[Principal]):
    """Verified API keys, so argon2 runs rarely."""


CREDENTIALS_CHANNEL: Final = "renewal_credentials"
"""Notified by the database after every change to ``users``, ``api_keys`` or ``sessions`` (migration 0019)."""


class CredentialCaches:
    """The per-process caches of verified credentials: API keys and sign-in sessions.

    A revocation, a disabled user, a changed role or a sign-out may happen in another worker, in
    another instance or in the ``renewal users`` command: each commits a change to those tables, the
    database notifies :data:`CREDENTIALS_CHANNEL`, and every process's listener
    (:class:`api.versions.LayerVersions`) calls :meth:`clear`, so no worker honours a revoked
    credential from memory (milliseconds, not the cache TTL). While the listener is down the TTL
    (``RENEWAL_AUTH_CACHE_TTL_S``) still bounds an entry's life, and the listener clears the caches
    again when it reconnects (notifications may have been missed meanwhile).
    """

    def __init__(self) -> None:
        from api.sessions import SessionCache  # api.sessions imports this module

        self.keys = KeyCache()
        self.sessions = SessionCache()

    def clear(self) -> None:
        """Forget every cached key and session."""
        self.keys.clear()
        self.sessions.clear()


async def principal_from_key(pool: psycopg_pool.AsyncConnectionPool, key: str, settings: Settings,
                             cache: KeyCache) -> Principal:
    """Look up and verify an API key.

    Raises
    ------
    AuthenticationError
        Malformed, unknown, revoked or disabled key (HTTP 401).
    """
    cached = cache.get(key)
    if cached is not None:
        return cached
    parts = split_key(key)
    if parts is None:
        raise AuthenticationError("The API key is malformed. Keys look like rk_<id>_<secret>; ask an administrator.")
    key_id, secret = parts
    async with pool.connection() as conn:
        cur = await conn.execute(_KEY_LOOKUP, (key_id,))
        row = await cur.fetchone()
    if row is None or not await asyncio.to_thread(verify_secret, row[0], secret):
        raise AuthenticationError("The API key is unknown or has been revoked.")
    principal = Principal(name=row[1], role=row[2], districts=frozenset(row[3] or ()), via="key")
    cache.put(key, principal, settings.auth_cache_ttl_s)
    return principal


def principal_from_jwt(token: str, settings: Settings) -> Principal:
    """Verify a bearer JWT from the configured identity provider.

    Raises
    ------
    AuthenticationError
        Bad signature, wrong issuer/audience, expired, or JWTs not configured (HTTP 401).
    """
    if not settings.jwt_key or not settings.jwt_issuer:
        raise AuthenticationError("Bearer tokens are not accepted by this server; use an API key.")
    algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key,
            algorithms=algorithms,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": ["exp", "iss", "sub"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"The bearer token was rejected: {exc}.") from None
    role = claims.get("role", "viewer")
    if role not in ROLES:
        role = "viewer"
    districts = claims.get("districts") or []
    if not isinstance(districts, list) or not all(isinstance(d, str) for d in districts):
        raise AuthenticationError("The bearer token's 'districts' claim must be a list of adcodes.")
    return Principal(name=str(claims["sub"])[:64], role=role, districts=frozenset(districts), via="jwt")


# --------------------------------------------------------------------------- read policy


def _split_ids(text: str) -> set[str]:
    return {p.strip() for p in text.split(",") if p.strip()}


def restricted_layer_ids(registry: Registry, settings: Settings) -> frozenset[str]:
    """Layers anonymous callers may not read: registry ``anonymous_read: false`` plus settings."""
    closed = {layer.id for layer in registry if not layer.anonymous_read} | _split_ids(settings.restricted_layers)
    return frozenset(closed - _split_ids(settings.public_layers))


# --------------------------------------------------------------------------- rate limiting


# --------------------------------------------------------------------------- dependencies


def get_principal(request: Request) -> Principal:
    """The caller, as established by :class:`AccessMiddleware` (anonymous if it did not run)."""
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


def get_request_id(request: Request) -> str:
    """The id of the current request (``X-Request-Id``)."""
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else uuid.uuid4().hex


def require_authenticated(request: Request) -> Principal:
    """Any signed-in caller, else 401."""
    principal = get_principal(request)
    if principal.is_anonymous:
        raise AuthenticationError("Sign in with an API key (X-API-Key header) or a bearer token.")
    return principal


def require_admin(request: Request) -> Principal:
    """An admin, else 401 (anonymous) or 403."""
    principal = require_authenticated(request)
    if principal.role != "admin":
        raise PermissionDeniedError(f"User '{principal.name}' ({principal.role}) is not an administrator.")
    return principal


def require_editor_of(principal: Principal, layer: Layer) -> None:
    """Raise 401/403 unless the caller may write this layer (district scope checked by the edit)."""
    if principal.is_anonymous:
        raise AuthenticationError("Editing needs an API key (X-API-Key header) or a bearer token.")
    if not principal.can_edit(layer):
        if principal.role in ("editor", "reviewer"):
            raise PermissionDeniedError(
                f"Layer '{layer.id}' ({layer.title}) is reference data; only administrators edit it."
            )
        raise PermissionDeniedError(f"User '{principal.name}' has role {principal.role} and cannot edit.")


PrincipalDep = Depends(get_principal)


# --------------------------------------------------------------------------- middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


QUERY_KEY_PARAMS: Final = (b"apikey", b"api_key")
"""Query parameter names that carry an API key (taken out of the request by :func:`take_query_key`)."""


def take_query_key(scope: Scope) -> str | None:
    """The API key of the query string, removed from ``scope`` so no route, link or log sees it.

    Why remove it: routes echo their query string into ``self``/``next`` links and routes with
    strict parameters would call it unknown; a key in a link would travel on to caches and logs.
    """
    raw: bytes = scope.get("query_string", b"")
    if not raw or not any(name in raw for name in QUERY_KEY_PARAMS):
        return None
    key: str | None = None
    kept: list[bytes] = []
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")).lower() in QUERY_KEY_PARAMS:
            text = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8", "replace").strip()
            key = key or text or None
        else:
            kept.append(part)
    scope["query_string"] = b"&".join(kept)
    return key


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AccessMiddleware(HttpMiddleware):
    """Request ids, authentication and rate limiting of anonymous callers (never authorization).

    A pure ASGI middleware (no response buffering, streaming responses pass through).
    Errors are answered here as problem+json, since the app's exception handlers sit
    inside it; a database outage while checking a key is a 503 with Retry-After.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._buckets: Buckets | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request."""
        fastapi_app = scope["app"]
        settings: Settings = fastapi_app.state.settings
        state = scope.setdefault("state", {})
        rid = _header(scope, b"x-request-id")
        request_id = rid if rid and _REQUEST_ID_RE.match(rid) else uuid.uuid4().hex
        state["request_id"] = request_id
        caches: CredentialCaches = fastapi_app.state.credential_caches
        state["key_cache"] = caches.keys
        state["session_cache"] = caches.sessions
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]

        denial = await self._authenticate(scope, fastapi_app, settings, state)
        if denial is None and state["principal"].is_anonymous:
            denial = self._rate_limit(scope, settings)
        if denial is not None:
            denial.headers["x-request-id"] = request_id
            await denial(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = headers + extra_headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _authenticate(self, scope: Scope, app: Any, settings: Settings, state: dict[str, Any]) -> Response | None:
        query_key = take_query_key(scope)
        key = _header(scope, b"x-api-key") or query_key
        bearer = None
        authz = _header(scope, b"authorization")
        if authz:
            scheme, _, value = authz.partition(" ")
            if scheme.lower() in ("bearer", "apikey") and value.strip():
                bearer = value.strip()
            else:
                return self._unauthorized("The Authorization header must be 'Bearer <API key or token>'.")
        try:
            if key is None and bearer is not None and bearer.startswith(KEY_PREFIX + "_"):
                key, bearer = bearer, None
            if key is not None:
                state["principal"] = await principal_from_key(app.state.pool, key, settings, state["key_cache"])
            elif bearer is not None:
                state["principal"] = principal_from_jwt(bearer, settings)
            elif scope["path"].startswith(NO_DB_PREFIXES):
                state["principal"] = ANONYMOUS  # static files: the session cookie costs no query
            else:
                from api.sessions import session_principal  # viewer sign-in cookie (api/sessions.py)

                session, csrf_ok, csrf = await session_principal(app.state.pool, scope, state["session_cache"],
                                                                  settings.auth_cache_ttl_s)
                state["session_csrf"] = csrf
                if not csrf_ok:
                    return problem(403, "Forbidden", "This write needs the session's X-CSRF-Token header; reload the "
                                   "page and sign in again.", instance=scope["path"])
                state["principal"] = session or ANONYMOUS
        except AuthenticationError as exc:
            return self._unauthorized(exc.message)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            log.warning("database unavailable while checking an API key: %s", exc)
            return unavailable("Service unavailable", DB_UNREACHABLE, instance=scope["path"])
        return None

    @staticmethod
    def _unauthorized(message: str) -> JSONResponse:
        return problem(401, "Unauthorized", message,
                       headers={"WWW-Authenticate": 'Bearer realm="renewal", ApiKey realm="renewal"'})

    def _rate_limit(self, scope: Scope, settings: Settings) -> Response | None:
        if settings.anon_rate_per_s <= 0:
            return None
        if self._buckets is None or (self._buckets.rate, self._buckets.burst) != (settings.anon_rate_per_s,
                                                                                  settings.anon_burst):
            self._buckets = rate_buckets(settings.anon_rate_per_s, settings.anon_burst)
        wait = self._buckets.take(_client_address(scope))
        if wait <= 0:
            return None
        retry = max(1, math.ceil(wait))
        return problem(
            429, "Too many requests",
            f"Anonymous clients may make {settings.anon_rate_per_s:g} requests per second "
            f"(bursts of {settings.anon_burst}). Retry in {retry} s, or use an API key.",
            instance=scope["path"], headers={"Retry-After": str(retry)},
        )
