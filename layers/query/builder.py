"""The SQL of a feature query: its WHERE condition (built once), its ORDER BY, its GeoJSON features.

Rows are always aliased ``t``; identifiers come from the layer registry only and every value is a
bound parameter. The geometry column stays bare in ``WHERE`` (query geometries are moved to
EPSG:4490), so the GiST index is used.

Public API
----------
build_where(query) -> Where
    The ``WHERE`` condition and its own parameters (placeholders ``%(w0)s``...), built once per
    request and reused by the planner estimate, the page and the count (:mod:`.execute`) and by
    the exporter.
where_clause(query, binder) -> sql.Composable
    The same condition bound through a caller's binder.
order_by(query, *, reverse=False, filter_first=False) -> sql.Composable
    The ``ORDER BY`` list matching ``sortby`` (stable: ``t.id`` last).
feature_sql(layer, crs=CRS84, properties=None) -> sql.Composable
    A text expression producing one GeoJSON Feature from the row ``t``.
one_feature_sql(layer, feature_id, crs=CRS84) -> tuple[sql.Composed, dict]
    ``SELECT`` of one feature's GeoJSON text by primary key, and its parameters.

Notes
-----
* ``datetime`` is matched against the layer's ``temporal: true`` fields: one year field is a
  calendar-year instant-interval; two (e.g. ``start_year``/``target_year``) are the feature's
  interval; with none, ``updated_at`` is used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from gis.crs import CRS84, CrsRef
from layers.models import Layer
from layers.query.common import (
    CAST_OF_KIND,
    GEOGRAPHIC_SRIDS,
    Binder,
    col,
    column_kinds,
    geometry_sql,
    output_properties,
    srid_of,
    table_sql,
)
from layers.query.cql2sql import filter_sql
from layers.query.model import FeatureQuery

__all__ = [
    "Where",
    "build_where",
    "feature_sql",
    "key_sql",
    "etag_sql",
    "one_feature_sql",
    "order_by",
    "properties_sql",
    "sort_terms",
    "where_clause",
]


@dataclass(frozen=True)
class Where:
    """A query's ``WHERE`` condition (rows aliased ``t``) with its own bound parameters.

    Its placeholders (``w0``, ``w1``...) cannot clash with those of a statement's other binder
    (``q0``...), so one ``Where`` goes into several statements: ``{**where.params, **b.params}``.
    """

    cond: sql.Composable
    params: Mapping[str, Any]
    coarse: sql.Composable | None = None
    """With a bbox: the condition with the bbox tested on bounding boxes only (``&&``, index-exact)."""
    exact: sql.Composable | None = None
    """With a bbox: the exact bbox test (``ST_Intersects``), to apply after :attr:`coarse`."""

    def with_params(self, other: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of this condition together with those of the statement around it."""
        return {**self.params, **other}


def build_where(q: FeatureQuery) -> Where:
    """The condition of ``q``, built (and its CQL2 translated) once."""
    b = Binder("w")
    conds, box = _where_parts(q, b)
    if box is None:
        return Where(_joined(conds, None), b.params)
    coarse = sql.SQL(" AND ").join(sql.SQL("({})").format(c)
                                   for c in [sql.SQL("{} && {}").format(col("geom"), box), *conds])
    exact = sql.SQL("ST_Intersects({}, {})").format(col("geom"), box)
    return Where(_joined(conds, box), b.params, coarse, exact)


def sort_terms(q: FeatureQuery) -> list[tuple[str, bool]]:
    """The sort order as (property, descending), always ending with ``id`` so it is total (keyset needs that)."""
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
            conds.append(sql.SQL("{} >= {}").format(col(last), b(start.astimezone(dt.UTC).year, "integer")))
        if end is not None:
            conds.append(sql.SQL("{} <= {}").format(col(first), b(end.astimezone(dt.UTC).year, "integer")))
    else:
        if start is not None:
            conds.append(sql.SQL("{} >= {}").format(col("updated_at"), b(start, "timestamptz")))
        if end is not None:
            conds.append(sql.SQL("{} <= {}").format(col("updated_at"), b(end, "timestamptz")))
    return sql.SQL(" AND ").join(conds)


