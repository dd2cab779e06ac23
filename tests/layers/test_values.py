"""The one value-conversion rule set (layers.values): URL text, JSON values and file cells agree.

The SQL form (used by the importer on whole staging tables) is checked against the Python form
on the same spellings, on a real PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from gis.errors import InvalidInputError
from gis.io import read_source
from layers.values import ConversionError, cell_text, convert, convert_field, sql_convert, text_series
from tests.conftest import IN_CI, base_url

ACCEPTED: list[tuple[str, Any, Any]] = [
    ("boolean", True, True),
    ("boolean", "true", True),
    ("boolean", " Yes ", True),
    ("boolean", "是", True),
    ("boolean", "有", True),
    ("boolean", "1", True),
    ("boolean", 1, True),
    ("boolean", "否", False),
    ("boolean", "无", False),
    ("boolean", "N", False),
    ("boolean", 0, False),
    ("integer", 12, 12),
    ("integer", 12.0, 12),
    ("integer", "12", 12),
    ("integer", "+12", 12),
    ("integer", "-12.00", -12),
    ("integer", "１２", 12),
    ("integer", "\u300012 ", 12),
    ("number", 1.5, 1.5),
    ("number", "-1.5", -1.5),
    ("number", ".5", 0.5),
    ("number", "2.5e3", 2500.0),
    ("number", "３．５", 3.5),
    ("text", " 村 ", "村"),
    ("text", 12, "12"),
    ("text", 12.0, "12"),
    ("text", 1.5, "1.5"),
    ("date", "2021-06-30", dt.date(2021, 6, 30)),
    ("date", "2021/6/3", dt.date(2021, 6, 3)),
    ("date", "2021-06-30T08:00:00Z", dt.date(2021, 6, 30)),
    ("date", "２０２１-０６-３０", dt.date(2021, 6, 30)),
    ("date", dt.datetime(2021, 6, 30, 8), dt.date(2021, 6, 30)),
    ("timestamp", "2021-06-30", dt.datetime(2021, 6, 30, tzinfo=dt.UTC)),
    ("timestamp", "2021-06-30T08:00:00+08:00", dt.datetime(2021, 6, 30, tzinfo=dt.UTC)),
]

REFUSED: list[tuple[str, Any]] = [
    ("boolean", "maybe"),
    ("boolean", 2),
    ("boolean", ""),
    ("integer", True),
    ("integer", 1.5),
    ("integer", "1.5"),
    ("integer", "1e3"),
    ("integer", "1,234"),
    ("integer", "很多"),
    ("integer", "1" * 19),
    ("number", False),
    ("number", "inf"),
    ("number", "nan"),
    ("number", float("inf")),
    ("number", "1_000"),
    ("number", "1e999"),
    ("text", True),
    ("text", "a\x00b"),
    ("text", ["a"]),
    ("date", "2021-02-30"),
    ("date", "2021-13-01"),
    ("date", "30/06/2021"),
    ("date", 20210630),
    ("timestamp", "yesterday"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), ACCEPTED)
def test_accepted_values_convert(kind: str, value: Any, expected: Any) -> None:
    out = convert(kind, value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(("kind", "value"), REFUSED)
def test_refused_values_raise(kind: str, value: Any) -> None:
    with pytest.raises(ConversionError):
        convert(kind, value)


def test_none_is_no_value_for_every_kind() -> None:
    assert all(convert(k, None) is None for k in ("text", "integer", "number", "boolean", "date", "timestamp"))


def test_field_error_names_field_label_and_layer() -> None:
    with pytest.raises(InvalidInputError) as info:
        convert_field("integer", "很多", field="households", layer_id="urban_villages", label="户数")
    msg = info.value.message
    assert "'households' (户数)" in msg and "urban_villages" in msg and "很多" in msg and "whole number" in msg
    assert info.value.detail == {"property": "households", "layer": "urban_villages"}


def test_cells_become_the_text_the_converters_read() -> None:
    assert cell_text(12.0) == "12" and cell_text(1.25) == "1.25" and cell_text(float("nan")) is None
    assert cell_text(dt.date(2021, 6, 30)) == "2021-06-30" and cell_text({"a": "村"}) == '{"a": "村"}'
    floats = pd.Series([1.0, 2.5, np.nan, 1e16])
    assert text_series(floats).tolist() == [cell_text(v) for v in [1.0, 2.5, None, 1e16]]
    assert text_series(pd.Series([3, 4])).tolist() == ["3", "4"]
    mixed = pd.Series([dt.date(2021, 1, 2), "是", None], dtype=object)
    assert text_series(mixed).tolist() == ["2021-01-02", "是", None]


def test_a_geojson_array_property_is_json_text(tmp_path: Path) -> None:
    """GDAL reads a GeoJSON array of strings or numbers as a list field (numpy arrays): JSON, not Python's repr."""
    path = tmp_path / "arrays.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [114.5, 38.04]},
        "properties": {"标签": ["改造", "停车"], "层数": [1, 2]}}]}, ensure_ascii=False), encoding="utf-8")
    frame = read_source(path).frame
    assert text_series(frame["标签"]).tolist() == ['["改造", "停车"]']
    assert text_series(frame["层数"]).tolist() == ["[1, 2]"]


