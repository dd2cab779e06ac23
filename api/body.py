"""The one reader of JSON request bodies: size, UTF-8, JSON and "an object", in that order.

Why one reader: the editing routes, the submission routes and the viewer's sign-in each take
a JSON object. Read separately, they answered the same mistake (a GBK-encoded file, a JSON
array, a body too large) with different statuses and messages, and some not at all (an
invalid-UTF-8 body reached orjson and came back as its internal message). Here each mistake
is one domain error, mapped to problem+json by :mod:`api.errors`:

* larger than the route's limit: :class:`layers.errors.PayloadTooLargeError` (413);
* a ``Content-Type`` that is not JSON, for routes that check it (editing, where QGIS and
  OGC clients name the type): :class:`layers.errors.UnsupportedMediaError` (415);
* not UTF-8, not JSON, empty (unless the route reads an empty body as ``{}``) or not a JSON
  object: :class:`gis.errors.InvalidInputError` (400), saying which and what to send.

:class:`api.input_guard.InputGuardMiddleware` runs before this for every request; it refuses
NUL bytes and invalid UTF-8 in bodies *declared* as JSON and caps every body at its own,
larger limit. A body sent without a ``Content-Type`` passes it unchecked, so the checks
here do not rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.requests import Request

from gis.errors import InvalidInputError
from layers.errors import PayloadTooLargeError, UnsupportedMediaError

MAX_JSON_BODY_BYTES: Final = 20 * 1024 * 1024
"""Default limit of a JSON body: one feature (or one proposed change) with a detailed boundary
fits with room to spare; bulk data goes through the import endpoint."""


@dataclass(frozen=True)
class JsonBody:
    """What a route expects in its JSON body; each route declares one as a module constant.

    Attributes
    ----------
    what : str
        The thing sent, as the messages name it ("a feature", "a submission").
    example : str
        A minimal body of the right shape, shown when the body is not a JSON object.
    max_bytes : int
        The route's limit (413 beyond it).
    empty_is_object : bool
        Read an empty body as ``{}`` (sign-in, approve without a comment) instead of a 400.
    media_types : str or None
        When set, a ``Content-Type`` other than JSON is a 415 naming these types (a missing
        one is taken as JSON).
    too_large_hint : str
        Appended to the 413 message: what to do instead.
    """

    what: str
    example: str
    max_bytes: int = MAX_JSON_BODY_BYTES
    empty_is_object: bool = False
    media_types: str | None = None
    too_large_hint: str = ""


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _check_media_type(request: Request, spec: JsonBody) -> None:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if spec.media_types is not None and not ctype.endswith("json"):
        raise UnsupportedMediaError(
            f"Send {spec.what} as JSON ({spec.media_types}), not {ctype or 'an empty Content-Type'}.",
            detail={"content_type": ctype})


def parse_json_object(raw: bytes, spec: JsonBody) -> dict[str, Any]:
    """The body's bytes as a JSON object, or the domain error that says what is wrong with them."""
    if len(raw) > spec.max_bytes:
        hint = f"; {spec.too_large_hint}" if spec.too_large_hint else "."
        raise PayloadTooLargeError(
            f"The request body is {_size(len(raw))}; {spec.what} may be at most {_size(spec.max_bytes)} "
            f"({spec.max_bytes} bytes){hint}", detail={"max_bytes": spec.max_bytes})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"The request body is not valid UTF-8 text (byte {exc.start} cannot be decoded). Send {spec.what} "
            "as UTF-8; text saved in GBK/GB18030 must be converted first.") from None
    if not text.strip():
        if spec.empty_is_object:
            return {}
        raise InvalidInputError(f"The request body is empty; send {spec.what} as a JSON object, e.g. {spec.example}.")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"The request body is not valid JSON ({exc}); send {spec.what} as a JSON object, "
                                f"e.g. {spec.example}.") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), "a number")
        raise InvalidInputError(f"The request body is JSON {kind}, not an object; send {spec.what} as a JSON object, "
                                f"e.g. {spec.example}.")
    return value


async def read_json_object(request: Request, spec: JsonBody) -> dict[str, Any]:
    """Read the request body once and return it as a JSON object (see the module docstring for the errors)."""
    _check_media_type(request, spec)
    return parse_json_object(await request.body(), spec)
