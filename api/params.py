"""HTTP parameters of the feature endpoints, parsed into typed values before any domain code runs.

The items endpoint declares its OGC parameters (``bbox``, ``bbox-crs``, ``datetime``, ``limit``,
``cursor``, ``offset``, ``properties``, ``sortby``, ``crs``, ``filter``, ``filter-lang``, ``filter-crs``,
``f``) in :func:`items_request`, a FastAPI dependency; it parses those declared values, plus the
``<property>=<value>`` equality filters (which cannot be declared: they depend on the layer), into
a :class:`layers.query.FeatureQuery`. The domain (:mod:`layers.query`, the exporter) receives only
that typed query, never a query string.

Public API
----------
items_request(...) -> ItemsRequest
    The dependency: the negotiated format (json, html or an export format) and the query. Any
    malformed, repeated, unknown or out-of-range parameter is a 400 (``InvalidInputError``).
ItemsRequestDep
    ``Annotated[ItemsRequest, Depends(items_request)]`` for a route signature.
parse_items_params(layer, params, *, default_limit, max_limit) -> FeatureQuery
    The same parsing from (name, value) pairs, for callers outside a request (the benchmark).
parse_crs_param(text, what="crs") -> CrsRef
    One of :data:`layers.query.SUPPORTED_CRS`, else ``CRSError`` (400).
parse_bbox(text, crs=CRS84) -> tuple[float, float, float, float]
parse_datetime(text) -> TimeInterval
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

import numpy as np
from fastapi import Depends, Query, Request

from api.deps import LayerDep, SettingsDep
from api.ogc import formats as ogc_formats
from api.ogc.metadata import crs_uris, supported_crs
from api.ogc.negotiation import HTML, JSON, negotiate
from gis.crs import CRS84, STORAGE, CrsRef, parse_crs, transform_coords
from gis.errors import CRSError, InvalidInputError
from layers.city import CityProfile
from layers.models import Layer
from layers.query import (
    GEOGRAPHIC_SRIDS,
    MAX_OFFSET,
    FeatureQuery,
    Filter,
    SortKey,
    TimeInterval,
    axis_swapped,
    coerce,
    column_kinds,
    decode_cursor,
    parse_filter,
    status_value,
    unknown_field,
)
from layers.values import ConversionError, parse_instant

__all__ = [
    "ITEMS_PARAMS",
    "ItemsRequest",
    "ItemsRequestDep",
    "check_district",
    "items_request",
    "parse_bbox",
    "parse_crs_param",
    "parse_datetime",
    "parse_items_params",
]

ITEMS_PARAMS: Final = frozenset(
    {"bbox", "bbox-crs", "datetime", "limit", "cursor", "offset", "properties", "sortby", "crs", "filter",
     "filter-lang", "filter-crs", "f"}
)
"""The declared parameters of the items endpoint; any other name must be a property (equality filter)."""


# --------------------------------------------------------------------------- single values


def parse_crs_param(text: str, what: str = "crs") -> CrsRef:
    """Parse a ``crs``/``bbox-crs``/``filter-crs`` value: :data:`SUPPORTED_CRS` and the city's own zone.

    Raises
    ------
    CRSError
        For an unknown or unsupported CRS (HTTP 400).
    """
    try:
        ref = parse_crs(text)
    except CRSError as exc:
        raise CRSError(f"{what}: {exc.message} Supported here: {_supported_list()}.") from None
    if ref not in supported_crs():
        raise CRSError(f"{what}: '{text}' is not offered by this service. Supported: {_supported_list()}.")
    return ref


def _supported_list() -> str:
    return ", ".join(crs_uris())


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
    if crs.kind == "epsg" and crs.epsg not in GEOGRAPHIC_SRIDS:
        xs, ys = transform_coords(crs, STORAGE, [a, c, a, c], [b, b, d, d])
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()) or not (
                (np.abs(xs) <= 180).all() and (np.abs(ys) <= 90).all()):
            raise InvalidInputError(f"bbox '{text}' is outside the valid area of {crs.label}.")
    if crs.kind == "crs84" or crs.epsg in GEOGRAPHIC_SRIDS:
        if not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
            raise InvalidInputError(
                f"bbox '{text}' is outside longitude -180..180 / latitude -90..90 for {crs.label}"
                + (" (this CRS is latitude first)." if axis_swapped(crs) else ".")
            )
    return a, b, c, d


def _instant(text: str, *, end: bool) -> dt.datetime | None:
    try:
        return parse_instant(text, end=end)
    except ConversionError:
        raise InvalidInputError(
            f"datetime '{text}' is not an RFC 3339 date or date-time (e.g. 2021-06-30 or 2021-06-30T00:00:00Z)."
        ) from None


def parse_datetime(text: str) -> TimeInterval:
    """Parse the OGC ``datetime`` parameter: an instant, or ``start/end`` with ``..`` or empty for open ends.

    A date-only instant means that whole day.
    """
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise InvalidInputError(f"datetime '{text}' must be an instant or one interval 'start/end'.")
        start = _instant(parts[0], end=False)
        end = _instant(parts[1], end=True)
        if start is None and end is None:
            raise InvalidInputError(f"datetime '{text}': at least one end of the interval must be given.")
        if start is not None and end is not None and start > end:
            raise InvalidInputError(f"datetime '{text}': the start is after the end.")
        return TimeInterval(start, end)
    start = _instant(text, end=False)
    if start is None:
        raise InvalidInputError("datetime is empty; give an instant such as 2021-06-30 or an interval 2021-01-01/..")
    end = _instant(text, end=True) if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text) else start
    return TimeInterval(start, end)


def _split_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_limit(text: str, max_limit: int) -> int:
    """``limit``: a whole number from 1 to ``max_limit`` (out of range is a 400, not clamped)."""
    raw = text.strip()
    if not re.fullmatch(r"\d{1,9}", raw) or not 1 <= int(raw) <= max_limit:
        raise InvalidInputError(f"limit '{text}' must be a whole number from 1 to {max_limit}.")
    return int(raw)


def parse_offset(text: str) -> int:
    """``offset``: a whole number from 0 to :data:`~layers.query.MAX_OFFSET` (deeper is a 400, not clamped)."""
    raw = text.strip()
    if not re.fullmatch(r"\d{1,12}", raw):
        raise InvalidInputError(f"offset '{text}' must be a whole number from 0 to {MAX_OFFSET}.")
    if int(raw) > MAX_OFFSET:
        raise InvalidInputError(
            f"offset {int(raw)} is past the maximum of {MAX_OFFSET}. Narrow the request (bbox, filter) or page "
            "with the 'next' links (cursor paging has no depth limit).",
            detail={"parameter": "offset", "maximum": MAX_OFFSET},
        )
    return int(raw)


def parse_properties(layer: Layer, text: str) -> tuple[str, ...]:
    """``properties``: known property names (``status_label`` brings ``status``), in the order given."""
    kinds = column_kinds(layer)
    names = _split_list(text)
    for n in names:
        if n not in kinds or n == "id":
            if n in ("status_label",) and layer.has_status:
                continue
            raise unknown_field(layer, n)
    props = tuple(dict.fromkeys(n for n in names if n != "status_label"))
    if "status_label" in names and "status" not in props:
        props = (*props, "status")
    return props


def parse_sortby(layer: Layer, text: str) -> tuple[SortKey, ...]:
    """``sortby``: ``-name``/``+name``/``name DESC`` terms; ``id`` ends the list (it is unique)."""
    kinds = column_kinds(layer)
    sortby: list[SortKey] = []
    for term in _split_list(text):
        desc = term.startswith("-")
        name = term[1:] if term[:1] in "+-" else term
        name = name.strip()
        if name.endswith((" DESC", " desc")):
            desc, name = True, name[:-5].strip()
        elif name.endswith((" ASC", " asc")):
            name = name[:-4].strip()
        if name not in kinds:
            raise unknown_field(layer, name)
        if any(k.prop == name for k in sortby):
            continue  # a repeated key changes nothing: keep the first (and the statement small)
        if name == "id":
            if sortby:
                break
            sortby.append(SortKey("id", desc))
            break
        sortby.append(SortKey(name, desc))
    if not sortby and text.strip():
        raise InvalidInputError(f"sortby '{text}' names no property.")
    return tuple(sortby)


def _unknown_parameter(layer: Layer, name: str) -> InvalidInputError:
    return InvalidInputError(
        f"Unknown parameter '{name}'. Items accept bbox, bbox-crs, datetime, limit, cursor, offset, properties, "
        f"sortby, crs, filter, filter-lang, filter-crs, f, or a property of layer '{layer.id}' for an equality filter: "
        + ", ".join(column_kinds(layer)) + ".",
        detail={"layer": layer.id, "parameter": name},
    )


def parse_equals(layer: Layer, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, Any], ...]:
    """``<property>=<value>`` equality filters (status also by label); any other name is an unknown parameter."""
    kinds = column_kinds(layer)
    equals: list[tuple[str, Any]] = []
    for k, v in pairs:
        if k not in kinds:
            raise _unknown_parameter(layer, k)
        value: Any = v
        if k == "status" and layer.lifecycle is not None:
            value = status_value(layer, v)
            if value not in layer.lifecycle.codes:
                raise InvalidInputError(
                    f"'{v}' is not a status of layer '{layer.id}'. Allowed: "
                    + ", ".join(f"{s.code} ({s.label})" for s in layer.lifecycle.statuses) + ".",
                    detail={"layer": layer.id, "property": "status"},
                )
        equals.append((k, coerce(layer, k, kinds[k], value)))
    return tuple(equals)


# --------------------------------------------------------------------------- the items query


def _single(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The parameters by name; a repeated one is a 400 (OGC items take each parameter once)."""
    seen: dict[str, str] = {}
    for k, v in pairs:
        if k in seen:
            raise InvalidInputError(f"Parameter '{k}' is given more than once.")
        seen[k] = v
    return seen


