"""Read-your-writes: the primary's WAL position after a write, handed to the client and back.

After a successful write (any method but GET/HEAD/OPTIONS answered below 400, by a route that
did not declare itself read-only with ``ReadPoolDep``) the response
carries the primary's WAL insert position, read after the write committed, twice:

* ``Set-Cookie: renewal_lsn=<X/Y>`` so browsers and simple clients send it back for free;
* ``Renewal-LSN: <X/Y>``, a header API clients may echo on their next requests.

On every request the larger of the two (cookie or header) becomes the request's *minimum
position*: :mod:`api.routing` serves it from a replica only once that replica has replayed
past it, and :mod:`api.versions` trusts its in-memory versions for it only once its listener
has synced past it. The same round trip that reads the position also reads every layer version,
so the instance that took the write has its new versions in memory before it answers.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import psycopg
import psycopg_pool
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.routing import STATE_MIN_LSN, STATE_READ_ONLY
from api.versions import format_lsn, parse_lsn

log = logging.getLogger(__name__)

COOKIE: Final = "renewal_lsn"
HEADER: Final = "Renewal-LSN"
COOKIE_MAX_AGE_S: Final = 600
_SAFE: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_AFTER_WRITE: Final = (
    "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, "
    "coalesce((SELECT json_object_agg(layer, version) FROM renewal.layer_version), '{}'::json)"
)


def request_min_lsn(headers: list[tuple[bytes, bytes]]) -> int:
    """The largest WAL position the client sent (``Renewal-LSN`` header or ``renewal_lsn`` cookie)."""
    best = 0
    for name, value in headers:
        if name == b"renewal-lsn":
            best = max(best, parse_lsn(value.decode("latin-1")))
        elif name == b"cookie":
            # parsed by hand: http.cookies rejects the '/' of a WAL position, which RFC 6265 allows
            for part in value.decode("latin-1").split(";"):
                key, _, text = part.strip().partition("=")
                if key == COOKIE:
                    best = max(best, parse_lsn(text.strip('"')))
    return best


async def position_after_write(app_state: Any) -> int | None:
    """Read the primary's WAL position and every layer version (one round trip); merge the versions."""
    try:
        async with app_state.pool.connection(timeout=2) as conn:
            cur = await conn.execute(_AFTER_WRITE)
            row = await cur.fetchone()
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        log.warning("could not read the WAL position after a write: %s", exc)
        return None
    if row is None:
        return None
    app_state.versions.merge(row[1])
    return int(row[0])


class ReadYourWritesMiddleware(HttpMiddleware):
    """Put the client's position on the request; hand out the primary's position after writes."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the client's position; add the primary's after a successful write."""
        state: dict[str, Any] = scope.setdefault("state", {})
        seen = request_min_lsn(scope.get("headers", []))
        state[STATE_MIN_LSN] = seen
        if scope["method"] in _SAFE:
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state

        async def send_with_position(message: Message) -> None:
            if (message["type"] == "http.response.start" and message["status"] < 400
                    and not state.get(STATE_READ_ONLY)):
                lsn = await position_after_write(app_state)
                if lsn is not None:
                    text = format_lsn(max(lsn, seen))
                    headers = MutableHeaders(scope=message)
                    headers.append(HEADER, text)
                    headers.append("Set-Cookie", f"{COOKIE}={text}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; "
                                                 "HttpOnly; SameSite=Lax")
                    headers.append("Access-Control-Expose-Headers", HEADER)
            await send(message)

        await self.app(scope, receive, send_with_position)
