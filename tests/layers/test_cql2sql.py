"""CQL2 → SQL translation and the WHERE builder, without a database.

The translator and builder only compose ``psycopg.sql``; rendering with ``as_string(None)`` shows
the SQL a request would run and the bound values, so the rules (bare geometry column, bound
literals, coercion to the column's kind, axis order of ``filter-crs``) are checked here fast.
The same filters run against PostGIS in ``tests/api/test_ogc_crs_filter.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from gis.crs import CrsRef
from gis.errors import InvalidInputError
from layers.errors import UnknownFieldError
from layers.models import Layer
from layers.query import Binder, FeatureQuery, build_where, filter_sql, parse_filter, where_clause
from layers.registry import get_registry


@pytest.fixture(scope="module")
def compounds() -> Layer:
    return get_registry().get("old_compounds")


def render(layer: Layer, text: str, lang: str = "cql2-text", crs: CrsRef | None = None) -> tuple[str, dict[str, Any]]:
    flt = parse_filter(layer, text, lang) if crs is None else parse_filter(layer, text, lang, crs)
    b = Binder()
    return filter_sql(flt, layer, b).as_string(None), b.params


def test_comparison_binds_the_value_with_the_column_cast(compounds: Layer) -> None:
    text, params = render(compounds, "households > 500")
    assert text == '("t"."households" > %(q0)s::bigint)'
    assert params == {"q0": 500}


def test_text_literal_is_coerced_to_the_column_kind(compounds: Layer) -> None:
    text, params = render(compounds, "households = '１２'")  # full-width digits, as typed with a Chinese IME
    assert params == {"q0": 12} and "::bigint" in text


def test_like_pattern_is_bound_as_written_while_values_are_trimmed(compounds: Layer) -> None:
    text, params = render(compounds, "name LIKE '% 号院 ' AND name = ' 一号院 '")
    assert '"t"."name" LIKE %(q0)s::text' in text and params == {"q0": "% 号院 ", "q1": "一号院"}
    assert render(compounds, "status LIKE '已开工'")[1] == {"q0": "started"}


def test_status_by_chinese_label_becomes_the_code(compounds: Layer) -> None:
    _, params = render(compounds, "status = '已开工'")
    assert params == {"q0": "started"}


def test_values_never_enter_the_sql_text(compounds: Layer) -> None:
    evil = "x'); DROP TABLE renewal.old_compounds; --"
    text, params = render(compounds, "name = '" + evil.replace("'", "''") + "'")
    assert "DROP" not in text and params == {"q0": evil}


def test_text_and_json_forms_translate_alike(compounds: Layer) -> None:
    as_text = render(compounds, "status IN ('started', 'completed') AND built_year BETWEEN 1980 AND 1990")
    as_json = render(compounds, {  # type: ignore[arg-type]
        "op": "and", "args": [
            {"op": "in", "args": [{"property": "status"}, ["started", "completed"]]},
            {"op": "between", "args": [{"property": "built_year"}, 1980, 1990]},
        ]}, "cql2-json")
    assert as_text == as_json
    assert as_text[1] == {"q0": "started", "q1": "completed", "q2": 1980, "q3": 1990}


def test_spatial_filter_keeps_the_geometry_column_bare(compounds: Layer) -> None:
    text, params = render(compounds, "S_INTERSECTS(geom, POINT(114.5 38.0))")
    assert text.startswith('ST_Intersects("t"."geom", ST_SetSRID(ST_GeomFromWKB(decode(%(q0)s')
    assert isinstance(params["q0"], str) and "ST_FlipCoordinates" not in text


def test_latitude_first_filter_crs_flips_the_literal(compounds: Layer) -> None:
    text, _ = render(compounds, "S_INTERSECTS(geom, POINT(38.0 114.5))", crs=CrsRef("epsg", 4490))
    assert "ST_FlipCoordinates(ST_GeomFromWKB" in text and '"t"."geom", ' in text


def test_projected_filter_crs_is_transformed_to_storage(compounds: Layer) -> None:
    text, _ = render(compounds, "S_INTERSECTS(geom, POINT(4210000 38500000))", crs=CrsRef("epsg", 4547))
    assert "ST_Transform(ST_SetSRID(ST_FlipCoordinates(" in text and text.endswith("4547), 4490))")


def test_dwithin_adds_an_index_box_around_the_literal(compounds: Layer) -> None:
    text, params = render(compounds, "S_DWITHIN(geom, POINT(114.5 38.0), 2, kilometers)")
    assert '"t"."geom" && ST_Expand(' in text and "ST_DWithin(" in text
    assert [v for v in params.values() if isinstance(v, float)] == [2000.0, 2000.0, 2000.0]


def test_temporal_year_field_is_a_whole_year(compounds: Layer) -> None:
    text, params = render(compounds, "T_INTERSECTS(renovation_year, INTERVAL('2021-01-01', '2021-12-31'))")
    assert "make_timestamptz(\"t\".\"renovation_year\"::int, 1, 1" in text
    assert params["q0"] == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "lang", "exc", "words"), [
    ("colour = 'red'", "cql2-text", UnknownFieldError, "no property 'colour'"),
    ("households = 'many'", "cql2-text", InvalidInputError, "whole number"),
    ("name LIKE 5", "cql2-text", InvalidInputError, "LIKE needs a text pattern"),
    ("households LIKE '5%'", "cql2-text", InvalidInputError, "LIKE compares text"),
    ("geom = 5", "cql2-text", InvalidInputError, "is a geometry"),
    ("status = ", "cql2-text", InvalidInputError, "could not be parsed"),
    ('{"op": "=", "args": [', "cql2-json", InvalidInputError, "not valid JSON"),
    ("households > 1", "sql", InvalidInputError, "filter-lang 'sql' is not supported"),
    ("T_AFTER(built_year, '2020-01-01')", "cql2-text", InvalidInputError, "not a temporal property"),
    ("S_INTERSECTS(geom, ENVELOPE(114.4, 114.6, 38.1, 38.0))", "cql2-text", InvalidInputError,
     "write BBOX(west, south, east, north)"),
])
def test_bad_filters_are_400_with_a_reason(compounds: Layer, text: str, lang: str, exc: type[Exception],
                                           words: str) -> None:
    with pytest.raises(exc) as info:
        parse_filter(compounds, text, lang)
    assert words in str(info.value)


def test_where_is_built_once_with_its_own_placeholders(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, bbox=(114.4, 38.0, 114.6, 38.1), equals=(("status", "started"),),
                     filter=parse_filter(compounds, "households > 500"))
    where = build_where(q)
    text = where.cond.as_string(None)
    assert text.count("%(w") == len(where.params) == 6
    assert 'ST_Intersects("t"."geom", ST_SetSRID(ST_MakeEnvelope(' in text
    assert '("t"."status" = %(w4)s::text)' in text and '("t"."households" > %(w5)s::bigint)' in text
    # the same condition through a caller's binder differs only in placeholder names
    b = Binder()
    assert where_clause(q, b).as_string(None).replace("%(q", "%(w") == text and b.params.keys() != where.params.keys()
    assert where.with_params({"q0": 1}) == {**where.params, "q0": 1}


def test_nothing_narrows_means_true(compounds: Layer) -> None:
    assert build_where(FeatureQuery(layer=compounds)).cond.as_string(None) == "TRUE"


# The cql2 parser backtracks exponentially on nested parentheses and recurses on the thread's stack
# (2,000 '(' or 4,095 NOT crashed the process before these limits; 30 unclosed '(' ran for minutes).
_NESTED_NOT_JSON = '{"op":"not","args":[' * 40 + '{"op":"=","args":[{"property":"status"},"started"]}' + "]}" * 40


@pytest.mark.parametrize(("text", "lang", "says"), [
    ("(" * 30 + "status = 'started'", "cql2-text", "30 '(' unclosed"),
    ("status = 'started')", "cql2-text", "')' without a matching '('"),
    ("(" * 11 + "status = 'started'" + ")" * 11, "cql2-text", "parentheses 11 deep"),
    ("(" * 10 + "a = 1 AND (" * 10 + "b = " + ")" * 20, "cql2-text", "parentheses 20 deep"),
    ("NOT " * 4000 + "status = 'started'", "cql2-text", "at most 32"),
    (_NESTED_NOT_JSON, "cql2-json", "at most 32"),
    ("[" * 5000 + "]" * 5000, "cql2-json", "at most 32"),
    ("status = '" + "x" * 17_000 + "'", "cql2-text", "the limit is 16384"),
])
def test_filters_too_deep_or_long_are_400_not_a_crash(compounds: Layer, text: str, lang: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        parse_filter(compounds, text, lang)


def test_deep_mapping_filter_from_a_json_body_is_refused_before_encoding(compounds: Layer) -> None:
    tree: dict[str, Any] = {"op": "=", "args": [{"property": "status"}, "started"]}
    for _ in range(3000):  # json.dumps of this would hit Python's recursion limit
        tree = {"op": "not", "args": [tree]}
    with pytest.raises(InvalidInputError, match="at most 32"):
        parse_filter(compounds, tree, "cql2-json")


@pytest.mark.parametrize("text", [
    "(" * 5 + "status = 'started' AND (" * 5 + "status = 'started'" + ")" * 10,  # 10 deep: the limit
    "S_INTERSECTS(geom, MULTIPOLYGON(((114.4 38.0, 114.5 38.0, 114.5 38.1, 114.4 38.0))))",
    "name = '((((((((((((((('",  # parentheses in a string literal do not count
    " OR ".join(["((status = 'started'))"] * 50),
])
def test_filters_within_the_limits_still_parse(compounds: Layer, text: str) -> None:
    assert parse_filter(compounds, text).expr