def build_items_query(
    layer: Layer,
    *,
    equals: Iterable[tuple[str, str]] = (),
    bbox: str | None = None,
    bbox_crs: str | None = None,
    datetime: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
    offset: str | None = None,
    properties: str | None = None,
    sortby: str | None = None,
    crs: str | None = None,
    filter: str | None = None,  # noqa: A002 - the OGC parameter name
    filter_lang: str | None = None,
    filter_crs: str | None = None,
    default_limit: int = 100,
    max_limit: int = 10_000,
) -> FeatureQuery:
    """A :class:`FeatureQuery` from the items parameters' text (None = not given); 400 on any bad value."""
    eq = parse_equals(layer, equals)
    lim = parse_limit(limit, max_limit) if limit is not None else default_limit
    out_crs = parse_crs_param(crs, "crs") if crs is not None else None
    box_crs = parse_crs_param(bbox_crs, "bbox-crs") if bbox_crs is not None else CRS84
    if bbox_crs is not None and bbox is None:
        raise InvalidInputError("bbox-crs was given without bbox.")
    box = parse_bbox(bbox, box_crs) if bbox is not None else None
    when = parse_datetime(datetime) if datetime is not None else None
    flt: Filter | None = None
    if filter_lang is not None and filter is None:
        raise InvalidInputError("filter-lang was given without filter.")
    if filter_crs is not None and filter is None:
        raise InvalidInputError("filter-crs was given without filter.")
    if filter is not None:
        fcrs = parse_crs_param(filter_crs, "filter-crs") if filter_crs is not None else CRS84
        flt = parse_filter(layer, filter, filter_lang if filter_lang is not None else "cql2-text", fcrs)
    props = parse_properties(layer, properties) if properties is not None else None
    sort = parse_sortby(layer, sortby) if sortby is not None else ()
    q = FeatureQuery(layer=layer, bbox=box, bbox_crs=box_crs, datetime=when, equals=eq, filter=flt,
                     properties=props, sortby=sort, limit=lim, crs=out_crs)
    if cursor is not None and offset is not None:
        raise InvalidInputError("Give either cursor (from a next/prev link) or offset, not both.")
    if cursor is not None:
        q = q.with_cursor(decode_cursor(q, cursor))
    elif offset is not None:
        q = q.with_offset(parse_offset(offset))
    return q