def where_clause(q: FeatureQuery, binder: Binder) -> sql.Composable:
    """The ``WHERE`` condition of ``q`` for rows aliased ``t`` (``TRUE`` when nothing narrows)."""
    return _joined(*_where_parts(q, binder))


def _joined(conds: list[sql.Composable], box: sql.Composable | None) -> sql.Composable:
    if box is not None:
        conds = [sql.SQL("ST_Intersects({}, {})").format(col("geom"), box), *conds]
    if not conds:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(sql.SQL("({})").format(c) for c in conds)


def _where_parts(q: FeatureQuery, binder: Binder) -> tuple[list[sql.Composable], sql.Composable | None]:
    """The conditions other than the bbox, and the bbox as an EPSG:4490 geometry (None without one)."""
    kinds = column_kinds(q.layer)
    conds: list[sql.Composable] = []
    env4490: sql.Composable = sql.SQL("NULL")
    if q.ids is not None:
        conds.append(sql.SQL("{} = ANY({})").format(col("id"), binder(list(q.ids), "bigint[]")))
    if q.bbox is not None:
        minx, miny, maxx, maxy = q.bbox
        env: sql.Composable = sql.SQL("ST_MakeEnvelope({}, {}, {}, {})").format(
            binder(minx, "double precision"), binder(miny, "double precision"),
            binder(maxx, "double precision"), binder(maxy, "double precision"),
        )
        srid = srid_of(q.bbox_crs)
        if srid in GEOGRAPHIC_SRIDS:
            env4490 = sql.SQL("ST_SetSRID({}, 4490)").format(env)
        else:
            # densify so the curved edges of a projected box survive the transform
            env4490 = sql.SQL("ST_Transform(ST_Segmentize(ST_SetSRID({e}, {s}), "
                              "greatest({w}, {h}) / 32.0), 4490)").format(
                e=env, s=sql.Literal(srid), w=binder(maxx - minx, "double precision"),
                h=binder(maxy - miny, "double precision"))
    if q.datetime is not None:
        conds.append(_datetime_condition(q, binder))
    for name, value in q.equals:
        if value is None:
            conds.append(sql.SQL("{} IS NULL").format(col(name)))
        else:
            conds.append(sql.SQL("{} = {}").format(col(name), binder(value, CAST_OF_KIND[kinds[name]])))
    if q.filter is not None:
        conds.append(filter_sql(q.filter, q.layer, binder))
    return conds, (env4490 if q.bbox is not None else None)


def order_by(q: FeatureQuery, *, reverse: bool = False, filter_first: bool = False) -> sql.Composable:
    """``ORDER BY`` terms for ``q`` (NULLs last in the forward direction).

    ``filter_first`` orders by ``t.id + 0``: same order, but the planner cannot walk the primary
    key and filter (fatal when the matches cluster far along the key, as a small bbox does); it
    collects the matches through the spatial index and sorts them instead.
    """
    parts = []
    for name, desc in sort_terms(q):
        d = desc != reverse
        nulls = "NULLS LAST" if not reverse else "NULLS FIRST"
        term = sql.SQL("({} + 0)").format(col(name)) if (filter_first and name == "id") else col(name)
        parts.append(sql.SQL("{} {} {}").format(term, sql.SQL("DESC" if d else "ASC"), sql.SQL(nulls)))
    return sql.SQL(", ").join(parts)


