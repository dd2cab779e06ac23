"""CQL2 (text or JSON) to a parameterised PostgreSQL condition, checked against a layer's queryables.

The maintained ``cql2`` parser turns CQL2 text or JSON into CQL2-JSON; :class:`CqlTranslator`
walks that tree and emits ``psycopg.sql`` with every literal bound through a
:class:`~layers.query.common.Binder`. Nothing here touches a database, so the translation is
unit-tested on its own (``tests/layers/test_cql2sql.py``): build the SQL, render it with
``as_string(None)`` and look at it and at the bound values.

Public API
----------
parse_filter(layer, text, lang="cql2-text", crs=CRS84) -> Filter
    Parse and validate (the SQL is built once and thrown away, so every 400 comes here).
filter_sql(flt, layer, binder) -> sql.Composable
    The boolean SQL condition of a parsed filter for rows aliased ``t``.

Notes
-----
* The geometry column stays bare (``ST_Intersects(t.geom, <literal in EPSG:4490>)``) so the GiST
  index is used; literals are moved to EPSG:4490 with their ``filter-crs`` axis order.
* ``S_DWITHIN`` distances are metres (geodesic, via ``geography``); with a column on one side a
  degree box around the literal is added so the index still applies.
* Dates, years and timestamps compare as instants: a date is its whole day, a ``temporal`` year
  field its whole calendar year.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import cql2
import shapely
import shapely.geometry
from psycopg import sql

from gis.crs import CRS84, CrsRef
from gis.errors import InvalidInputError
from layers.models import Layer
from layers.query.common import (
    CAST_OF_KIND,
    GEOM_NAMES,
    Binder,
    coerce,
    col,
    column_kinds,
    status_value,
    storage_geom,
    unknown_field,
)
from layers.query.model import Filter
from layers.values import ConversionError, parse_instant

__all__ = ["CqlTranslator", "filter_sql", "parse_filter"]


def filter_sql(flt: Filter, layer: Layer, binder: Binder) -> sql.Composable:
    """The boolean SQL condition of ``flt`` for rows aliased ``t``, values bound through ``binder``."""
    return CqlTranslator(layer, binder, flt.crs).boolean(flt.expr)


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
    if isinstance(text, str) and len(text) > MAX_FILTER_CHARS:
        raise InvalidInputError(f"The filter is {len(text)} characters long; the limit is {MAX_FILTER_CHARS}. "
                                "Use a simpler geometry (or a district code) and fewer conditions.")
    try:
        if lang_norm == "cql2-text":
            if not isinstance(text, str):
                raise InvalidInputError("filter-lang=cql2-text needs the filter as text.")
            if not text.strip():
                raise InvalidInputError("filter is empty.")
            _check_parentheses(text)
            expr = _deep_stack(lambda: cql2.parse_text(text).to_json())
        elif lang_norm == "cql2-json":
            if isinstance(text, str):
                try:
                    decoded = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"filter is not valid JSON (cql2-json): {exc.msg} at position {exc.pos}.") \
                        from None
                except RecursionError:
                    raise InvalidInputError(_too_deep(MAX_FILTER_DEPTH + 1)) from None
            else:
                decoded = dict(text)
            if not isinstance(decoded, dict | bool):
                raise InvalidInputError("A cql2-json filter must be a JSON object such as "
                                        '{"op": "=", "args": [{"property": "status"}, "started"]}.')
            _check_depth(decoded)
            expr = _deep_stack(lambda: cql2.parse_json(json.dumps(decoded)).to_json())
        else:
            raise InvalidInputError(f"filter-lang '{lang}' is not supported; use cql2-text or cql2-json.")
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise InvalidInputError(f"The CQL2 filter could not be parsed: {msg[:400]}",
                                detail={"layer": layer.id}) from None
    _check_depth(expr)  # NOT NOT NOT ... nests without parentheses
    flt = Filter(layer.id, expr, crs)
    filter_sql(flt, layer, Binder())  # validate properties, operators and literals now (raises 400)
    return flt


# --------------------------------------------------------------------------- limits
# The cql2 parser (Rust, pest) backtracks: its time doubles with each level of parentheses when
# the text does not parse (20 unclosed '(' took 2 s, 30 minutes), and it recurses on the thread's
# stack, so a few thousand nested NOT, '-' or '(' crash the process (measured with cql2 0.3:
# 2,000 '(' or 4,095 NOT overflow an 8 MB stack). Hence three limits, all checked before or
# around the parser, each a 400 that says what to change.

MAX_FILTER_CHARS: Final = 16_384
"""Longest filter accepted. The filter is the longest parameter the API takes, so the HTTP input
guard's limit for every query parameter is derived from this one (``api.input_guard.MAX_PARAM_CHARS``):
change it here and both move, and a filter within it is never refused before it reaches the parser."""
MAX_FILTER_PARENS: Final = 10
"""Deepest nesting of parentheses in CQL2 text (WKT included: a MULTIPOLYGON in S_INTERSECTS is 4)."""
MAX_FILTER_DEPTH: Final = 32
"""Deepest nesting of the parsed filter (operations, arrays and objects, geometry coordinates included)."""
_PARSER_STACK_BYTES: Final = 256 * 1024 * 1024
_parser: ThreadPoolExecutor | None = None
_parser_lock = threading.Lock()


def _too_deep(depth: int) -> str:
    return (f"The filter nests {depth} levels deep; at most {MAX_FILTER_DEPTH} are accepted. "
            "Write it with fewer nested operations (for example a = 1 OR a = 2 as a IN (1, 2)).")


def _check_parentheses(text: str) -> None:
    """Refuse unbalanced or too deeply nested parentheses before the parser sees them."""
    depth = deepest = 0
    quote: str | None = None
    for ch in text:
        if quote is not None:
            if ch == quote:
                quote = None  # a doubled quote ('') closes and reopens: the count is unaffected
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InvalidInputError("The filter has a ')' without a matching '('.")
    if depth > 0:
        raise InvalidInputError(f"The filter leaves {depth} '(' unclosed.")
    if deepest > MAX_FILTER_PARENS:
        raise InvalidInputError(f"The filter nests parentheses {deepest} deep; at most {MAX_FILTER_PARENS} are "
                                "accepted. Remove redundant parentheses or split the condition.")


def _check_depth(tree: Any) -> None:
    """Refuse a parsed (or decoded JSON) filter nested deeper than :data:`MAX_FILTER_DEPTH`, without recursion."""
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise InvalidInputError(_too_deep(depth))
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _deep_stack(parse: Callable[[], Any]) -> Any:
    """Run the cql2 parser on a thread with a large stack, so deep input is an error and not a crash.

    One long-lived thread: ``threading.stack_size`` applies to threads created after it is set, so it
    is set only while this executor starts its thread (virtual memory; only touched pages are used).
    """
    global _parser
    with _parser_lock:
        if _parser is None:
            before = threading.stack_size(_PARSER_STACK_BYTES)
            try:
                _parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cql2-parser")
                _parser.submit(lambda: None).result()  # start the thread while the size applies
            finally:
                threading.stack_size(before)
        executor = _parser
    return executor.submit(parse).result()


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


class CqlTranslator:
    """CQL2-JSON (as produced by the ``cql2`` parser) to a psycopg SQL condition."""

    def __init__(self, layer: Layer, binder: Binder, crs: CrsRef) -> None:
        self.layer = layer
        self.b = binder
        self.crs = crs
        self.kinds = column_kinds(layer)

    def fail(self, message: str) -> InvalidInputError:
        """The 400 for a filter problem, prefixed so the user knows it is about the filter."""
        return InvalidInputError(f"CQL2 filter: {message}", detail={"layer": self.layer.id})

    # ---- booleans
    def boolean(self, e: Any) -> sql.Composable:
        """A condition (logical, comparison, LIKE, BETWEEN, IN, IS NULL, spatial, temporal) as SQL."""
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
        """A value operand: property, literal, DATE/TIMESTAMP, CASEI/LOWER/UPPER/ACCENTI or arithmetic."""
        if isinstance(e, dict):
            if "property" in e:
                name = str(e["property"])
                if name.lower() in GEOM_NAMES:
                    raise self.fail(f"'{name}' is a geometry; compare it with S_INTERSECTS, S_WITHIN, etc.")
                if name not in self.kinds:
                    raise unknown_field(self.layer, name)
                return _Val(col(name), self.kinds[name], prop=name)
            if "date" in e:
                return _Val(None, "date", coerce(self.layer, "DATE", "date", e["date"]), True)
            if "timestamp" in e:
                return _Val(None, "timestamp", coerce(self.layer, "TIMESTAMP", "timestamp", e["timestamp"]), True)
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
            value = status_value(self.layer, value)
        coerced = coerce(self.layer, prop or "value", target, value)
        if target == "date" and v.kind == "timestamp":
            coerced = coerced.date() if isinstance(coerced, dt.datetime) else coerced
        if coerced is None:
            return sql.SQL("NULL")
        return self.b(coerced, CAST_OF_KIND[target])

    def _pattern(self, v: _Val, prop: str | None) -> sql.Composable:
        text = str(v.literal)
        if prop == "status" and self.layer.lifecycle is not None:
            text = status_value(self.layer, text)
        return self.b(text, "text")

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
        if want == "text":  # a LIKE pattern is bound as written (a value would be trimmed); a status label is a code
            lx = self._pattern(x, y.prop) if x.is_literal else self._bind_as(x, "text", None)
            ly = self._pattern(y, x.prop) if y.is_literal else self._bind_as(y, "text", None)
            return lx, ly
        return self._bind_as(x, ky or want, y.prop), self._bind_as(y, kx or want, x.prop)

    # ---- geometries
    def geometry(self, e: Any) -> sql.Composable:
        """A geometry operand: the ``geom`` column (bare, so the index applies) or a literal in EPSG:4490."""
        if isinstance(e, dict) and "property" in e:
            name = str(e["property"])
            if name.lower() in GEOM_NAMES:
                return col("geom")
            if name in self.kinds:
                raise self.fail(f"'{name}' is not a geometry; the geometry property is 'geom'.")
            raise unknown_field(self.layer, name)
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
            return storage_geom(env, self.crs)
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
            return storage_geom(sql.SQL("ST_GeomFromWKB(decode({}, 'hex'))").format(self.b(wkb)), self.crs)
        if isinstance(e, dict) and str(e.get("op", "")).lower() == "envelope":
            # ENVELOPE is the draft CQL2's (and OGC Catalogue CQL's) box, in the order west, east, north, south;
            # CQL2 1.0 replaced it with BBOX(west, south, east, north). Guessing the order could select the
            # wrong area, so the caller is told the standard spelling.
            raise self.fail(
                "ENVELOPE(west, east, north, south) is from a CQL2 draft, not CQL2 1.0: write "
                "BBOX(west, south, east, north) instead, e.g. S_INTERSECTS(geom, BBOX(114.4, 38.0, 114.6, 38.1))."
            )
        raise self.fail(f"expected a geometry (POINT, POLYGON, BBOX, ... or the property geom), found {self._show(e)}.")

    def dwithin(self, args: list[Any]) -> sql.Composable:
        """``S_DWITHIN(a, b, distance[, unit])`` in metres, geodesic, index-friendly when one side is the column."""
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
                raise unknown_field(self.layer, name)
            kind = self.kinds[name]
            column = col(name)
            if kind == "timestamp":
                return column, column
            if kind == "date":
                return (sql.SQL("{}::timestamptz").format(column),
                        sql.SQL("({} + 1)::timestamptz - interval '1 microsecond'").format(column))
            if kind == "integer" and self._is_year(name):
                return (sql.SQL("make_timestamptz({}::int, 1, 1, 0, 0, 0, 'UTC')").format(column),
                        sql.SQL("make_timestamptz({}::int, 12, 31, 23, 59, 59.999999, 'UTC')").format(column))
            raise self.fail(f"'{name}' is not a temporal property.")
        if isinstance(e, dict) and "date" in e:
            day = coerce(self.layer, "DATE", "date", e["date"])
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return (self.b(start, "timestamptz"),
                    self.b(start + dt.timedelta(days=1) - dt.timedelta(microseconds=1), "timestamptz"))
        if isinstance(e, dict) and "timestamp" in e:
            ts = coerce(self.layer, "TIMESTAMP", "timestamp", e["timestamp"])
            p = self.b(ts, "timestamptz")
            return p, p
        if isinstance(e, str):
            ts = self._instant(e, end=False)
            if ts is None:
                raise self.fail("an open end '..' is only allowed inside INTERVAL.")
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", e.strip()):
                endts = self._instant(e, end=True)
                return self.b(ts, "timestamptz"), self.b(endts, "timestamptz")
            p = self.b(ts, "timestamptz")
            return p, p
        raise self.fail(f"expected a date, timestamp, interval or temporal property, found {self._show(e)}.")

    def _instant(self, text: str, *, end: bool) -> dt.datetime | None:
        try:
            return parse_instant(text, end=end)
        except ConversionError:
            raise self.fail(f"'{text}' is not an RFC 3339 date or date-time (e.g. 2021-06-30 or "
                            "2021-06-30T00:00:00Z).") from None

    def _is_year(self, name: str) -> bool:
        try:
            return self.layer.field(name).temporal
        except KeyError:
            return False

    @staticmethod
    def _open(e: Any) -> bool:
        return isinstance(e, str) and e.strip() in ("..", "")

    def temporal(self, op: str, a: Any, b: Any) -> sql.Composable:
        """A ``T_*`` relation between two instants/intervals (dates and year fields are whole days/years)."""
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
