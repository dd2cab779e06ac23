"""The typed feature query: what a client asked for, already parsed and validated, no SQL and no URL text.

The API parses HTTP parameters into a :class:`FeatureQuery` (``api.params``); the CLI and
notebooks build one directly (``FeatureQuery(layer=..., filter=parse_filter(layer, text))``).
Everything below (:mod:`.builder`, :mod:`.paging`, :mod:`.execute`, the exporter) takes this
object, so the domain never sees a query string.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Final

from gis.crs import CRS84, CrsRef
from layers.models import Layer

NO_LIMIT: Final = 2**31 - 1
"""A ``limit`` meaning "every match" (exports): the statement gets no LIMIT."""

MAX_OFFSET: Final = 100_000
"""The deepest ``offset`` a page may start at (a larger one is a 400 that points to the ``next`` links).

Why a bound: ``OFFSET n`` makes PostgreSQL produce and discard n rows, so page n costs n; keyset
cursors do not. 100,000 covers every demo layer end to end and ArcGIS Pro's paging of a layer of
that size, and bounds the worst page at a few hundred milliseconds.
"""


@dataclass(frozen=True)
class TimeInterval:
    """A closed interval of instants; None means open ended."""

    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class Filter:
    """A parsed, validated CQL2 expression (CQL2-JSON form) plus the CRS of its geometry literals.

    Build it with :func:`layers.query.cql2sql.parse_filter`; :func:`~layers.query.cql2sql.filter_sql`
    turns it into SQL.
    """

    layer_id: str
    expr: Any
    crs: CrsRef = CRS84


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
    """A validated feature query on one layer.

    ``crs`` None means "not asked for": GeoJSON pages use CRS84 (:attr:`output_crs`), an export
    format its own default. ``ids`` narrows to feature ids (editing, the viewer). ``offset`` (for
    clients that page by position, e.g. ArcGIS Pro) and ``cursor`` exclude each other; both page
    through the same order (:func:`layers.query.builder.sort_terms`), so they give the same rows.
    """

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
    crs: CrsRef | None = None
    ids: tuple[int, ...] | None = None
    offset: int | None = None

    @property
    def output_crs(self) -> CrsRef:
        """The CRS of GeoJSON output: the one asked for, else CRS84."""
        return self.crs if self.crs is not None else CRS84

    @property
    def has_conditions(self) -> bool:
        """Whether anything narrows the layer (for the numberMatched and filter-first decisions)."""
        return bool(self.bbox or self.datetime or self.equals or self.filter or self.ids is not None)

    def with_cursor(self, cursor: Cursor | None) -> FeatureQuery:
        """The same query at another page."""
        return replace(self, cursor=cursor)

    def with_offset(self, offset: int | None) -> FeatureQuery:
        """The same query at a position (``offset`` rows skipped) instead of a cursor."""
        return replace(self, offset=offset, cursor=None)
