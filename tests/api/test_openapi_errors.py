"""The OpenAPI document describes the errors the API really sends: problem+json, never FastAPI's 422.

Before, every operation with parameters was documented as answering ``422`` with FastAPI's
``HTTPValidationError`` body, while :mod:`api.errors` answers invalid input with ``400``
``application/problem+json``; no other error status was documented at all (schemathesis
``status_code_conformance``: 73 of 73 operations answered an undocumented status).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def test_every_operation_documents_problem_details_and_none_fastapis_422(client: Any) -> None:
    doc = client.get("/api").json()
    ops = _operations(doc)
    assert len(ops) > 50
    for path, method, op in ops:
        responses = op["responses"]
        assert responses.get("default") == {"$ref": "#/components/responses/Problem"}, (method, path)
        assert responses.get("422", {}).get("description") != "Validation Error", (method, path)
    media = doc["components"]["responses"]["Problem"]["content"]
    assert list(media) == ["application/problem+json"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    # The import's own 422 (a row report, not a validation error of FastAPI's) stays documented.
    imports = doc["paths"]["/collections/{collection_id}/imports"]["post"]["responses"]
    assert "422" in imports and imports["422"]["description"] != "Validation Error"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/collections/land_parcels/items?limit=abc", 400),
        ("/collections/land_parcels/items?bbox=1,2,3", 400),
        ("/collections/no_such_layer/items", 404),
        ("/collections/land_parcels/items?f=docx", 400),
        ("/admin/users", 401),
    ],
)
def test_error_answers_match_the_documented_problem_schema(client: Any, url: str, status: int) -> None:
    doc = client.get("/api").json()
    r = client.get(url)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    jsonschema.validate(r.json(), doc["components"]["schemas"]["Problem"])
    assert r.json()["status"] == status


def _says_date(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "date" or any(s.get("format") == "date" for s in schema.get("anyOf", []))


def test_every_date_parameter_is_documented_as_a_date(client: Any) -> None:
    doc = client.get("/api").json()
    dated = [(path, p["name"], p["schema"]) for path, _, op in _operations(doc) for p in op.get("parameters", [])
             if p["name"] in ("as_of", "until")]
    assert len(dated) >= 10
    assert [(path, name) for path, name, schema in dated if not _says_date(schema)] == []


@pytest.mark.parametrize(
    "url",
    [
        "/progress",
        "/maps/progress",
        "/viewer/status-as-of?layer=old_compounds",
        "/viewer/history/old_compounds/1",
        "/viewer/target-features?target=compounds_renovated_2021",
        "/collections/old_compounds/ledger",
    ],
)
def test_every_as_of_is_read_by_one_rule(client: Any, url: str) -> None:
    """Out of the plan period or not a date: the same 400 and message everywhere (layers.progress.parse_as_of)."""
    sep = "&" if "?" in url else "?"
    early = client.get(f"{url}{sep}as_of=1900-01-01")
    assert early.status_code == 400, early.text[:300]
    assert "outside the plan period" in early.json()["detail"]
    garbled = client.get(f"{url}{sep}as_of=2021-13-45")
    assert garbled.status_code == 400
    assert garbled.json()["detail"].startswith("as_of must be a date written as YYYY-MM-DD")
