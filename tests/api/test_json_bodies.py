"""Every route that takes a JSON object reads it with api.body: the same 4xx, never a 500.

The bodies are sent without a ``Content-Type`` (the editing routes take that as JSON), so the
input guard middleware, which checks bodies declared as JSON, does not answer first: what is
tested is the route's own reader. With a JSON ``Content-Type`` the answer must be a 4xx too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.body import MAX_JSON_BODY_BYTES
from api.routers.session import SIGN_IN_BODY
from tests.api.edit_support import auth, make_client

ROUTES = {
    "create feature": ("/collections/parking_sites/items", MAX_JSON_BODY_BYTES),
    "propose feature": ("/collections/old_compounds/submissions", MAX_JSON_BODY_BYTES),
    "approve": ("/submissions/999999/approve", MAX_JSON_BODY_BYTES),
    "sign in": ("/auth/session", SIGN_IN_BODY.max_bytes),
}
BODIES = {
    "not JSON": (lambda limit: b"{type: Feature", 400, "not valid JSON"),
    "not UTF-8": (lambda limit: '{"name": "中文路"}'.encode("gbk"), 400, "not valid UTF-8"),
    "array": (lambda limit: b'["not", "an", "object"]', 400, "JSON an array, not an object"),
    "number": (lambda limit: b"42", 400, "not an object"),
    "too large": (lambda limit: b'{"name": "' + b"x" * limit + b'"}', 413, "may be at most"),
}


@pytest.fixture(scope="module")
def bc(edit_db: str) -> Iterator[TestClient]:
    with make_client(edit_db, review_required=True) as c:
        yield c


@pytest.mark.parametrize("content_type", [None, "application/json"])
@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("route", list(ROUTES))
def test_bad_json_bodies_are_4xx_problems(bc: TestClient, keys: dict[str, str], route: str, body: str,
                                          content_type: str | None) -> None:
    path, limit = ROUTES[route]
    make, status, words = BODIES[body]
    headers = {} if route == "sign in" else auth(keys, "admin")
    if content_type:
        headers["Content-Type"] = content_type
    r = bc.post(path, content=make(limit), headers=headers)
    assert r.headers["content-type"].startswith("application/problem+json"), (r.status_code, r.text[:300])
    problem = r.json()
    if content_type is None or body != "not UTF-8":  # else the input guard may answer first, with its own words
        assert (r.status_code, problem["status"]) == (status, status), r.text[:300]
        assert words in problem["detail"], problem["detail"]
    else:
        assert r.status_code == 400 and "UTF-8" in problem["detail"], r.text[:300]


def test_empty_body_where_it_means_nothing_to_say(bc: TestClient, keys: dict[str, str]) -> None:
    r = bc.post("/collections/parking_sites/items", content=b"", headers=auth(keys, "admin"))
    assert r.status_code == 400 and "empty" in r.json()["detail"], r.text
    r = bc.post("/auth/session", content=b"")  # read as {}: the sign-in then asks for a name and password
    assert r.status_code == 400 and "user name and password" in r.json()["detail"], r.text
    r = bc.post("/submissions/999999/approve", content=b"", headers=auth(keys, "admin"))
    assert r.status_code == 404, r.text  # an approval without a comment gets as far as the submission


def test_non_json_media_type_on_editing_is_415(bc: TestClient, keys: dict[str, str]) -> None:
    r = bc.post("/collections/parking_sites/items", content=b"code=1",
                headers={**auth(keys, "admin"), "Content-Type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.json()["detail"], r.text
