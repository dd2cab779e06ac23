"""One set of rules for turning outside values into column values: URL text, JSON bodies, file cells.

A value reaches a layer column from three places: the text of a URL parameter (``?households=12``,
a CQL2 literal), a JSON request body (``{"households": 12}``) and a cell of an imported file
(GeoPackage, Shapefile, Excel, CSV). Before this module each place had its own rules (only the
importer took ``是`` as true, only the query took ``"12"`` for a whole number), so the same value
could be accepted by one door and refused by another. Every door now calls this module.

The rules (kind → what is accepted; surrounding whitespace, including the full-width space, is
ignored; full-width digits, point and signs ``０-９ ． － ＋`` count as their ASCII forms, because
spreadsheets typed with a Chinese input method contain them):

``text``
    A string (trimmed), or a number written out (``12`` → ``"12"``, ``1.5`` → ``"1.5"``). Not a
    boolean. NUL characters are refused (PostgreSQL cannot store them).
``integer``
    A whole JSON number (``12``, ``12.0``), or text of at most 18 digits with an optional sign and
    an all-zero fraction (``12``, ``+12``, ``12.00``, ``１２``). Not a boolean, not ``1e3``, not
    ``1,234`` (a thousands separator is too easily a decimal comma).
``number``
    A finite JSON number, or decimal text with an optional exponent of at most two digits
    (``12``, ``-1.5``, ``.5``, ``2.5e3``). Not ``inf``/``nan``, not a boolean.
``boolean``
    A JSON boolean; the numbers 1 and 0; or (case-insensitive) one of :data:`TRUE_WORDS` /
    :data:`FALSE_WORDS`: true/false, t/f, yes/no, y/n, 1/0, 是/否, 有/无.
``date``
    A date or date-time object, or text starting ``YYYY-M-D`` (separators ``-``, ``/`` or ``.``),
    optionally followed by a time after ``T`` or a space (ignored). The day must exist.
``timestamp``
    A date-time object (naive means UTC) or RFC 3339 text; a date alone means its midnight UTC.

``None`` (and, for file cells, an empty or blank cell) is always "no value" and converts to ``None``.

Public API
----------
KINDS, TRUE_WORDS, FALSE_WORDS, EXPECTED
    The kinds, the boolean words and the phrase an error uses for each kind ("a whole number").
ConversionError
    A ``ValueError`` saying which kind a value failed to be (no field name: see ``convert_field``).
convert(kind, value) -> Any
    The Python value of the column, or :class:`ConversionError`.
convert_field(kind, value, *, field, layer_id=None, label=None) -> Any
    Same, but raises :class:`gis.errors.InvalidInputError` (HTTP 400) naming the field (and layer).
parse_instant(text, *, end=False) -> datetime | None
    RFC 3339 instant; a date alone is its first (or, with ``end``, last) microsecond; ``..``/empty → None.
cell_text(value) -> str | None
    A file cell as the text the converters (and :func:`sql_convert`) read: ``12.0`` → ``"12"``.
text_series(values) -> pandas.Series
    :func:`cell_text` over a column, vectorised for the large numeric/text columns of big files.
sql_convert(kind, raw) -> psycopg.sql.Composable
    The same text rules as an SQL expression over a text expression ``raw``: the converted value,
    or NULL where the text does not convert (so an importer converts a whole staging table in one
    statement and reports the NULLs of non-blank cells as errors). Tested to agree with
    :func:`convert` on a list of spellings.
numeric_text(values) -> bool, sql_convert_numeric_text(kind, raw) -> psycopg.sql.Composable
    Whether :func:`text_series` writes a column in the few forms a number column gives (integer
    digits, Python's ``repr`` of a float, ``inf``), and :func:`sql_convert` for such text without
    trimming, full-width digits or pattern matching: the same values, several times cheaper.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from psycopg import sql

from gis.errors import InvalidInputError

__all__ = [
    "EXPECTED",
    "FALSE_WORDS",
    "INTEGER_DIGITS",
    "KINDS",
    "TRUE_WORDS",
    "ConversionError",
    "Kind",
    "cell_text",
    "convert",
    "convert_field",
    "normalize",
    "parse_instant",
    "numeric_text",
    "sql_convert",
    "sql_convert_numeric_text",
    "text_series",
]

Kind = Literal["text", "integer", "number", "boolean", "date", "timestamp"]
KINDS: Final[tuple[str, ...]] = ("text", "integer", "number", "boolean", "date", "timestamp")

TRUE_WORDS: Final[tuple[str, ...]] = ("true", "t", "yes", "y", "1", "是", "有")
FALSE_WORDS: Final[tuple[str, ...]] = ("false", "f", "no", "n", "0", "否", "无")

EXPECTED: Final[dict[str, str]] = {
    "text": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "yes or no (true/false, 是/否, 有/无, 1/0)",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "an RFC 3339 date-time (e.g. 2021-06-30T08:00:00Z)",
}

INTEGER_DIGITS: Final = 18
"""Whole numbers have at most this many digits (fits ``bigint``; a column's own range is checked by its owner)."""

_WHITESPACE: Final = " \t\r\n\u3000\u00a0"
_FULL_WIDTH: Final = "０１２３４５６７８９．－＋"
_ASCII: Final = "0123456789.-+"
_TRANSLATE: Final = str.maketrans(_FULL_WIDTH, _ASCII)

_INTEGER_RE: Final = rf"^[-+]?[0-9]{{1,{INTEGER_DIGITS}}}(\.0*)?$"
_NUMBER_RE: Final = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?$"
_DATE_RE: Final = r"^([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})([T ]|$)"


class ConversionError(ValueError):
    """``value`` is not a valid ``kind``."""

    def __init__(self, kind: str, value: Any) -> None:
        super().__init__(f"{_show(value)} is not {EXPECTED[kind]}")
        self.kind = kind
        self.value = value


def _show(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def normalize(text: str) -> str:
    """Trim whitespace (incl. the full-width space) and turn full-width digits, point and signs into ASCII."""
    return text.strip(_WHITESPACE).translate(_TRANSLATE)


# --------------------------------------------------------------------------- one converter per kind


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip(_WHITESPACE)
    elif isinstance(value, bool):
        raise ConversionError("text", value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    else:
        raise ConversionError("text", value)
    if "\x00" in text:
        raise ConversionError("text", value)
    return text


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError("integer", value)
    if isinstance(value, int):
        out = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ConversionError("integer", value)
        out = int(value)
    elif isinstance(value, str):
        text = normalize(value)
        if not re.fullmatch(_INTEGER_RE, text):
            raise ConversionError("integer", value)
        out = int(text.split(".")[0])
    else:
        raise ConversionError("integer", value)
    if abs(out) >= 10**INTEGER_DIGITS:
        raise ConversionError("integer", value)
    return out


def _to_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ConversionError("number", value)
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        text = normalize(value)
        if not re.fullmatch(_NUMBER_RE, text):
            raise ConversionError("number", value)
        out = float(text)
    else:
        raise ConversionError("number", value)
    if not math.isfinite(out):
        raise ConversionError("number", value)
    return out


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = normalize(value).lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConversionError("boolean", value)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        m = re.match(_DATE_RE, normalize(value))
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                pass
    raise ConversionError("date", value)


def parse_instant(text: str, *, end: bool = False) -> dt.datetime | None:
    """An RFC 3339 instant (naive means UTC); a date alone is its first or, with ``end``, last microsecond.

    ``..`` or empty text is an open end (None). Raises :class:`ConversionError` otherwise.
    """
    t = normalize(text)
    if t in ("", ".."):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            day = dt.date.fromisoformat(t)
            base = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if not end:
                return base
            if day == dt.date.max:
                return dt.datetime.max.replace(tzinfo=dt.UTC)
            return base + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        value = dt.datetime.fromisoformat(t.replace("z", "Z"))
    except ValueError:
        raise ConversionError("timestamp", text) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _to_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        parsed = parse_instant(value)
        if parsed is not None:
            return parsed
    raise ConversionError("timestamp", value)


_CONVERTERS: Final = {
    "text": _to_text,
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "date": _to_date,
    "timestamp": _to_timestamp,
}


def convert(kind: str, value: Any) -> Any:
    """``value`` (URL text, JSON value or file cell) as a ``kind`` column value; None stays None.

    Raises
    ------
    ConversionError
        When the value does not follow the rules of the module docstring.
    """
    if value is None:
        return None
    try:
        return _CONVERTERS[kind](value)
    except (OverflowError, TypeError):
        raise ConversionError(kind, value) from None


def convert_field(kind: str, value: Any, *, field: str, layer_id: str | None = None, label: str | None = None) -> Any:
    """:func:`convert`, with a 400 error that names the field (and its label and layer) on failure."""
    try:
        return convert(kind, value)
    except ConversionError:
        pass
    named = f"'{field}'" + (f" ({label})" if label and label != field else "")
    where = f" of layer '{layer_id}'" if layer_id else ""
    detail: dict[str, object] = {"property": field}
    if layer_id:
        detail["layer"] = layer_id
    raise InvalidInputError(f"Value {_show(value)} for property {named}{where} is not {EXPECTED[kind]}.",
                            detail=detail)


# --------------------------------------------------------------------------- file cells


def cell_text(value: Any) -> str | None:
    """A file cell as text: whole floats lose their ``.0``, dates are ISO, lists/dicts JSON; NaN → None."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return repr(value) if not value.is_integer() or abs(value) >= 1e15 else str(int(value))
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, np.ndarray):  # a GDAL list field (a GeoJSON array of strings or numbers)
        return json.dumps(value.tolist(), ensure_ascii=False)
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)


def text_series(values: pd.Series) -> pd.Series:
    """:func:`cell_text` of every cell (None for missing), vectorised for text, integer and float columns."""
    mask = values.isna().to_numpy()
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        out = values.to_numpy(dtype=object)
        out[mask] = None
        return pd.Series(out, index=values.index, dtype=object)
    if pd.api.types.is_integer_dtype(values.dtype) and not mask.any():
        return pd.Series(values.to_numpy().astype(str).astype(object), index=values.index, dtype=object)
    if pd.api.types.is_float_dtype(values.dtype) and not isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        arr = values.to_numpy(dtype=np.float64)
        res = np.full(len(arr), None, dtype=object)
        whole = ~mask & np.isfinite(arr) & (np.abs(arr) < 1e15)
        whole[whole] = arr[whole] == np.trunc(arr[whole])
        res[whole] = arr[whole].astype(np.int64).astype(str)
        rest = ~mask & ~whole
        if rest.any():
            res[rest] = [repr(v) for v in arr[rest].tolist()]
        return pd.Series(res, index=values.index, dtype=object)
    cells = np.empty(len(values), dtype=object)  # built in numpy: a pandas map/assign turns None into NaN
    cells[:] = [cell_text(v) for v in values.astype(object).tolist()]
    cells[mask] = None
    return pd.Series(cells, index=values.index, dtype=object)


def numeric_text(values: pd.Series) -> bool:
    """Whether :func:`text_series` writes every cell of ``values`` as integer digits or a float's ``repr``.

    True for a numpy integer or float column (a GeoPackage's Integer and Real fields): its text
    is ``-?digits``, Python's shortest ``repr`` of a float (``0.25``, ``1e-05``, ``1.5e+16``,
    ``1000000000000000.0``) or ``inf``/``-inf``, never blank, padded or full-width, so
    :func:`sql_convert_numeric_text` converts it.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    return bool(pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype))


def sql_convert_numeric_text(kind: str, raw: sql.Composable) -> sql.Composable:
    """:func:`sql_convert` of ``kind`` for text written from a number column (:func:`numeric_text`).

    The same value for every such text, without trimming, translating full-width digits or
    matching patterns per cell (several times cheaper on a million rows). ``number``: all but
    ``inf`` and exponents of three digits (the pattern allows two). ``integer``: at most 18
    digits with no exponent, no ``inf`` and no fraction but ``.0`` (``repr`` of a whole float
    from 1e15). Other kinds: :func:`sql_convert`.
    """
    if kind == "number":
        return sql.SQL("CASE WHEN {r} IN ('inf', '-inf') OR {r} LIKE '%%e____' THEN NULL ELSE {r}::numeric END").format(
            r=raw
        )
    if kind == "integer":
        return sql.SQL(
            "CASE WHEN strpos({r}, 'e') = 0 AND {r} NOT IN ('inf', '-inf') "
            "AND (strpos({r}, '.') = 0 OR {r} LIKE '%%.0') AND length(split_part(ltrim({r}, '-'), '.', 1)) <= {d} "
            "THEN trunc({r}::numeric)::bigint END"
        ).format(r=raw, d=sql.Literal(INTEGER_DIGITS))
    return sql_convert(kind, raw)


# --------------------------------------------------------------------------- the same rules in SQL


def _sql_normalize(raw: sql.Composable) -> sql.Composable:
    return sql.SQL("translate(btrim({}, {}), {}, {})").format(
        raw, sql.Literal(_WHITESPACE), sql.Literal(_FULL_WIDTH), sql.Literal(_ASCII))


def sql_convert(kind: str, raw: sql.Composable) -> sql.Composable:
    """An SQL expression converting the text expression ``raw`` by the rules of :func:`convert`; NULL if it fails.

    Never raises in PostgreSQL for any input (impossible dates, huge numbers): the patterns and
    range guards come before every cast. ``timestamp`` is not offered (no file cell needs it).
    """
    r = _sql_normalize(raw)
    if kind == "text":
        return sql.SQL("btrim({}, {})").format(raw, sql.Literal(_WHITESPACE))
    if kind == "integer":
        return sql.SQL("CASE WHEN {r} ~ {re} THEN trunc({r}::numeric)::bigint END").format(
            r=r, re=sql.Literal(_INTEGER_RE))
    if kind == "number":
        return sql.SQL("CASE WHEN {r} ~ {re} THEN {r}::numeric END").format(r=r, re=sql.Literal(_NUMBER_RE))
    if kind == "boolean":
        return sql.SQL("CASE WHEN lower({r}) = ANY({t}) THEN true WHEN lower({r}) = ANY({f}) THEN false END").format(
            r=r, t=sql.Literal(list(TRUE_WORDS)), f=sql.Literal(list(FALSE_WORDS)))
    if kind == "date":
        # y/m/d picked out by the pattern; CASE branches run in order, so make_date only sees a real day
        y, m, d = (sql.SQL("(regexp_match({}, {}))[{}]::int").format(r, sql.Literal(_DATE_RE), sql.Literal(i))
                   for i in (1, 2, 3))
        return sql.SQL(
            "CASE WHEN NOT ({r} ~ {re}) THEN NULL WHEN {y} < 1 OR {m} NOT BETWEEN 1 AND 12 OR {d} < 1 THEN NULL "
            "WHEN {d} > extract(day FROM make_date({y}, {m}, 1) + interval '1 month' - interval '1 day') THEN NULL "
            "ELSE make_date({y}, {m}, {d}) END"
        ).format(r=r, re=sql.Literal(_DATE_RE), y=y, m=m, d=d)
    raise ValueError(f"no SQL conversion for kind {kind!r}")
