"""The OpenAPI document (``/api``) says what the API answers on errors: RFC 9457 problem details.

FastAPI documents every operation with parameters as answering ``422`` with its own
``HTTPValidationError`` body. This API never sends that: :mod:`api.errors` turns invalid
parameters into ``400`` ``application/problem+json``, and every other error (401, 403, 404, 406,
409, 412, 413, 415, 429, 503) into the same problem shape. A client generated from the document,
or a tester checking answers against it (schemathesis ``status_code_conformance``), was told
the wrong status and the wrong body, and not told the statuses it does get.

So the document is rewritten once, when first asked for:

* FastAPI's generated ``422 Validation Error`` goes (a route that declares its own 422, as the
  import's row report does, keeps it);
* every operation gets a ``default`` response: ``application/problem+json`` with the
  :data:`PROBLEM_SCHEMA`, the way the OGC API Features OpenAPI fragments document exceptions;
* ``HTTPValidationError``/``ValidationError`` leave ``components`` once nothing refers to them.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import FastAPI

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `detail` is written for a GIS officer.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
PROBLEM_CONTENT: Final[dict[str, Any]] = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
}
"""The ``content`` of an error response: routes that list their errors one by one (editing) use it too."""
PROBLEM_RESPONSE: Final[dict[str, Any]] = {
    "description": (
        "An error, as RFC 9457 problem details: 400 invalid input, 401 not signed in or a bad key, "
        "403 not allowed, 404 not found, 406 format not offered, 409 conflict, 412 stale ETag, "
        "413 too large, 415 media type, 429 rate limit (see Retry-After), 503 database unavailable "
        "or query timed out (see Retry-After)."
    ),
    "content": PROBLEM_CONTENT,
}
FASTAPI_VALIDATION_DESCRIPTION: Final = "Validation Error"
FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")
METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI OpenAPI document in place as the module docstring says; return it."""
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            generated = responses.get("422")
            if generated is not None and generated.get("description") == FASTAPI_VALIDATION_DESCRIPTION:
                del responses["422"]
            responses.setdefault("default", {"$ref": "#/components/responses/Problem"})
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("responses", {})["Problem"] = PROBLEM_RESPONSE
    for name in FASTAPI_VALIDATION_SCHEMAS:  # HTTPValidationError first: it is what refers to ValidationError
        if f'"#/components/schemas/{name}"' not in json.dumps(doc):
            components["schemas"].pop(name, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`document_errors` of FastAPI's own document at ``/api`` (rewritten once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