def properties_sql(layer: Layer, props: Sequence[str] | None) -> sql.Composable:
    """JSON text of a feature's properties (``status_label`` next to ``status``), built by PostgreSQL."""
    names = list(props) if props is not None else output_properties(layer)
    pairs: list[sql.Composable] = []
    for name in names:
        pairs.append(sql.SQL("{}, {}").format(sql.Literal(name), col(name)))
        if name == "status" and layer.lifecycle is not None:
            whens = sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(sql.Literal(s.code), sql.Literal(s.label))
                for s in layer.lifecycle.statuses
            )
            pairs.append(sql.SQL("'status_label', CASE {} {} END").format(col("status"), whens))
    if not pairs:
        return sql.SQL("'{}'")
    # json_build_object takes at most 100 arguments; chunk and concatenate as jsonb only if needed
    chunks = [pairs[i:i + 45] for i in range(0, len(pairs), 45)]
    if len(chunks) == 1:
        return sql.SQL("json_build_object({})::text").format(sql.SQL(", ").join(pairs))
    return sql.SQL("({})::text").format(sql.SQL(" || ").join(
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(c)) for c in chunks))


_FEATURE_SQL: dict[tuple[int, CrsRef, tuple[str, ...] | None], tuple[Layer, sql.SQL]] = {}
""":func:`feature_sql`'s text per layer object, output CRS and property list (bounded by :data:`_FEATURE_SQL_MAX`)."""
_FEATURE_SQL_MAX = 256


def feature_sql(layer: Layer, crs: CrsRef = CRS84, properties: Sequence[str] | None = None) -> sql.Composable:
    """A text expression: the GeoJSON Feature of row ``t`` (``id`` = primary key, geometry in ``crs``).

    The geometry and properties are serialised by PostGIS/PostgreSQL; nothing is parsed in Python.
    Status codes are accompanied by ``status_label`` (the Chinese label).

    The expression binds no value (hence no binder), only the layer's column names and status labels, so it is
    composed once per layer, CRS and property list and kept as text: composing and rendering it
    took about a third of a millisecond of every items request (``bench/bench_api.py``'s small pages
    are about 10 ms). The entry keeps its layer object, so a key (which holds the object's ``id``)
    never answers for another layer.
    """
    key = (id(layer), crs, tuple(properties) if properties is not None else None)
    hit = _FEATURE_SQL.get(key)
    if hit is not None and hit[0] is layer:
        return hit[1]
    geom, digits = geometry_sql(crs)
    composed = sql.SQL(
        """'{{"type":"Feature","id":' || {id} || ',"geometry":' || ST_AsGeoJSON({geom}, {digits}, 0) """
        """|| ',"properties":' || {props} || '}}'"""
    ).format(id=col("id"), geom=geom, digits=sql.Literal(digits), props=properties_sql(layer, properties))
    text = sql.SQL(composed.as_string())
    if len(_FEATURE_SQL) >= _FEATURE_SQL_MAX:
        _FEATURE_SQL.clear()
    _FEATURE_SQL[key] = (layer, text)
    return text


def key_sql(q: FeatureQuery) -> sql.Composable:
    """A row's sort key values as JSON array text (what a cursor stores)."""
    return sql.SQL("json_build_array({})::text").format(sql.SQL(", ").join(col(n) for n, _ in sort_terms(q)))


def etag_sql(alias: str = "t") -> sql.Composable:
    """SQL for a feature's strong ETag (quoted), from its id and row version.

    ``xmin`` is the id of the transaction that wrote the row version, so it changes with every
    committed UPDATE and is the same for every reader: the API's GET (:func:`one_feature_sql`) and
    the edit endpoints (:mod:`layers.editing`) both compute the ETag with this expression, so they
    always agree.
    """
    a = sql.Identifier(alias)
    return sql.SQL("""('"' || left(md5({a}.id::text || '/' || {a}.xmin::text), 20) || '"')""").format(a=a)


def one_feature_sql(layer: Layer, feature_id: int, crs: CrsRef = CRS84) -> tuple[sql.Composed, dict[str, Any]]:
    """``SELECT`` of one feature's GeoJSON text and its ETag by primary key, and its parameters."""
    b = Binder()
    stmt = sql.SQL("SELECT {}, {} FROM {} AS t WHERE t.id = {}").format(
        feature_sql(layer, crs), etag_sql("t"), table_sql(layer), b(feature_id, "bigint"))
    return stmt, b.params
