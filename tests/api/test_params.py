"""The items parameters parsed into a typed FeatureQuery (api.params), without a server or database.

The HTTP behaviour of the same parsing (through the FastAPI dependency) is covered by
``tests/api/test_ogc.py``; here each rule is checked directly.
"""

from __future__ import annotations

import datetime as dt

import pytest

from api.params import parse_bbox, parse_datetime, parse_items_params
from gis.crs import CRS84, CrsRef
from gis.errors import CRSError, InvalidInputError
from layers.errors import UnknownFieldError
from layers.models import Layer
from layers.query import FeatureQuery, SortKey, encode_cursor
from layers.registry import get_registry


@pytest.fixture(scope="module")
def villages() -> Layer:
    return get_registry().get("urban_villages")


def test_typed_values(villages: Layer) -> None:
    q = parse_items_params(villages, [
        ("bbox", "38.0,114.4,38.1,114.6"), ("bbox-crs", "EPSG:4326"), ("limit", "7"), ("status", "启动"),
        ("households", "１２０"), ("sortby", "-households,name"), ("properties", "name,status_label"),
        ("datetime", "2021-06-30"), ("filter", "start_year >= 2020"), ("f", "json"),
    ])
    assert isinstance(q, FeatureQuery)
    assert q.bbox == (114.4, 38.0, 114.6, 38.1) and q.bbox_crs == CrsRef("epsg", 4326)  # lat,lon order swapped
    assert q.limit == 7 and q.crs is None and q.output_crs == CRS84
    assert q.equals == (("status", "started"), ("households", 120))
    assert q.sortby == (SortKey("households", True), SortKey("name"))
    assert q.properties == ("name", "status")
    assert q.datetime is not None and q.datetime.start == dt.datetime(2021, 6, 30, tzinfo=dt.UTC)
    assert q.filter is not None and q.filter.layer_id == "urban_villages"


@pytest.mark.parametrize(("pairs", "exc", "words"), [
    ([("limit", "1"), ("limit", "2")], InvalidInputError, "given more than once"),
    ([("colour", "red")], InvalidInputError, "Unknown parameter 'colour'. Items accept bbox"),
    ([("limit", "0")], InvalidInputError, "from 1 to 50"),
    ([("limit", "51")], InvalidInputError, "from 1 to 50"),
    ([("bbox-crs", "EPSG:4326")], InvalidInputError, "bbox-crs was given without bbox"),
    ([("filter-lang", "cql2-json")], InvalidInputError, "filter-lang was given without filter"),
    ([("crs", "EPSG:2000")], CRSError, "crs:"),
    ([("bbox", "114.6,38.0,114.4,38.1")], InvalidInputError, "minimum corner must come first"),
    ([("status", "done")], InvalidInputError, "is not a status of layer 'urban_villages'"),
    ([("households", "many")], InvalidInputError, "whole number"),
    ([("properties", "colour")], UnknownFieldError, "no property 'colour'"),
    ([("cursor", "garbage")], InvalidInputError, "cursor is not valid"),
    ([("datetime", "yesterday")], InvalidInputError, "datetime 'yesterday' is not an RFC 3339"),
])
def test_bad_parameters_are_400(villages: Layer, pairs: list[tuple[str, str]], exc: type[Exception],
                                words: str) -> None:
    with pytest.raises(exc) as info:
        parse_items_params(villages, pairs, max_limit=50)
    assert words in str(info.value)


def test_cursor_belongs_to_its_sort_order(villages: Layer) -> None:
    q = parse_items_params(villages, {"sortby": "name"})
    token = encode_cursor(q, '["城中村 7", 7]', backward=True)
    again = parse_items_params(villages, {"sortby": "name", "cursor": token})
    assert again.cursor is not None and again.cursor.values == ("城中村 7", 7) and again.cursor.backward
    with pytest.raises(InvalidInputError, match="cursor is not valid"):
        parse_items_params(villages, {"sortby": "-name", "cursor": token})


def test_single_values() -> None:
    assert parse_bbox("114.4,38.0,0,114.6,38.1,100") == (114.4, 38.0, 114.6, 38.1)
    iv = parse_datetime("2021-01-01/..")
    assert iv.start == dt.datetime(2021, 1, 1, tzinfo=dt.UTC) and iv.end is None
    day = parse_datetime("2021-06-30")
    assert day.end == dt.datetime(2021, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
