"""Limits with clear 4xx answers (issue 12): CQL2 length and nesting, layer lists, repeated sort keys.

Body size (413), NUL bytes and invalid UTF-8 are in test_access_matrix.py and test_ogc.py; zip
bombs in tests/layers/test_import_broken.py; tile zooms outside a layer's range in test_tiles.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.access import MAX_LAYERS_PER_REQUEST
from layers.query import MAX_FILTER_CHARS

ITEMS = "/collections/old_compounds/items"


@pytest.mark.parametrize(("flt", "says"), [
    ("(" * 30 + "status = 'started'", "unclosed"),  # the parser backtracked for minutes on this
    ("(" * 12 + "status = 'started'" + ")" * 12, "parentheses 12 deep"),
    ("NOT " * 3000 + "status = 'started'", "levels deep"),  # crashed the worker before the limit
])
def test_filters_too_deep_are_400_and_the_server_lives(client: Any, flt: str, says: str) -> None:
    r = client.get(ITEMS, params={"filter": flt})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert says in r.json()["detail"]
    assert client.get(ITEMS, params={"filter": "status = 'started'", "limit": 1}).status_code == 200


def test_deep_cql2_json_in_a_post_body_is_400(client: Any) -> None:
    flt = '{"op":"not","args":[' * 2000 + '{"op":"=","args":[{"property":"status"},"started"]}' + "]}" * 2000
    r = client.get(ITEMS, params={"filter": flt[:16_000], "filter-lang": "cql2-json"})
    assert r.status_code == 400


def test_a_filter_of_the_longest_length_passes_the_input_guard(client: Any) -> None:
    """One limit: a filter the parser accepts is not refused by the guard's per-parameter limit first."""
    longest = "name <> '" + "x" * (MAX_FILTER_CHARS - len("name <> ''")) + "'"
    assert len(longest) == MAX_FILTER_CHARS
    r = client.get(ITEMS, params={"filter": longest, "limit": 1})
    assert r.status_code == 200, r.text[:300]
    r = client.get(ITEMS, params={"filter": longest[:-1] + "x'", "limit": 1})
    assert r.status_code == 400 and f"the limit is {MAX_FILTER_CHARS}" in r.json()["detail"], r.text[:300]


def test_too_many_layer_names_are_400(client: Any) -> None:
    names = ",".join(["parking_sites"] * (MAX_LAYERS_PER_REQUEST + 1))
    r = client.get("/tiles/WebMercatorQuad/tilejson.json", params={"layers": names})
    assert r.status_code == 400 and f"at most {MAX_LAYERS_PER_REQUEST}" in r.json()["detail"]
    square = {"type": "Polygon", "coordinates": [[[114.4, 38.0], [114.6, 38.0], [114.6, 38.1], [114.4, 38.0]]]}
    r = client.post("/query/within", json={"geometry": square, "layers": ["parking_sites"] * 100_000})
    assert r.status_code == 400 and f"at most {MAX_LAYERS_PER_REQUEST}" in r.json()["detail"]
    ok = client.get("/tiles/WebMercatorQuad/tilejson.json", params={"layers": "parking_sites,parking_sites"})
    assert ok.status_code == 200 and [v["id"] for v in ok.json()["vector_layers"]] == ["parking_sites"]


def test_a_sort_key_repeated_many_times_is_one_key(client: Any) -> None:
    once = client.get(ITEMS, params={"sortby": "-name", "limit": 5})
    many = client.get(ITEMS, params={"sortby": ",".join(["-name"] * 2000), "limit": 5})
    assert many.status_code == 200
    assert [f["id"] for f in many.json()["features"]] == [f["id"] for f in once.json()["features"]]