def parse_items_params(
    layer: Layer,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    default_limit: int = 100,
    max_limit: int = 10_000,
) -> FeatureQuery:
    """:func:`build_items_query` from (name, value) pairs as a query string has them (``f`` is ignored)."""
    seen = _single(params.items() if isinstance(params, Mapping) else params)
    named = {k.replace("-", "_"): v for k, v in seen.items() if k in ITEMS_PARAMS and k != "f"}
    equals = [(k, v) for k, v in seen.items() if k not in ITEMS_PARAMS]
    return build_items_query(layer, equals=equals, default_limit=default_limit, max_limit=max_limit, **named)


# --------------------------------------------------------------------------- the dependency

_ITEMS_DOC: Final = {
    "bbox": "minx,miny,maxx,maxy in bbox-crs (axis order of that CRS: EPSG:4326/4490 are lat,lon; "
            "the city's Gauss-Krüger zone is N,E)",
    "bbox-crs": "CRS of bbox (default CRS84)",
    "datetime": "RFC 3339 instant or interval (a/b, '..' open); matched against the layer's temporal fields",
    "limit": "Features per page (1 to RENEWAL_MAX_LIMIT; default RENEWAL_DEFAULT_LIMIT)",
    "cursor": "Opaque keyset cursor from a next/prev link (the fast way to page; no depth limit)",
    "offset": (f"Number of features to skip, 0 to {MAX_OFFSET} (paging by position, as ArcGIS Pro does; the "
               "same order and rows as the cursor pages; not together with cursor; past the maximum a 400)"),
    "properties": "Comma-separated properties to return",
    "sortby": "Comma-separated properties, '-' prefix for descending, e.g. -area_mu,name",
    "crs": "Output CRS: CRS84 (default), EPSG:4326, EPSG:4490, EPSG:3857 or the city's Gauss-Krüger zone "
            "(Shijiazhuang: EPSG:4547; see the collection's crs list); URIs or EPSG:n",
    "filter": "CQL2 filter (text or JSON per filter-lang)",
    "filter-lang": "cql2-text (default) or cql2-json",
    "filter-crs": "CRS of geometry literals in filter (default CRS84)",
    "f": "json (GeoJSON), html, or an export format",
}


