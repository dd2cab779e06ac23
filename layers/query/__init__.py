"""A typed, reusable feature query: parsed OGC items parameters and CQL2, as parameterised SQL.

Used by the OGC API (``/collections/{id}/items``), the exporter (``renewal export --filter``,
``items?f=gpkg``), the planner queries and the editing endpoints, so a filter means the same thing
everywhere. The package is split the way tipg splits it; each module imports only those above it
in this list, so there are no cycles:

``common``
    The binder (named placeholders ``%(q0)s``...), column kinds, value coercion (by
    :mod:`layers.values`), the supported CRSs and their geometry/axis rules.
``model``
    :class:`FeatureQuery` and its parts (bbox, datetime interval, equality filters, CQL2
    :class:`Filter`, properties, sortby, limit, cursor or offset, output CRS): typed, no URL text, no SQL.
``cql2sql``
    CQL2 text/JSON → SQL condition (:func:`parse_filter`, :func:`filter_sql`); no database needed.
``builder``
    The WHERE condition (built once: :func:`build_where`), ORDER BY, GeoJSON feature SQL.
``paging``
    Keyset cursors, the page statement and the next/prev cursors of a page.
``density``
    A sampled per-layer density grid that estimates a bbox's matches in memory (plan choice without a round trip).
``execute``
    Running it: :func:`fetch_page`, :func:`fetch_feature`, :func:`fetch_one_serial`.

HTTP parameters are parsed in ``api.params`` (a FastAPI dependency) into a :class:`FeatureQuery`;
the CLI and notebooks build one directly::

    q = FeatureQuery(layer=layer, filter=parse_filter(layer, "status = 'started'"), limit=50)
    page = await fetch_page(conn, q)

Every value ends up as a bound parameter; identifiers come from the layer registry only.
CRS84 and EPSG:4326 are treated as CGCS2000 (EPSG:4490) without a datum shift: PROJ itself has
only a ballpark (identity) transformation between them, and they agree to centimetres.
"""

from __future__ import annotations

from layers.query.builder import (
    Where,
    build_where,
    feature_sql,
    one_feature_sql,
    order_by,
    sort_terms,
    where_clause,
)
from layers.query.common import (
    CAST_OF_KIND,
    GEOGRAPHIC_SRIDS,
    SUPPORTED_CRS,
    Binder,
    FeatureNotFoundError,
    axis_swapped,
    coerce,
    col,
    column_kinds,
    geometry_sql,
    output_properties,
    parse_feature_id,
    srid_of,
    status_value,
    storage_geom,
    table_sql,
    unknown_field,
)
from layers.query.cql2sql import MAX_FILTER_CHARS, filter_sql, parse_filter
from layers.query.execute import (
    COUNT_MAX_ROWS,
    ESTIMATE_TTL_S,
    FILTER_FIRST_MAX_ROWS,
    SERIAL_OPTIONS,
    choose_filter_first,
    fetch_feature,
    fetch_feature_tagged,
    fetch_one_serial,
    fetch_page,
    refresh_estimates,
)
from layers.query.model import MAX_OFFSET, NO_LIMIT, Cursor, FeatureQuery, Filter, SortKey, TimeInterval
from layers.query.paging import Page, decode_cursor, encode_cursor, keyset_condition, page_sql, read_page

__all__ = [
    "CAST_OF_KIND",
    "COUNT_MAX_ROWS",
    "FILTER_FIRST_MAX_ROWS",
    "ESTIMATE_TTL_S",
    "SERIAL_OPTIONS",
    "GEOGRAPHIC_SRIDS",
    "MAX_FILTER_CHARS",
    "MAX_OFFSET",
    "NO_LIMIT",
    "SUPPORTED_CRS",
    "Binder",
    "Cursor",
    "FeatureNotFoundError",
    "FeatureQuery",
    "Filter",
    "Page",
    "SortKey",
    "TimeInterval",
    "Where",
    "axis_swapped",
    "build_where",
    "choose_filter_first",
    "coerce",
    "col",
    "column_kinds",
    "decode_cursor",
    "encode_cursor",
    "feature_sql",
    "fetch_feature",
    "fetch_feature_tagged",
    "fetch_one_serial",
    "fetch_page",
    "refresh_estimates",
    "filter_sql",
    "geometry_sql",
    "keyset_condition",
    "one_feature_sql",
    "order_by",
    "output_properties",
    "page_sql",
    "parse_feature_id",
    "parse_filter",
    "read_page",
    "sort_terms",
    "srid_of",
    "status_value",
    "storage_geom",
    "table_sql",
    "unknown_field",
    "where_clause",
]
