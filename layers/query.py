"""A typed, reusable feature query: OGC API Features items parameters and CQL2, as parameterised SQL.

Used by the OGC API (``/collections/{id}/items``), the exporter (``renewal export --filter``,
``items?f=gpkg``) and the editing endpoints, so a filter means the same thing everywhere.
Every value ends up as a bound parameter (named placeholders ``%(q0)s``, ``%(q1)s`` ... held by a
:class:`Binder`); identifiers come from the layer registry only. The geometry column stays
bare in ``WHERE`` (query geometries are transformed to EPSG:4490), so the GiST index is used.

Public API
----------
SUPPORTED_CRS
    Output/bbox/filter CRSs: CRS84, EPSG:4326, EPSG:4490, EPSG:4547, EPSG:3857 (OGC URIs).
FeatureQuery
    The parsed request (layer, bbox, datetime, equality filters, CQL2 filter, properties,
    sortby, limit, cursor, output CRS). Immutable; build it with :func:`parse_items_params`
    or directly (``FeatureQuery(layer=..., filter=parse_filter(...))``).
parse_items_params(layer, params, *, default_limit, max_limit, extra_params=()) -> FeatureQuery
    Validate OGC items query parameters (``bbox``, ``bbox-crs``, ``datetime``, ``limit``,
    ``cursor``, ``properties``, ``sortby``, ``crs``, ``filter``, ``filter-lang``, ``filter-crs``
    and ``<property>=<value>`` equality filters). Raises :class:`gis.errors.InvalidInputError`
    (HTTP 400) with a message for a GIS officer on any bad input, including unknown parameters.
parse_filter(layer, text, lang="cql2-text", crs=CRS84) -> Filter
    Parse CQL2 text or JSON (via the maintained ``cql2`` parser) into a :class:`Filter`
    (an unbound expression tree checked against the layer's queryables).
parse_crs_param(text) -> CrsRef
    One of :data:`SUPPORTED_CRS`, else :class:`gis.errors.CRSError` (400).
parse_bbox(text, crs=CRS84) -> tuple[float, float, float, float]
where_clause(query, binder) -> sql.Composable
    The ``WHERE`` condition (without the keyset cursor) for ``FROM <table> AS t``. Columns are
    qualified with the alias ``t``. Example (exporter)::

        b = Binder()
        cond = where_clause(q, b)
        cur.execute(sql.SQL("SELECT t.* FROM {} AS t WHERE {}").format(table_sql(layer), cond), b.params)
order_by(query) -> sql.Composable
    The ``ORDER BY`` list matching ``sortby`` (stable: ``t.id`` last).
feature_sql(layer, binder, crs=CRS84, properties=None) -> sql.Composable
    A text expression producing one GeoJSON Feature from the row ``t`` (geometry in ``crs``,
    properties incl. ``status_label``). Build it into your own SELECT.
one_feature_sql(layer, feature_id, crs=CRS84) -> tuple[sql.Composed, dict]
    ``SELECT`` returning one row ``(feature_text,)`` for ``t.id = feature_id`` (or none).
page_sql(query, binder) -> sql.Composed
    ``SELECT`` returning one row: ``(features_json_array_text, fetched, first_key, last_key)``.
fetch_page(conn, query) -> Page (async)
    Run :func:`page_sql` (and a count when cheap) and return features text, numberReturned,
    numberMatched (or None) and next/prev cursors.
fetch_feature(conn, layer, feature_id, crs=CRS84) -> str (async)
    One feature's GeoJSON text, or :class:`FeatureNotFoundError` (404).
table_sql(layer) -> sql.Composable
    ``"renewal"."<table>"``.
column_kinds(layer) -> dict[str, str]
    Every queryable property and its kind (text/integer/number/date/boolean/timestamp).
geometry_sql(crs, column) -> tuple[sql.Composable, int]
    The output geometry expression in ``crs`` (axis order per the CRS) and decimal digits.

Notes
-----
* ``datetime`` is matched against the layer's ``temporal: true`` fields: one year field is a
  calendar-year instant-interval; two (e.g. ``start_year``/``target_year``) are the feature's
  interval; with none, ``updated_at`` is used.
* CRS84 and EPSG:4326 are treated as CGCS2000 (EPSG:4490) without a datum shift: PROJ itself
  has only a ballpark (identity) transformation between them, and they agree to centimetres.
* ``numberMatched`` is exact and counted only when the table is small (estimated rows at or
  below :data:`COUNT_MAX_ROWS`); otherwise it is omitted (the standard allows that) so no page
  of a million-row layer pays for a ``count(*)``.
* Paging is keyset: the opaque ``cursor`` holds the sort key values of the page boundary and
  the direction, never an OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Final

import cql2
import numpy as np
import shapely
import shapely.geometry
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus

from gis.crs import CRS84, STORAGE, CrsRef, parse_crs, proj_crs, transform_coords
from gis.errors import CRSError, InvalidInputError, NotFoundError
from layers.errors import UnknownFieldError
from layers.models import Layer
from layers.values import convert_field

__all__ = [
    "COUNT_MAX_ROWS",
    "SUPPORTED_CRS",
    "Binder",
    "FeatureNotFoundError",
    "FeatureQuery",
    "Filter",
    "Page",
    "SortKey",
    "column_kinds",
    "feature_sql",
    "fetch_feature",
    "fetch_one_serial",
    "fetch_page",
    "geometry_sql",
    "one_feature_sql",
    "order_by",
    "page_sql",
    "parse_bbox",
    "parse_crs_param",
    "parse_datetime",
    "parse_filter",
    "parse_items_params",
    "table_sql",
    "where_clause",
]

COUNT_MAX_ROWS: Final = 100_000
"""Count ``numberMatched`` exactly only for tables with at most this many (estimated) rows."""
FILTER_FIRST_MAX_ROWS: Final = 100_000
"""Collect-then-sort when the planner expects at most this many matches (see :func:`order_by`)."""

SUPPORTED_CRS: Final[tuple[CrsRef, ...]] = (
    CRS84,
    CrsRef("epsg", 4326),
    CrsRef("epsg", 4490),
    CrsRef("epsg", 4547),
    CrsRef("epsg", 3857),
)
_GEOGRAPHIC_SRIDS: Final = (4326, 4490)
_GEOM_NAMES: Final = ("geom", "geometry")
_TIMESTAMP_COLUMNS: Final = ("created_at", "updated_at")
ITEMS_PARAMS: Final = frozenset(
    {"bbox", "bbox-crs", "datetime", "limit", "cursor", "properties", "sortby", "crs", "filter", "filter-lang",
     "filter-crs", "f"}
)


class FeatureNotFoundError(NotFoundError):
    """No feature with this id in the layer."""

    title = "Feature not found"

    def __init__(self, layer_id: str, feature_id: object) -> None:
        super().__init__(
            f"Layer '{layer_id}' has no feature with id '{feature_id}'.",
            detail={"layer": layer_id, "featureId": str(feature_id)},
        )


# --------------------------------------------------------------------------- binding


class Binder:
    """Collects bound parameter values and hands out named placeholders (``%(q0)s``, ...).

    One binder per statement; pass ``binder.params`` to ``cursor.execute``. The prefix keeps
    these names apart from a caller's own placeholders.
    """

    def __init__(self, prefix: str = "q") -> None:
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def __call__(self, value: Any, cast: str | None = None) -> sql.Composable:
        """A placeholder for ``value``, optionally with a ``::cast`` (cast names are internal constants)."""
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError("Text values cannot contain the NUL character (\\0).")
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        ph = sql.Placeholder(name)
        if cast is None:
            return ph
        return sql.SQL("{}::{}").format(ph, sql.SQL(cast))


# --------------------------------------------------------------------------- layer columns

_KIND_OF_FIELD: Final = {"text": "text", "integer": "integer", "number": "number", "date": "date",
                         "boolean": "boolean"}
_CAST_OF_KIND: Final = {"text": "text", "integer": "bigint", "number": "double precision", "date": "date",
                        "boolean": "boolean", "timestamp": "timestamptz"}


def column_kinds(layer: Layer) -> dict[str, str]:
    """Every queryable/sortable property of the layer and its kind, in display order (``id`` first)."""
    kinds: dict[str, str] = {"id": "integer", "code": "text", "name": "text", "district_code": "text"}
    if layer.has_status:
        kinds["status"] = "text"
    for f in layer.fields:
        kinds[f.name] = _KIND_OF_FIELD[f.type]
    measure = layer.measure_field
    if measure and measure not in kinds:
        kinds[measure] = "number"
    kinds["created_at"] = "timestamp"
    kinds["updated_at"] = "timestamp"
    return kinds


def output_properties(layer: Layer) -> list[str]:
    """The properties a GeoJSON feature carries by default (everything but ``id``)."""
    return [name for name in column_kinds(layer) if name != "id"]


def table_sql(layer: Layer) -> sql.Composable:
    """The qualified table name."""
    return sql.Identifier(layer.schema_name, layer.table)


def _col(name: str) -> sql.Composable:
    return sql.Identifier("t", name)


def _unknown(layer: Layer, name: str) -> UnknownFieldError:
    return UnknownFieldError(layer.id, name, [n for n in column_kinds(layer)] + ["geom"])


# --------------------------------------------------------------------------- CRS, bbox, datetime


def parse_crs_param(text: str, what: str = "crs") -> CrsRef:
    """Parse a ``crs``/``bbox-crs``/``filter-crs`` value; only :data:`SUPPORTED_CRS` are accepted.

    Raises
    ------
    CRSError
        For an unknown or unsupported CRS (HTTP 400).
    """
    try:
        ref = parse_crs(text)
    except CRSError as exc:
        raise CRSError(f"{what}: {exc.message} Supported here: {_supported_list()}.") from None
    if ref not in SUPPORTED_CRS:
        raise CRSError(f"{what}: '{text}' is not offered by this service. Supported: {_supported_list()}.")
    return ref


def _supported_list() -> str:
    return ", ".join(c.uri for c in SUPPORTED_CRS)


@lru_cache(maxsize=32)
def axis_swapped(ref: CrsRef) -> bool:
    """Whether the CRS's authority axis order puts north first (EPSG:4326, 4490 lat/lon; EPSG:4547 N/E).

    OGC API Features Part 2 requires coordinates in the CRS's own axis order for ``crs``,
    ``bbox-crs`` and ``filter-crs`` (CRS84 and EPSG:3857 are east first).
    """
    if ref.kind != "epsg" or ref.epsg is None:
        return False
    axes = proj_crs(ref.epsg).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def _srid(ref: CrsRef) -> int:
    """The PostGIS SRID for a supported CRS; CRS84 is lon/lat WGS84."""
    return 4326 if ref.kind == "crs84" else int(ref.epsg or 4326)


def _storage_geom(geom: sql.Composable, ref: CrsRef) -> sql.Composable:
    """An expression giving ``geom`` (a geometry in ``ref``'s axis order) in EPSG:4490 lon/lat."""
    srid = _srid(ref)
    if axis_swapped(ref):
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    if srid in _GEOGRAPHIC_SRIDS:
        # CGCS2000 and WGS84 are the same to centimetres; PROJ only has a ballpark (identity) step.
        return sql.SQL("ST_SetSRID({}, 4490)").format(geom)
    return sql.SQL("ST_Transform(ST_SetSRID({}, {}), 4490)").format(geom, sql.Literal(srid))


def geometry_sql(crs: CrsRef, column: sql.Composable | None = None) -> tuple[sql.Composable, int]:
    """The output geometry expression for ``crs`` with its axis order, and the decimals to keep.

    Degrees keep 7 decimals (about 1 cm), metres 3 (1 mm).
    """
    col = column if column is not None else _col("geom")
    srid = _srid(crs)
    expr: sql.Composable = col
    if srid not in _GEOGRAPHIC_SRIDS:
        expr = sql.SQL("ST_Transform({}, {})").format(col, sql.Literal(srid))
    if axis_swapped(crs):
        expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
    return expr, 7 if srid in _GEOGRAPHIC_SRIDS else 3


def parse_bbox(text: str, crs: CrsRef = CRS84) -> tuple[float, float, float, float]:
    """Parse ``minx,miny,maxx,maxy`` (or 6 numbers with heights, which are ignored) in ``crs``'s axis order.

    Returns the box as (min lon/x, min lat/y, max lon/x, max lat/y) in ``crs`` units.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise InvalidInputError(
            f"bbox '{text}' is not four comma-separated numbers (minx,miny,maxx,maxy), e.g. bbox=114.4,38.0,114.6,38.1."
        ) from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(n) for n in nums):
        raise InvalidInputError(
            f"bbox '{text}' must have 4 (or 6) finite numbers: minx,miny,maxx,maxy, e.g. bbox=114.4,38.0,114.6,38.1."
        )
    a, b, c, d = nums
    if axis_swapped(crs):
        a, b, c, d = b, a, d, c  # north-first order (lat,lon or N,E) -> east-first
    if a > c or b > d:
        raise InvalidInputError(f"bbox '{text}': the minimum corner must come first (minx <= maxx and miny <= maxy).")
    if crs.kind == "epsg" and crs.epsg not in _GEOGRAPHIC_SRIDS:
        xs, ys = transform_coords(crs, STORAGE, [a, c, a, c], [b, b, d, d])
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()) or not (
                (np.abs(xs) <= 180).all() and (np.abs(ys) <= 90).all()):
            raise InvalidInputError(f"bbox '{text}' is outside the valid area of {crs.label}.")
    if crs.kind == "crs84" or crs.epsg in _GEOGRAPHIC_SRIDS:
        if not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
            raise InvalidInputError(
                f"bbox '{text}' is outside longitude -180..180 / latitude -90..90 for {crs.label}"
                + (" (this CRS is latitude first)." if axis_swapped(crs) else ".")
            )
    return a, b, c, d


@dataclass(frozen=True)
class TimeInterval:
    """A closed interval of instants; None means open ended."""

    start: dt.datetime | None
    end: dt.datetime | None


def _parse_instant(text: str, *, end: bool) -> dt.datetime | None:
    t = text.strip()
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
        raise InvalidInputError(
            f"datetime '{text}' is not an RFC 3339 date or date-time (e.g. 2021-06-30 or 2021-06-30T00:00:00Z)."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_datetime(text: str) -> TimeInterval:
    """Parse the OGC ``datetime`` parameter: an instant, or ``start/end`` with ``..`` or empty for open ends.

    A date-only instant means that whole day.
    """
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise InvalidInputError(f"datetime '{text}' must be an instant or one interval 'start/end'.")
        start = _parse_instant(parts[0], end=False)
        end = _parse_instant(parts[1], end=True)
        if start is None and end is None:
            raise InvalidInputError(f"datetime '{text}': at least one end of the interval must be given.")
        if start is not None and end is not None and start > end:
            raise InvalidInputError(f"datetime '{text}': the start is after the end.")
        return TimeInterval(start, end)
    start = _parse_instant(text, end=False)
    if start is None:
        raise InvalidInputError("datetime is empty; give an instant such as 2021-06-30 or an interval 2021-01-01/..")
    end = _parse_instant(text, end=True) if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text) else start
    return TimeInterval(start, end)


# --------------------------------------------------------------------------- value coercion


def _coerce(layer: Layer, prop: str, kind: str, value: Any) -> Any:
    """A literal (URL text or JSON value) as the property's Python value by :mod:`layers.values`' rules, or a 400."""
    return convert_field(kind, value, field=prop, layer_id=layer.id, label=layer.labels.get(prop))


def _status_value(layer: Layer, value: str) -> str:
    """A status code from a code, Chinese label, English label or alias (as ledgers write it)."""
    assert layer.lifecycle is not None
    code = layer.lifecycle.by_label().get(value.strip().lower())
    return code if code is not None else value


# --------------------------------------------------------------------------- CQL2


@dataclass(frozen=True)
class Filter:
    """A parsed, validated CQL2 expression (CQL2-JSON form) plus the CRS of its geometry literals."""

    layer_id: str
    expr: Any
    crs: CrsRef = CRS84

    def to_sql(self, layer: Layer, binder: Binder) -> sql.Composable:
        """The boolean SQL condition, values bound through ``binder``."""
        return _CqlTranslator(layer, binder, self.crs).boolean(self.expr)


def parse_filter(layer: Layer, text: str | Mapping[str, Any], lang: str = "cql2-text",
                 crs: CrsRef = CRS84) -> Filter:
    """Parse and validate a CQL2 filter against the layer's queryables.

    Parameters
    ----------
    layer : Layer
        The layer whose properties the filter may name.
    text : str or mapping
        CQL2 text, or CQL2 JSON (a JSON string or an already-decoded mapping).
    lang : str
        ``cql2-text`` or ``cql2-json``.
    crs : CrsRef
        CRS of geometry literals (``filter-crs``); axis order per the CRS.

    Raises
    ------
    InvalidInputError
        Unparseable CQL2, an unknown property, an unsupported operator or a bad literal (400).
    """
    lang_norm = lang.strip().lower()
    try:
        if lang_norm == "cql2-text":
            if not isinstance(text, str):
                raise InvalidInputError("filter-lang=cql2-text needs the filter as text.")
            if not text.strip():
                raise InvalidInputError("filter is empty.")
            expr = cql2.parse_text(text).to_json()
        elif lang_norm == "cql2-json":
            if isinstance(text, str):
                try:
                    decoded = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"filter is not valid JSON (cql2-json): {exc.msg} at position {exc.pos}.") \
                        from None
            else:
                decoded = dict(text)
            if not isinstance(decoded, dict | bool):
                raise InvalidInputError("A cql2-json filter must be a JSON object such as "
                                        '{"op": "=", "args": [{"property": "status"}, "started"]}.')
            expr = cql2.parse_json(json.dumps(decoded)).to_json()
        else:
            raise InvalidInputError(f"filter-lang '{lang}' is not supported; use cql2-text or cql2-json.")
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise InvalidInputError(f"The CQL2 filter could not be parsed: {msg[:400]}",
                                detail={"layer": layer.id}) from None
    flt = Filter(layer.id, expr, crs)
    flt.to_sql(layer, Binder())  # validate properties, operators and literals now (raises 400)
    return flt


_CMP: Final = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL: Final = {"s_intersects": "ST_Intersects", "s_within": "ST_Within", "s_contains": "ST_Contains",
                   "s_equals": "ST_Equals", "s_disjoint": "ST_Disjoint", "s_touches": "ST_Touches",
                   "s_crosses": "ST_Crosses", "s_overlaps": "ST_Overlaps"}
_UNITS: Final = {"meters": 1.0, "metres": 1.0, "meter": 1.0, "metre": 1.0, "m": 1.0,
                 "kilometers": 1000.0, "kilometres": 1000.0, "km": 1000.0}
_ARITH: Final = {"+": "+", "-": "-", "*": "*", "/": "/"}


@dataclass(frozen=True)
class _Val:
    """A translated scalar operand: SQL, its kind (or None for an untyped literal) and the literal value."""

    sql: sql.Composable | None
    kind: str | None
    literal: Any = None
    is_literal: bool = False
    prop: str | None = None


class _CqlTranslator:
    """CQL2-JSON (as produced by the ``cql2`` parser) to a psycopg SQL condition."""

    def __init__(self, layer: Layer, binder: Binder, crs: CrsRef) -> None:
        self.layer = layer
        self.b = binder
        self.crs = crs
        self.kinds = column_kinds(layer)

    def fail(self, message: str) -> InvalidInputError:
        return InvalidInputError(f"CQL2 filter: {message}", detail={"layer": self.layer.id})

    # ---- booleans
    def boolean(self, e: Any) -> sql.Composable:
        if isinstance(e, bool):
            return sql.SQL("TRUE" if e else "FALSE")
        if not isinstance(e, dict) or "op" not in e:
            raise self.fail(f"expected a condition, found {self._show(e)}.")
        op = str(e["op"]).lower()
        args = e.get("args", [])
        if not isinstance(args, list):
            raise self.fail(f"'{op}' needs a list of arguments.")
        if op in ("and", "or"):
            if len(args) < 2:
                raise self.fail(f"'{op}' needs at least two conditions.")
            joiner = sql.SQL(" AND " if op == "and" else " OR ")
            return sql.SQL("({})").format(joiner.join(self.boolean(a) for a in args))
        if op == "not":
            self._arity(op, args, 1)
            return sql.SQL("(NOT {})").format(self.boolean(args[0]))
        if op in _CMP:
            self._arity(op, args, 2)
            left, right = self._pair(args[0], args[1])
            return sql.SQL("({} {} {})").format(left, sql.SQL(_CMP[op]), right)
        if op == "like":
            self._arity(op, args, 2)
            left, right = self._pair(args[0], args[1], want="text")
            return sql.SQL("({} LIKE {})").format(left, right)
        if op == "between":
            self._arity(op, args, 3)
            value = self.scalar(args[0])
            low, high = self.scalar(args[1]), self.scalar(args[2])
            lo_sql = self._bind_as(low, value.kind, value.prop)
            hi_sql = self._bind_as(high, value.kind, value.prop)
            v_sql = self._bind_as(value, low.kind or high.kind, None)
            return sql.SQL("({} BETWEEN {} AND {})").format(v_sql, lo_sql, hi_sql)
        if op == "in":
            self._arity(op, args, 2)
            value = self.scalar(args[0])
            items = args[1]
            if not isinstance(items, list) or not items:
                raise self.fail("IN needs a non-empty list of values, e.g. status IN ('started','completed').")
            parts = [self._bind_as(self.scalar(item), value.kind, value.prop) for item in items]
            return sql.SQL("({} IN ({}))").format(self._bind_as(value, None, None), sql.SQL(", ").join(parts))
        if op == "isnull":
            self._arity(op, args, 1)
            v = self.scalar(args[0])
            return sql.SQL("({} IS NULL)").format(self._bind_as(v, None, None))
        if op in _SPATIAL:
            self._arity(op, args, 2)
            a, b = self.geometry(args[0]), self.geometry(args[1])
            return sql.SQL("{}({}, {})").format(sql.SQL(_SPATIAL[op]), a, b)
        if op == "s_dwithin":
            if len(args) not in (3, 4):
                raise self.fail("S_DWITHIN needs (geometry, geometry, distance[, unit]); distance is in metres.")
            return self.dwithin(args)
        if op.startswith("t_"):
            self._arity(op, args, 2)
            return self.temporal(op, args[0], args[1])
        if op.startswith("a_"):
            raise self.fail(f"array operator {op.upper()} is not supported: no property of this layer is an array.")
        raise self.fail(f"operator '{e['op']}' is not supported.")

    def _arity(self, op: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise self.fail(f"'{op}' takes {n} argument(s), got {len(args)}.")

    @staticmethod
    def _show(e: Any) -> str:
        return json.dumps(e, ensure_ascii=False, default=str)[:120]

    # ---- scalars
    def scalar(self, e: Any) -> _Val:
        if isinstance(e, dict):
            if "property" in e:
                name = str(e["property"])
                if name.lower() in _GEOM_NAMES:
                    raise self.fail(f"'{name}' is a geometry; compare it with S_INTERSECTS, S_WITHIN, etc.")
                if name not in self.kinds:
                    raise _unknown(self.layer, name)
                return _Val(_col(name), self.kinds[name], prop=name)
            if "date" in e:
                return _Val(None, "date", _coerce(self.layer, "DATE", "date", e["date"]), True)
            if "timestamp" in e:
                return _Val(None, "timestamp", _coerce(self.layer, "TIMESTAMP", "timestamp", e["timestamp"]), True)
            op = str(e.get("op", "")).lower()
            if op in ("casei", "lower", "upper"):
                args = e.get("args", [])
                if not isinstance(args, list) or len(args) != 1:
                    raise self.fail(f"{op.upper()} takes one argument.")
                inner = self.scalar(args[0])
                if inner.kind not in (None, "text") or (inner.is_literal and not isinstance(inner.literal, str)):
                    raise self.fail(f"{op.upper()} works on text, not on {inner.prop or inner.kind}.")
                fn = "upper" if op == "upper" else "lower"
                return _Val(sql.SQL("{}({})").format(sql.SQL(fn), self._bind_as(inner, "text", None)), "text")
            if op == "accenti":
                args = e.get("args", [])
                if not isinstance(args, list) or len(args) != 1:
                    raise self.fail("ACCENTI takes one argument.")
                return self.scalar(args[0])  # Chinese text has no accents to fold
            if op in _ARITH:
                args = e.get("args", [])
                if not isinstance(args, list) or len(args) != 2:
                    raise self.fail(f"'{op}' takes two arguments.")
                x, y = self.scalar(args[0]), self.scalar(args[1])
                for v in (x, y):
                    if v.kind not in ("integer", "number", None) or (v.is_literal and not isinstance(
                            v.literal, int | float)) or isinstance(v.literal, bool):
                        raise self.fail(f"arithmetic '{op}' needs numbers.")
                xs, ys = self._bind_as(x, "number", None), self._bind_as(y, "number", None)
                if op == "/":
                    ys = sql.SQL("NULLIF({}, 0)").format(ys)
                return _Val(sql.SQL("({} {} {})").format(xs, sql.SQL(_ARITH[op]), ys), "number")
            if "interval" in e:
                raise self.fail("an INTERVAL can only be used with temporal operators (T_INTERSECTS, T_DURING, ...).")
            if "type" in e or "bbox" in e:
                raise self.fail("a geometry can only be used with spatial operators (S_INTERSECTS, S_WITHIN, ...).")
            if "op" in e:
                raise self.fail(f"function or operator '{e['op']}' is not supported in a value.")
            raise self.fail(f"cannot read the value {self._show(e)}.")
        if isinstance(e, list):
            raise self.fail("a list is only allowed after IN.")
        if e is None or isinstance(e, bool | int | float | str):
            if isinstance(e, float) and not math.isfinite(e):
                raise self.fail("numbers must be finite.")
            return _Val(None, None, e, True)
        raise self.fail(f"cannot read the value {self._show(e)}.")

    def _bind_as(self, v: _Val, kind: str | None, prop: str | None) -> sql.Composable:
        """SQL for an operand; a literal is coerced to ``kind`` (the other side's type) and bound."""
        if not v.is_literal:
            assert v.sql is not None
            return v.sql
        target = v.kind or kind
        value = v.literal
        if target is None:
            if isinstance(value, bool):
                return self.b(value, "boolean")
            if isinstance(value, int | float):
                return self.b(float(value), "double precision")
            if value is None:
                return sql.SQL("NULL")
            return self.b(str(value), "text")
        if prop == "status" and isinstance(value, str) and self.layer.lifecycle is not None:
            value = _status_value(self.layer, value)
        coerced = _coerce(self.layer, prop or "value", target, value)
        if target == "date" and v.kind == "timestamp":
            coerced = coerced.date() if isinstance(coerced, dt.datetime) else coerced
        if coerced is None:
            return sql.SQL("NULL")
        return self.b(coerced, _CAST_OF_KIND[target])

    def _pair(self, a: Any, b: Any, want: str | None = None) -> tuple[sql.Composable, sql.Composable]:
        x, y = self.scalar(a), self.scalar(b)
        kx, ky = x.kind, y.kind
        if want == "text":
            for v in (x, y):
                if v.is_literal and not isinstance(v.literal, str):
                    raise self.fail(f"LIKE needs a text pattern in quotes, e.g. name LIKE '%村%'; got {v.literal!r}.")
                if v.kind not in (None, "text"):
                    raise self.fail(f"LIKE compares text; '{v.prop or v.literal}' is {v.kind}.")
        if kx and ky and kx != ky and {kx, ky} not in ({"integer", "number"}, {"date", "timestamp"}):
            raise self.fail(f"cannot compare {x.prop or kx} ({kx}) with {y.prop or ky} ({ky}).")
        if x.is_literal and y.is_literal and kx is None and ky is None:
            tx, ty = (type(v.literal) if not isinstance(v.literal, int | float) or isinstance(v.literal, bool)
                      else float for v in (x, y))
            if x.literal is not None and y.literal is not None and tx is not ty:
                raise self.fail(f"cannot compare {x.literal!r} with {y.literal!r}.")
        return self._bind_as(x, ky or want, y.prop), self._bind_as(y, kx or want, x.prop)

    # ---- geometries
    def geometry(self, e: Any) -> sql.Composable:
        if isinstance(e, dict) and "property" in e:
            name = str(e["property"])
            if name.lower() in _GEOM_NAMES:
                return _col("geom")
            if name in self.kinds:
                raise self.fail(f"'{name}' is not a geometry; the geometry property is 'geom'.")
            raise _unknown(self.layer, name)
        return self._geom_literal(e)

    def _geom_literal(self, e: Any) -> sql.Composable:
        if isinstance(e, dict) and "bbox" in e:
            box = e["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6):
                raise self.fail("BBOX needs 4 numbers.")
            nums = [float(x) for x in box]
            if len(nums) == 6:
                nums = [nums[0], nums[1], nums[3], nums[4]]
            if nums[0] > nums[2] or nums[1] > nums[3] or not all(math.isfinite(n) for n in nums):
                raise self.fail("BBOX must be (minx, miny, maxx, maxy) with the minimum first.")
            env = sql.SQL("ST_MakeEnvelope({}, {}, {}, {})").format(*(self.b(n, "double precision") for n in nums))
            return _storage_geom(env, self.crs)
        if isinstance(e, dict) and "type" in e:
            try:
                shp = shapely.geometry.shape(e)
            except Exception:  # noqa: BLE001 - any malformed GeoJSON is a user error
                raise self.fail(f"the geometry {self._show(e)} is not valid GeoJSON/WKT.") from None
            if shp.is_empty:
                raise self.fail("the geometry literal is empty.")
            coords = shapely.get_coordinates(shp)
            if not bool(shapely.is_valid(shp)) and shp.geom_type in ("Polygon", "MultiPolygon"):
                shp = shapely.make_valid(shp)
            if not math.isfinite(float(coords.sum())):
                raise self.fail("the geometry literal has non-finite coordinates.")
            wkb = shapely.to_wkb(shapely.force_2d(shp), hex=True)
            return _storage_geom(sql.SQL("ST_GeomFromWKB(decode({}, 'hex'))").format(self.b(wkb)), self.crs)
        raise self.fail(f"expected a geometry (POINT, POLYGON, BBOX, ... or the property geom), found {self._show(e)}.")

    def dwithin(self, args: list[Any]) -> sql.Composable:
        a, b = args[0], args[1]
        dist = args[2]
        if isinstance(dist, bool) or not isinstance(dist, int | float) or not math.isfinite(dist) or dist < 0:
            raise self.fail("the S_DWITHIN distance must be a non-negative number of metres.")
        factor = 1.0
        if len(args) == 4:
            unit = args[3].get("property") if isinstance(args[3], dict) else args[3]
            if not isinstance(unit, str) or unit.lower() not in _UNITS:
                raise self.fail(f"S_DWITHIN unit {self._show(args[3])} is not supported; use meters or kilometers.")
            factor = _UNITS[unit.lower()]
        metres = float(dist) * factor
        ga, gb = self.geometry(a), self.geometry(b)
        is_col_a = isinstance(a, dict) and "property" in a
        is_col_b = isinstance(b, dict) and "property" in b
        d = self.b(metres, "double precision")
        geodesic = sql.SQL("ST_DWithin({}::geography, {}::geography, {})").format(ga, gb, d)
        if is_col_a != is_col_b:
            # Keep the indexed column bare: a degree box around the literal that surely covers `metres`.
            col, lit = (ga, gb) if is_col_a else (gb, ga)
            d2 = self.b(metres, "double precision")
            d3 = self.b(metres, "double precision")
            box = sql.SQL(
                "ST_Expand({lit}, {d2} / (111000.0 * cos(radians(least(89.0, greatest(abs(ST_YMin({lit})), "
                "abs(ST_YMax({lit}))) + 1.0)))), {d3} / 110000.0)"
            ).format(lit=lit, d2=d2, d3=d3)
            return sql.SQL("({col} && {box} AND {geo})").format(col=col, box=box, geo=geodesic)
        return geodesic

    # ---- temporal
    def _instant_bounds(self, e: Any) -> tuple[sql.Composable, sql.Composable]:
        """(start, end) timestamptz SQL of a temporal operand."""
        if isinstance(e, dict) and "interval" in e:
            iv = e["interval"]
            if not isinstance(iv, list) or len(iv) != 2:
                raise self.fail("INTERVAL needs a start and an end.")
            s, _ = self._instant_bounds(iv[0]) if not self._open(iv[0]) else (sql.SQL("'-infinity'::timestamptz"),
                                                                           None)
            if self._open(iv[1]):
                en: sql.Composable = sql.SQL("'infinity'::timestamptz")
            else:
                _, en = self._instant_bounds(iv[1])
            return s, en
        if isinstance(e, dict) and "property" in e:
            name = str(e["property"])
            if name not in self.kinds:
                raise _unknown(self.layer, name)
            kind = self.kinds[name]
            col = _col(name)
            if kind == "timestamp":
                return col, col
            if kind == "date":
                return (sql.SQL("{}::timestamptz").format(col),
                        sql.SQL("({} + 1)::timestamptz - interval '1 microsecond'").format(col))
            if kind == "integer" and self._is_year(name):
                return (sql.SQL("make_timestamptz({}::int, 1, 1, 0, 0, 0, 'UTC')").format(col),
                        sql.SQL("make_timestamptz({}::int, 12, 31, 23, 59, 59.999999, 'UTC')").format(col))
            raise self.fail(f"'{name}' is not a temporal property.")
        if isinstance(e, dict) and "date" in e:
            day = _coerce(self.layer, "DATE", "date", e["date"])
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return (self.b(start, "timestamptz"),
                    self.b(start + dt.timedelta(days=1) - dt.timedelta(microseconds=1), "timestamptz"))
        if isinstance(e, dict) and "timestamp" in e:
            ts = _coerce(self.layer, "TIMESTAMP", "timestamp", e["timestamp"])
            p = self.b(ts, "timestamptz")
            return p, p
        if isinstance(e, str):
            ts = _parse_instant(e, end=False)
            if ts is None:
                raise self.fail("an open end '..' is only allowed inside INTERVAL.")
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", e.strip()):
                endts = _parse_instant(e, end=True)
                return self.b(ts, "timestamptz"), self.b(endts, "timestamptz")
            p = self.b(ts, "timestamptz")
            return p, p
        raise self.fail(f"expected a date, timestamp, interval or temporal property, found {self._show(e)}.")

    def _is_year(self, name: str) -> bool:
        try:
            return self.layer.field(name).temporal
        except KeyError:
            return False

    @staticmethod
    def _open(e: Any) -> bool:
        return isinstance(e, str) and e.strip() in ("..", "")

    def temporal(self, op: str, a: Any, b: Any) -> sql.Composable:
        a0, a1 = self._instant_bounds(a)
        b0, b1 = self._instant_bounds(b)
        rel = {
            "t_after": "{a0} > {b1}",
            "t_before": "{a1} < {b0}",
            "t_intersects": "({a0} <= {b1} AND {a1} >= {b0})",
            "t_disjoint": "NOT ({a0} <= {b1} AND {a1} >= {b0})",
            "t_equals": "({a0} = {b0} AND {a1} = {b1})",
            "t_during": "({a0} > {b0} AND {a1} < {b1})",
            "t_contains": "({a0} < {b0} AND {a1} > {b1})",
            "t_starts": "({a0} = {b0} AND {a1} < {b1})",
            "t_startedby": "({a0} = {b0} AND {a1} > {b1})",
            "t_finishes": "({a1} = {b1} AND {a0} > {b0})",
            "t_finishedby": "({a1} = {b1} AND {a0} < {b0})",
            "t_meets": "({a1} = {b0})",
            "t_metby": "({a0} = {b1})",
            "t_overlaps": "({a0} < {b0} AND {a1} > {b0} AND {a1} < {b1})",
            "t_overlappedby": "({b0} < {a0} AND {b1} > {a0} AND {b1} < {a1})",
        }
        if op not in rel:
            raise self.fail(f"temporal operator {op.upper()} is not supported.")
        return sql.SQL("(" + rel[op] + ")").format(a0=a0, a1=a1, b0=b0, b1=b1)


# --------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` term."""

    prop: str
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    """A keyset page boundary: the sort key values of the boundary row and the direction."""

    values: tuple[Any, ...]
    backward: bool = False


@dataclass(frozen=True)
class FeatureQuery:
    """A validated feature query on one layer (see :func:`parse_items_params`)."""

    layer: Layer
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: CrsRef = CRS84
    datetime: TimeInterval | None = None
    equals: tuple[tuple[str, Any], ...] = ()
    filter: Filter | None = None
    properties: tuple[str, ...] | None = None
    sortby: tuple[SortKey, ...] = ()
    limit: int = 100
    cursor: Cursor | None = None
    crs: CrsRef = CRS84
    ids: tuple[int, ...] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    """Allowed extra parameters the caller handles itself (e.g. ``f``)."""

    @property
    def has_conditions(self) -> bool:
        """Whether anything narrows the layer (for the numberMatched decision)."""
        return bool(self.bbox or self.datetime or self.equals or self.filter or self.ids is not None)

    def with_cursor(self, cursor: Cursor | None) -> FeatureQuery:
        """The same query at another page."""
        return replace(self, cursor=cursor)


def _split_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_items_params(
    layer: Layer,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    default_limit: int = 100,
    max_limit: int = 10_000,
    extra_params: Iterable[str] = (),
) -> FeatureQuery:
    """Validate OGC API Features items query parameters for ``layer``.

    Parameters
    ----------
    params : mapping or iterable of pairs
        The query string (a repeated parameter is an error except where noted).
    default_limit, max_limit : int
        From settings; ``limit`` outside 1..max_limit is a 400, as the issue requires.
    extra_params : iterable of str
        Parameter names the caller handles itself (they are returned in ``extra``).

    Raises
    ------
    InvalidInputError
        For any malformed, unknown or out-of-range parameter (HTTP 400).
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    seen: dict[str, str] = {}
    for k, v in pairs:
        if k in seen:
            raise InvalidInputError(f"Parameter '{k}' is given more than once.")
        seen[k] = v
    kinds = column_kinds(layer)
    extra_allowed = set(extra_params)
    equals: list[tuple[str, Any]] = []
    extra: dict[str, str] = {}
    for k, v in seen.items():
        if k in ITEMS_PARAMS and k != "f":
            continue
        if k in extra_allowed or k == "f":
            extra[k] = v
            continue
        if k in kinds:
            value: Any = v
            if k == "status" and layer.lifecycle is not None:
                value = _status_value(layer, v)
                if value not in layer.lifecycle.codes:
                    raise InvalidInputError(
                        f"'{v}' is not a status of layer '{layer.id}'. Allowed: "
                        + ", ".join(f"{s.code} ({s.label})" for s in layer.lifecycle.statuses) + ".",
                        detail={"layer": layer.id, "property": "status"},
                    )
            equals.append((k, _coerce(layer, k, kinds[k], value)))
            continue
        raise InvalidInputError(
            f"Unknown parameter '{k}'. Items accept bbox, bbox-crs, datetime, limit, cursor, properties, sortby, crs, "
            f"filter, filter-lang, filter-crs, f, or a property of layer '{layer.id}' for an equality filter: "
            + ", ".join(kinds) + ".",
            detail={"layer": layer.id, "parameter": k},
        )

    limit = default_limit
    if "limit" in seen:
        raw = seen["limit"].strip()
        if not re.fullmatch(r"\d{1,9}", raw) or not 1 <= int(raw) <= max_limit:
            raise InvalidInputError(f"limit '{seen['limit']}' must be a whole number from 1 to {max_limit}.")
        limit = int(raw)

    crs = parse_crs_param(seen["crs"], "crs") if "crs" in seen else CRS84
    bbox_crs = parse_crs_param(seen["bbox-crs"], "bbox-crs") if "bbox-crs" in seen else CRS84
    if "bbox-crs" in seen and "bbox" not in seen:
        raise InvalidInputError("bbox-crs was given without bbox.")
    bbox = parse_bbox(seen["bbox"], bbox_crs) if "bbox" in seen else None
    when = parse_datetime(seen["datetime"]) if "datetime" in seen else None

    flt: Filter | None = None
    if "filter-lang" in seen and "filter" not in seen:
        raise InvalidInputError("filter-lang was given without filter.")
    if "filter-crs" in seen and "filter" not in seen:
        raise InvalidInputError("filter-crs was given without filter.")
    if "filter" in seen:
        fcrs = parse_crs_param(seen["filter-crs"], "filter-crs") if "filter-crs" in seen else CRS84
        flt = parse_filter(layer, seen["filter"], seen.get("filter-lang", "cql2-text"), fcrs)

    props: tuple[str, ...] | None = None
    if "properties" in seen:
        names = _split_list(seen["properties"])
        for n in names:
            if n not in kinds or n == "id":
                if n in ("status_label",) and layer.has_status:
                    continue
                raise _unknown(layer, n)
        props = tuple(dict.fromkeys(n for n in names if n != "status_label"))
        if "status_label" in names and "status" not in props:
            props = (*props, "status")

    sortby: list[SortKey] = []
    if "sortby" in seen:
        for term in _split_list(seen["sortby"]):
            desc = term.startswith("-")
            name = term[1:] if term[:1] in "+-" else term
            name = name.strip()
            if name.endswith((" DESC", " desc")):
                desc, name = True, name[:-5].strip()
            elif name.endswith((" ASC", " asc")):
                name = name[:-4].strip()
            if name not in kinds:
                raise _unknown(layer, name)
            if name == "id":
                if sortby:
                    break
                sortby.append(SortKey("id", desc))
                break
            sortby.append(SortKey(name, desc))
        if not sortby and seen["sortby"].strip():
            raise InvalidInputError(f"sortby '{seen['sortby']}' names no property.")

    q = FeatureQuery(
        layer=layer, bbox=bbox, bbox_crs=bbox_crs, datetime=when, equals=tuple(equals), filter=flt,
        properties=props, sortby=tuple(sortby), limit=limit, crs=crs, extra=extra,
    )
    if "cursor" in seen:
        q = q.with_cursor(decode_cursor(q, seen["cursor"]))
    return q


# --------------------------------------------------------------------------- SQL pieces


def _sort_terms(q: FeatureQuery) -> list[tuple[str, bool]]:
    terms = [(k.prop, k.descending) for k in q.sortby]
    if not terms or terms[-1][0] != "id":
        terms.append(("id", False))
    return terms


def _temporal_fields(layer: Layer) -> list[str]:
    return [f.name for f in layer.fields if f.temporal]


def _datetime_condition(q: FeatureQuery, b: Binder) -> sql.Composable:
    assert q.datetime is not None
    start, end = q.datetime.start, q.datetime.end
    temporal = _temporal_fields(q.layer)
    conds: list[sql.Composable] = []
    if temporal:
        first, last = temporal[0], temporal[-1]
        if start is not None:
            conds.append(sql.SQL("{} >= {}").format(_col(last), b(start.astimezone(dt.UTC).year, "integer")))
        if end is not None:
            conds.append(sql.SQL("{} <= {}").format(_col(first), b(end.astimezone(dt.UTC).year, "integer")))
    else:
        if start is not None:
            conds.append(sql.SQL("{} >= {}").format(_col("updated_at"), b(start, "timestamptz")))
        if end is not None:
            conds.append(sql.SQL("{} <= {}").format(_col("updated_at"), b(end, "timestamptz")))
    return sql.SQL(" AND ").join(conds)


def where_clause(q: FeatureQuery, binder: Binder) -> sql.Composable:
    """The ``WHERE`` condition of ``q`` for rows aliased ``t`` (``TRUE`` when nothing narrows)."""
    kinds = column_kinds(q.layer)
    conds: list[sql.Composable] = []
    if q.ids is not None:
        conds.append(sql.SQL("{} = ANY({})").format(_col("id"), binder(list(q.ids), "bigint[]")))
    if q.bbox is not None:
        minx, miny, maxx, maxy = q.bbox
        env: sql.Composable = sql.SQL("ST_MakeEnvelope({}, {}, {}, {})").format(
            binder(minx, "double precision"), binder(miny, "double precision"),
            binder(maxx, "double precision"), binder(maxy, "double precision"),
        )
        srid = _srid(q.bbox_crs)
        if srid in _GEOGRAPHIC_SRIDS:
            env4490 = sql.SQL("ST_SetSRID({}, 4490)").format(env)
        else:
            # densify so the curved edges of a projected box survive the transform
            env4490 = sql.SQL("ST_Transform(ST_Segmentize(ST_SetSRID({e}, {s}), "
                              "greatest({w}, {h}) / 32.0), 4490)").format(
                e=env, s=sql.Literal(srid), w=binder(maxx - minx, "double precision"),
                h=binder(maxy - miny, "double precision"))
        conds.append(sql.SQL("ST_Intersects({}, {})").format(_col("geom"), env4490))
    if q.datetime is not None:
        conds.append(_datetime_condition(q, binder))
    for name, value in q.equals:
        if value is None:
            conds.append(sql.SQL("{} IS NULL").format(_col(name)))
        else:
            conds.append(sql.SQL("{} = {}").format(_col(name), binder(value, _CAST_OF_KIND[kinds[name]])))
    if q.filter is not None:
        conds.append(q.filter.to_sql(q.layer, binder))
    if not conds:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(sql.SQL("({})").format(c) for c in conds)


def order_by(q: FeatureQuery, *, reverse: bool = False, filter_first: bool = False) -> sql.Composable:
    """``ORDER BY`` terms for ``q`` (NULLs last in the forward direction).

    ``filter_first`` orders by ``t.id + 0``: same order, but the planner cannot walk the primary
    key and filter (fatal when the matches cluster far along the key, as a small bbox does); it
    collects the matches through the spatial index and sorts them instead.
    """
    parts = []
    for name, desc in _sort_terms(q):
        d = desc != reverse
        nulls = "NULLS LAST" if not reverse else "NULLS FIRST"
        col = sql.SQL("({} + 0)").format(_col(name)) if (filter_first and name == "id") else _col(name)
        parts.append(sql.SQL("{} {} {}").format(col, sql.SQL("DESC" if d else "ASC"), sql.SQL(nulls)))
    return sql.SQL(", ").join(parts)


def _keyset_condition(q: FeatureQuery, b: Binder) -> sql.Composable:
    """Rows strictly after (or, backward, before) the cursor in the sort order, NULLs last."""
    assert q.cursor is not None
    kinds = column_kinds(q.layer)
    terms = _sort_terms(q)
    values = q.cursor.values
    ors: list[sql.Composable] = []
    for i, (name, desc) in enumerate(terms):
        ands: list[sql.Composable] = []
        for (pname, _), pv in zip(terms[:i], values[:i], strict=True):
            if pv is None:
                ands.append(sql.SQL("{} IS NULL").format(_col(pname)))
            else:
                ands.append(sql.SQL("{} = {}").format(_col(pname), b(pv, _CAST_OF_KIND[kinds[pname]])))
        v = values[i]
        col = _col(name)
        forward_gt = not desc  # in forward order, "after" means greater for ASC
        if not q.cursor.backward:
            if v is None:
                continue  # nothing comes after NULL except ties, handled by later keys
            op = ">" if forward_gt else "<"
            ands.append(sql.SQL("({} {} {} OR {} IS NULL)").format(
                col, sql.SQL(op), b(v, _CAST_OF_KIND[kinds[name]]), col))
        else:
            if v is None:
                ands.append(sql.SQL("{} IS NOT NULL").format(col))
            else:
                op = "<" if forward_gt else ">"
                ands.append(sql.SQL("{} {} {}").format(col, sql.SQL(op), b(v, _CAST_OF_KIND[kinds[name]])))
        ors.append(sql.SQL("({})").format(sql.SQL(" AND ").join(ands)))
    if not ors:
        return sql.SQL("FALSE")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(ors))


def _properties_sql(layer: Layer, props: Sequence[str] | None, b: Binder) -> sql.Composable:
    names = list(props) if props is not None else output_properties(layer)
    pairs: list[sql.Composable] = []
    for name in names:
        pairs.append(sql.SQL("{}, {}").format(sql.Literal(name), _col(name)))
        if name == "status" and layer.lifecycle is not None:
            whens = sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(sql.Literal(s.code), sql.Literal(s.label))
                for s in layer.lifecycle.statuses
            )
            pairs.append(sql.SQL("'status_label', CASE {} {} END").format(_col("status"), whens))
    if not pairs:
        return sql.SQL("'{}'")
    # json_build_object takes at most 100 arguments; chunk and concatenate as jsonb only if needed
    chunks = [pairs[i:i + 45] for i in range(0, len(pairs), 45)]
    if len(chunks) == 1:
        return sql.SQL("json_build_object({})::text").format(sql.SQL(", ").join(pairs))
    return sql.SQL("({})::text").format(sql.SQL(" || ").join(
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(c)) for c in chunks))


def feature_sql(layer: Layer, binder: Binder, crs: CrsRef = CRS84,
                properties: Sequence[str] | None = None) -> sql.Composable:
    """A text expression: the GeoJSON Feature of row ``t`` (``id`` = primary key, geometry in ``crs``).

    The geometry and properties are serialised by PostGIS/PostgreSQL; nothing is parsed in Python.
    Status codes are accompanied by ``status_label`` (the Chinese label).
    """
    geom, digits = geometry_sql(crs)
    return sql.SQL(
        """'{{"type":"Feature","id":' || {id} || ',"geometry":' || ST_AsGeoJSON({geom}, {digits}, 0) """
        """|| ',"properties":' || {props} || '}}'"""
    ).format(id=_col("id"), geom=geom, digits=sql.Literal(digits), props=_properties_sql(layer, properties, binder))


def _key_sql(q: FeatureQuery) -> sql.Composable:
    return sql.SQL("json_build_array({})::text").format(sql.SQL(", ").join(_col(n) for n, _ in _sort_terms(q)))


def page_sql(q: FeatureQuery, binder: Binder, *, filter_first: bool = False) -> sql.Composed:
    """One row: (JSON array text of the page's features, rows fetched (≤ limit+1), first key, last key).

    Fetches ``limit + 1`` rows to know whether a next page exists; the keys are JSON arrays of
    the sort values of the first and last returned features, in display order.
    """
    cond = where_clause(q, binder)
    backward = q.cursor is not None and q.cursor.backward
    if q.cursor is not None:
        cond = sql.SQL("{} AND {}").format(cond, _keyset_condition(q, binder))
    lim = binder(q.limit, "integer")
    lim1 = binder(q.limit + 1, "integer")
    order = sql.SQL("DESC" if backward else "ASC")
    # choose the rows first, then serialise only those (PostgreSQL would otherwise build the GeoJSON of
    # every match before the top-N sort)
    inner = sql.SQL(
        "SELECT {feat} AS f, {key} AS k FROM "
        "(SELECT * FROM {table} AS t WHERE {cond} ORDER BY {order} LIMIT {lim1}) AS t"
    ).format(feat=feature_sql(q.layer, binder, q.crs, q.properties), key=_key_sql(q), table=table_sql(q.layer),
             cond=cond, order=order_by(q, reverse=backward, filter_first=filter_first), lim1=lim1)
    return sql.SQL(
        "SELECT '[' || coalesce(string_agg(f, ',' ORDER BY rn {order}) FILTER (WHERE rn <= {lim}), '') || ']', "
        "count(*)::int, (array_agg(k ORDER BY rn ASC) FILTER (WHERE rn <= {lim}))[1], "
        "(array_agg(k ORDER BY rn DESC) FILTER (WHERE rn <= {lim}))[1] "
        "FROM (SELECT f, k, row_number() OVER () AS rn FROM ({inner}) AS s) AS s2"
    ).format(order=order, lim=lim, inner=inner)


def one_feature_sql(layer: Layer, feature_id: int, crs: CrsRef = CRS84) -> tuple[sql.Composed, dict[str, Any]]:
    """``SELECT`` of one feature's GeoJSON text by primary key, and its parameters."""
    b = Binder()
    stmt = sql.SQL("SELECT {} FROM {} AS t WHERE t.id = {}").format(
        feature_sql(layer, b, crs), table_sql(layer), b(feature_id, "bigint"))
    return stmt, b.params


def parse_feature_id(layer: Layer, text: str) -> int:
    """A feature id from the URL; a non-numeric id cannot exist, so it is a 404 as the standard expects."""
    if not re.fullmatch(r"\d{1,18}", text.strip()):
        raise FeatureNotFoundError(layer.id, text)
    return int(text)


async def fetch_feature(conn: AsyncConnection[Any], layer: Layer, feature_id: int | str,
                        crs: CrsRef = CRS84) -> str:
    """One feature's GeoJSON text; :class:`FeatureNotFoundError` (404) when absent."""
    fid = parse_feature_id(layer, str(feature_id)) if not isinstance(feature_id, int) else feature_id
    stmt, params = one_feature_sql(layer, fid, crs)
    cur = await conn.execute(stmt, params)
    row = await cur.fetchone()
    if row is None:
        raise FeatureNotFoundError(layer.id, feature_id)
    return str(row[0])


# --------------------------------------------------------------------------- cursors and pages


def _sort_signature(q: FeatureQuery) -> str:
    return ",".join(("-" if d else "+") + n for n, d in _sort_terms(q))


def encode_cursor(q: FeatureQuery, key_json: str, backward: bool) -> str:
    """An opaque cursor token from a row key (JSON array text from the database)."""
    payload = json.dumps({"s": _sort_signature(q), "b": backward, "k": json.loads(key_json)},
                         ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(q: FeatureQuery, token: str) -> Cursor:
    """Validate a cursor token for this query's sort order."""
    bad = InvalidInputError("cursor is not valid for this request; follow the next/prev links as given.")
    try:
        raw = base64.urlsafe_b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("s") != _sort_signature(q) or not isinstance(data.get("k"), list):
        raise bad
    kinds = column_kinds(q.layer)
    terms = _sort_terms(q)
    values = data["k"]
    if len(values) != len(terms):
        raise bad
    out: list[Any] = []
    for (name, _), v in zip(terms, values, strict=True):
        if v is None:
            if name == "id":
                raise bad
            out.append(None)
            continue
        if kinds[name] == "text" and isinstance(v, str):
            out.append(v)  # a stored value, exactly as the database gave it (not user input to trim)
            continue
        try:
            out.append(_coerce(q.layer, name, kinds[name], v))
        except InvalidInputError:
            raise bad from None
    return Cursor(tuple(out), bool(data.get("b")))


@dataclass(frozen=True)
class Page:
    """One page of features: the GeoJSON array text and paging facts."""

    features: str
    number_returned: int
    number_matched: int | None
    next_cursor: str | None
    prev_cursor: str | None


_SERIAL: Final = sql.SQL("SET LOCAL max_parallel_workers_per_gather = 0")


async def fetch_one_serial(conn: AsyncConnection[Any], stmt: sql.Composed | sql.SQL, params: Mapping[str, Any]) -> Any:
    """Run a hot-path statement without parallel workers or a cached generic plan; return its first row.

    Why: launching parallel workers costs 20-50 ms per query (far more than a 100-row page or a
    tile needs, and a concurrent server has no idle cores to give them), and psycopg prepares a
    statement after five executions, after which PostgreSQL may switch to a *generic* plan that
    ignores the bbox (measured: 3-5 s instead of 30 ms for a large-bbox page). ``prepare=False``
    keeps custom plans (planning costs about 1 ms). When the connection is idle in autocommit,
    ``SET LOCAL`` runs in a pipelined transaction (one round trip); inside a caller's transaction the
    statement just runs as is.
    """
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(_SERIAL)
            cur = await conn.execute(stmt, params, prepare=False)
            return await cur.fetchone()
    cur = await conn.execute(stmt, params, prepare=False)
    return await cur.fetchone()


async def _count_if_cheap(conn: AsyncConnection[Any], q: FeatureQuery) -> int | None:
    cur = await conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
        (f"{q.layer.schema_name}.{q.layer.table}",),
    )
    row = await cur.fetchone()
    estimate = int(row[0]) if row and row[0] is not None else -1
    if estimate > COUNT_MAX_ROWS:
        return None
    b = Binder()
    stmt = sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(table_sql(q.layer), where_clause(q, b))
    cur = await conn.execute(stmt, b.params, prepare=False)
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def choose_filter_first(conn: AsyncConnection[Any], q: FeatureQuery) -> bool:
    """Whether to collect matches first and sort them (see :func:`order_by`).

    Only for narrowed queries in key order: the planner's estimate of the matching rows (one
    planning round trip, no execution) decides; few matches are cheaper to sort than to find by
    walking the primary key.
    """
    if not q.has_conditions or q.sortby:
        return False
    b = Binder()
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} AS t WHERE {}").format(table_sql(q.layer),
                                                                                    where_clause(q, b))
    cur = await conn.execute(stmt, b.params, prepare=False)
    row = await cur.fetchone()
    try:
        plan = row[0] if row else None
        plan = json.loads(plan) if isinstance(plan, str) else plan
        rows = float(plan[0]["Plan"]["Plan Rows"]) if plan else 0.0
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    return rows <= FILTER_FIRST_MAX_ROWS


async def fetch_page(conn: AsyncConnection[Any], q: FeatureQuery, *, count: bool = True) -> Page:
    """Run the page query (and the count when cheap) and return the page with its cursors."""
    b = Binder()
    filter_first = await choose_filter_first(conn, q)
    row = await fetch_one_serial(conn, page_sql(q, b, filter_first=filter_first), b.params)
    assert row is not None
    features, fetched, first_key, last_key = str(row[0]), int(row[1]), row[2], row[3]
    returned = min(fetched, q.limit)
    more = fetched > q.limit
    backward = q.cursor is not None and q.cursor.backward
    if backward:
        # rn=1 is the row nearest the boundary, i.e. the last one displayed
        first_key, last_key = last_key, first_key
    next_cursor = prev_cursor = None
    if returned:
        if (not backward and more) or (backward and q.cursor is not None):
            next_cursor = encode_cursor(q, last_key, backward=False)
        if (q.cursor is not None and not backward) or (backward and more):
            prev_cursor = encode_cursor(q, first_key, backward=True)
    elif q.cursor is not None and not backward:
        # past the end: offer the way back
        prev_cursor = None
    matched = await _count_if_cheap(conn, q) if count else None
    return Page(features, returned, matched, next_cursor, prev_cursor)