def as_of_query(description: str = "Date YYYY-MM-DD (default today)") -> Any:
    """``Query`` for a date parameter read by :func:`layers.progress.parse_as_of` (its message, not FastAPI's).

    The value stays a string for the route, so a bad date gets the officer-readable 400 of
    ``parse_as_of``; the document still says ``format: date`` so clients and testers send dates.
    """
    return Query(description=description, examples=["2021-09-30"], json_schema_extra={"format": "date"})


AsOf = Annotated[str | None, as_of_query()]
"""The ``as_of`` date of progress, ledgers, maps, reports and submissions: one declaration."""


def doc_query(name: str) -> Any:
    """``Query`` for an OGC parameter with its alias and description (also used by the single-feature route)."""
    return Query(alias=name, description=_ITEMS_DOC[name])


@dataclass(frozen=True)
class ItemsRequest:
    """A parsed items request: the output format (``json``, ``html`` or an export format name) and the query."""

    format: str
    query: FeatureQuery

    @property
    def is_export(self) -> bool:
        """Whether a registered export format (``?f=gpkg`` ...) was asked for."""
        return self.format not in (JSON, HTML)


def items_request(
    request: Request, layer: LayerDep, settings: SettingsDep,
    bbox: Annotated[str | None, doc_query("bbox")] = None,
    bbox_crs: Annotated[str | None, doc_query("bbox-crs")] = None,
    datetime: Annotated[str | None, doc_query("datetime")] = None,
    limit: Annotated[str | None, doc_query("limit")] = None,
    cursor: Annotated[str | None, doc_query("cursor")] = None,
    offset: Annotated[str | None, doc_query("offset")] = None,
    properties: Annotated[str | None, doc_query("properties")] = None,
    sortby: Annotated[str | None, doc_query("sortby")] = None,
    crs: Annotated[str | None, doc_query("crs")] = None,
    filter: Annotated[str | None, doc_query("filter")] = None,  # noqa: A002 - the OGC parameter name
    filter_lang: Annotated[str | None, doc_query("filter-lang")] = None,
    filter_crs: Annotated[str | None, doc_query("filter-crs")] = None,
    f: Annotated[str | None, doc_query("f")] = None,
) -> ItemsRequest:
    """The items endpoint's parameters as an :class:`ItemsRequest` (400 for anything malformed or unknown).

    An export format (``?f=gpkg`` ...) wants every match: its default and maximum ``limit`` are
    :data:`api.ogc.formats.EXPORT_ALL`. The equality filters are the query string's other names.
    """
    pairs = request.query_params.multi_items()
    _single(pairs)
    equals = [(k, v) for k, v in pairs if k not in ITEMS_PARAMS]
    extra = ogc_formats.items_formats()
    f_value = (f or "").strip().lower()
    if f_value in extra:
        fmt = f_value
        default_limit = max_limit = ogc_formats.EXPORT_ALL
    else:
        fmt = negotiate(request, (JSON, HTML, *extra))
        default_limit, max_limit = settings.default_limit, settings.max_limit
    q = build_items_query(
        layer, equals=equals, bbox=bbox, bbox_crs=bbox_crs, datetime=datetime, limit=limit, cursor=cursor,
        offset=offset, properties=properties, sortby=sortby, crs=crs, filter=filter, filter_lang=filter_lang,
        filter_crs=filter_crs,
        default_limit=default_limit, max_limit=max_limit,
    )
    return ItemsRequest(fmt, q)


ItemsRequestDep = Annotated[ItemsRequest, Depends(items_request)]


def check_district(district: str | None, city: CityProfile) -> None:
    """400 unless ``district`` (when given) is one of the city's district adcodes (its profile's prefix)."""
    if district is not None and not city.is_district_code(district):
        raise InvalidInputError(
            f"district must be a 6-digit {city.name_en} district adcode (starting {city.district_prefix}); "
            f"got {district!r}.",
            detail={"district": district},
        )