SQL_SPELLINGS: dict[str, list[str]] = {
    "boolean": ["true", " YES", "是", "有", "否", "无", "1", "0", "t", "maybe", "", "２"],
    "integer": ["12", "+12", "-12.00", "１２", "\u300012 ", "1.5", "1e3", "1,234", "很多", "1" * 18, "1" * 19, "."],
    "number": ["1.5", "-1.5", ".5", "5.", "2.5e3", "３．５", "inf", "nan", "1_000", "1e999", "1e99", "-", "e5"],
    "date": ["2021-06-30", "2021/6/3", "2021.6.3", "2021-06-30T08:00:00Z", "2021-06-30 08:00", "２０２１-０６-３０",
             "2021-02-29", "2024-02-29", "2021-02-30", "2021-13-01", "0000-01-01", "2021-00-10", "30/06/2021",
             "20210630", "2021-06-30x"],
}


def _python(kind: str, text: str) -> Any:
    try:
        return convert(kind, text)
    except ConversionError:
        return None


@pytest.mark.parametrize("kind", sorted(SQL_SPELLINGS))
def test_sql_form_agrees_with_python(kind: str) -> None:
    try:
        conn = psycopg.connect(base_url(), autocommit=True)
    except psycopg.OperationalError as exc:
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL server reachable: {exc}")
    spellings = SQL_SPELLINGS[kind]
    with conn:
        stmt = sql.SQL("SELECT {} FROM unnest(%s::text[]) WITH ORDINALITY AS v(raw, i) ORDER BY i").format(
            sql_convert(kind, sql.SQL("v.raw")))
        got = [row[0] for row in conn.execute(stmt, (spellings,)).fetchall()]
    expected = [_python(kind, s) for s in spellings]
    if kind == "number":  # numeric in SQL (exact, as the column stores it), float in Python
        got = [float(g) if g is not None else None for g in got]
    assert dict(zip(spellings, got, strict=True)) == dict(zip(spellings, expected, strict=True))


NUMBER_COLUMNS: list[pd.Series] = [
    pd.Series([0.0, -0.0, 0.1, -1.5, 2.5e3, 12.0, 1e-05, 1.5e-07, 1e-99, 1e-100, 1e15, 1e16, 1.5e16, 999999999999999.9,
               123456789012345678.0, 1e99, 1e100, 1.7976931348623157e308, float("inf"), float("-inf"), float("nan"),
               None], dtype="float64"),
    pd.Series([0, -7, 12, 2**53 + 1, 10**17, 10**18 - 1, 10**18, -(10**18) + 1, 2**63 - 1, -(2**63)], dtype="int64"),
    pd.Series([1, 2, 3], dtype="int32"),
    pd.Series([0.5, 3.0], dtype="float32"),
]


@pytest.mark.parametrize("kind", ["number", "integer"])
def test_numeric_text_converts_as_sql_convert(kind: str) -> None:
    from layers.values import numeric_text, sql_convert_numeric_text

    assert not numeric_text(pd.Series(["1", "2"])) and not numeric_text(pd.Series([True, False]))
    assert not numeric_text(pd.Series([1, None], dtype="Int64"))
    try:
        conn = psycopg.connect(base_url(), autocommit=True)
    except psycopg.OperationalError as exc:
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL server reachable: {exc}")
    texts: list[str | None] = []
    for column in NUMBER_COLUMNS:
        assert numeric_text(column)
        texts += list(text_series(column))
    with conn:
        stmt = sql.SQL("SELECT {}, {} FROM unnest(%s::text[]) WITH ORDINALITY AS v(raw, i) ORDER BY i").format(
            sql_convert(kind, sql.SQL("v.raw")), sql_convert_numeric_text(kind, sql.SQL("v.raw")))
        rows = conn.execute(stmt, (texts,)).fetchall()
    assert [r[0] for r in rows] == [r[1] for r in rows], list(zip(texts, rows, strict=True))
    assert any(r[0] is None for r, t in zip(rows, texts, strict=True) if t is not None)  # some refused
    assert sum(r[0] is not None for r in rows) > 10
