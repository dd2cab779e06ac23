"""One guard for all text that reaches the app: NUL bytes, invalid UTF-8, oversized values.

PostgreSQL text cannot hold a NUL byte, and a value that is not UTF-8 cannot be a Chinese
name; either would otherwise surface deep inside a query as a driver error (a 500). This
pure ASGI middleware checks the path, every query parameter and every JSON or form body
before any route runs, and answers 400 problem+json naming the parameter, or 413 when a
body is larger than ``max_body_bytes``. Uploads (multipart) are only size-limited here;
their text fields and file contents are checked by the reader that parses them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException

from api.asgi import HttpMiddleware
from layers.query import MAX_FILTER_CHARS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_PARAM_CHARS: Final = MAX_FILTER_CHARS
"""Longest single query-parameter value: the CQL2 filter's limit (:data:`layers.query.MAX_FILTER_CHARS`).

Why derived, not a number of its own: a filter is the longest parameter a route takes (a polygon
sent elsewhere as WKT can as well be sent inside a filter's S_INTERSECTS, so the same bound fits
it), and two equal numbers kept apart drift: a lower guard would refuse filters the parser
accepts, with the guard's generic message."""
MAX_PATH_CHARS: Final = 2_048
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_TEXT_BODY_TYPES: Final = ("application/json", "application/geo+json", "application/merge-patch+json",
                           "application/x-www-form-urlencoded", "text/")


class InputRejected(Exception):
    """A request part that no route should ever see."""

    def __init__(self, status: int, title: str, detail: str, parameter: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.parameter = status, title, detail, parameter


def check_text(raw: bytes, parameter: str, *, max_chars: int = MAX_PARAM_CHARS) -> str:
    """Decode one value as UTF-8 and refuse NUL bytes and oversized values."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputRejected(400, "Invalid input", f"'{parameter}' is not valid UTF-8 text.", parameter) from None
    if "\x00" in text:
        raise InputRejected(400, "Invalid input", f"'{parameter}' contains a NUL byte, which is not allowed.",
                            parameter)
    if len(text) > max_chars:
        raise InputRejected(400, "Invalid input",
                            f"'{parameter}' is {len(text)} characters long; the limit is {max_chars}.", parameter)
    return text


def check_query_string(query: bytes) -> None:
    """Check every name and value of a query string (percent-decoded, ``+`` as space)."""
    for pair in query.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(raw_name.replace(b"+", b" "))
        name = check_text(name_bytes, "query parameter name", max_chars=256)
        check_text(unquote_to_bytes(raw_value.replace(b"+", b" ")), name)


def _walk_json(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise InputRejected(400, "Invalid input", f"'{where}' contains a NUL byte, which is not allowed.", where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_json(key, f"{where}.{key}" if where != "body" else str(key))
            _walk_json(item, f"{where}.{key}" if where != "body" else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_json(item, f"{where}[{i}]")


def check_body(body: bytes, content_type: str) -> None:
    """Check a text body: UTF-8, and no NUL in any JSON string or form value."""
    text = check_text(body, "request body", max_chars=len(body) + 1)
    if content_type.startswith("application/x-www-form-urlencoded"):
        check_query_string(body)
        return
    if "json" in content_type and "\\u0000" in text.lower():
        try:
            _walk_json(json.loads(text), "body")
        except ValueError:
            return  # malformed JSON: the route's parser answers it with its own 400


class InputGuardMiddleware(HttpMiddleware):
    """Refuse unsafe text before routing (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (with its body replayed) or answer 400/413."""
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            check_text(unquote_to_bytes(raw_path), "path", max_chars=MAX_PATH_CHARS)
            check_text(scope["path"].encode("utf-8", "surrogateescape"), "path", max_chars=MAX_PATH_CHARS)
            check_query_string(scope.get("query_string", b""))
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                raise InputRejected(413, "Request too large",
                                    f"The request body is {int(length)} bytes; the limit is {self.max_body_bytes}.",
                                    "request body")
            content_type = headers.get("content-type", "").lower()
            if scope.get("method") in ("POST", "PUT", "PATCH") and content_type.startswith(_TEXT_BODY_TYPES):
                body = await self._read_body(receive)
                check_body(body, content_type)
                receive = _replay(body)
            elif scope.get("method") in ("POST", "PUT", "PATCH"):
                receive = self._limited(receive)
        except InputRejected as exc:
            await _answer(send, scope, exc)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise InputRejected(413, "Request too large",
                                    f"The request body is larger than the limit of {self.max_body_bytes} bytes.",
                                    "request body")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        """Pass a streamed body (uploads) through, cutting it off past the limit."""
        seen = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"The request body is larger than the limit of {limit} bytes.")
            return message

        return wrapped


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _answer(send: Send, scope: Scope, exc: InputRejected) -> None:
    body = json.dumps({
        "type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail,
        "parameter": exc.parameter,
    }, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": exc.status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})
