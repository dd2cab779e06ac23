"""The browser map viewer at ``/`` and the small JSON endpoints only it needs.

The viewer itself is static (``api/viewer/``: HTML, CSS and vanilla ES modules, no build step);
MapLibre GL JS comes from ``node_modules`` through the ``/vendor`` whitelist, so it works on an
intranet with no internet access. Everything else it draws comes from the project's own APIs:
vector tiles, OGC API Features items, the progress API, and the endpoints below, which answer
questions nobody else does:

- ``/viewer/config``: the registry as the viewer needs it (groups, colours, labels zh/en), the
  districts with their bounding boxes, and the URLs of the other routers that are mounted (found
  from the app's routes, so the viewer follows their actual paths);
- ``/viewer/search``: features by name or code across every layer;
- ``/viewer/history/{layer}/{feature_id}``: one feature's status timeline and its area or length,
  its current status and (with ``as_of``) its status on the slider's date;
- ``/viewer/status-as-of``: every feature's status on a date by the rule of :mod:`layers.history`,
  which the viewer applies as MapLibre feature-state for the date slider.

``GET /`` is served with :class:`~api.ogc.negotiation.HtmlPreferredRoute` and a lower ``ORDER`` than
the OGC router, so browsers get the map while JSON clients (``Accept: application/json`` or
``?f=json``) fall through to the OGC landing page, which also stays at ``/ogc``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from psycopg import sql

from api.access import Public, ReadAccessDep, readable_layer_param
from api.city import CityDep
from api.deps import PoolDep, RegistryDep, SettingsDep
from api.ogc.negotiation import HtmlPreferredRoute
from api.params import AsOf, as_of_query
from gis.errors import InvalidInputError, NotFoundError
from layers.history import Params, status_join, target_features
from layers.models import Layer
from layers.plan import get_target
from layers.progress import parse_as_of

ORDER = 5
"""Before the OGC router, so the viewer's ``GET /`` is tried first (and declines JSON requests)."""

STATIC_DIR = Path(__file__).resolve().parents[1] / "viewer"
"""The viewer's own HTML, CSS and JavaScript."""

START_DATE = dt.date(2021, 1, 1)
"""First day of the date slider: the plan year and the start of the 14th Five-Year Plan."""

DEFAULT_ON = {
    "districts",
    "ring_roads",
    "hutuo_river",
    "urban_villages",
    "old_compounds",
    "vacated_land",
    "planned_roads",
    "parking_sites",
}
"""Layers switched on when the viewer opens; the others are one click away (parcels are heavy)."""

SEARCH_MAX = 50

router = APIRouter(tags=["viewer"])
_root = APIRouter(route_class=HtmlPreferredRoute)

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@_root.get("/", include_in_schema=False, dependencies=[Public])
async def viewer_page() -> FileResponse:
    """The map viewer for browsers (HTML); JSON clients get the OGC landing page instead."""
    return FileResponse(
        STATIC_DIR / "index.html", media_type=_CONTENT_TYPES[".html"], headers={"Cache-Control": "no-cache"}
    )


router.include_router(_root)


@router.get("/viewer", include_in_schema=False, dependencies=[Public])
async def viewer_page_alias() -> FileResponse:
    """The viewer under its own name too (for links that must not depend on content negotiation)."""
    return await viewer_page()


@router.get("/viewer/static/{path:path}", include_in_schema=False, dependencies=[Public])
async def viewer_static(path: str) -> FileResponse:
    """A file of the viewer (``api/viewer/``), never anything outside that folder."""
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file() or target.suffix not in _CONTENT_TYPES:
        raise NotFoundError(f"The viewer has no file '{path}'.")
    return FileResponse(target, media_type=_CONTENT_TYPES[target.suffix], headers={"Cache-Control": "no-cache"})


def _walk_paths(routes: Iterable[Any], prefix: str = "") -> Iterator[str]:
    """Every route path, also inside included routers (FastAPI may keep those as wrapped routers)."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield prefix + path
        inner = getattr(route, "original_router", None)
        if inner is not None:
            inner_prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from _walk_paths(inner.routes, prefix + inner_prefix)


def _route_paths(request: Request) -> set[str]:
    return set(_walk_paths(request.app.router.routes))


def _endpoints(paths: set[str]) -> dict[str, str | None]:
    """URLs of the other routers the viewer uses, or None where that router is not mounted."""

    def first(*candidates: str) -> str | None:
        return next((c for c in candidates if c in paths), None)

    def fill(path: str | None) -> str | None:
        if path is None:
            return None
        for name in ("{tms}", "{tileMatrixSetId}"):
            path = path.replace(name, "WebMercatorQuad")
        return (
            path.replace("{collectionId}", "{collection_id}")
            .replace("{featureId}", "{feature_id}")
            .replace("{fid}", "{feature_id}")
        )

    found = {
        "tiles": first(
            "/tiles/WebMercatorQuad/{z}/{x}/{y}", "/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "/tiles/{tms}/{z}/{x}/{y}"
        ),
        "collection_tiles": first(
            "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
            "/collections/{collection_id}/tiles/{tms}/{z}/{x}/{y}",
            "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}",
            "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        ),
        "items": first("/collections/{collection_id}/items", "/collections/{collectionId}/items"),
        "item": first(
            "/collections/{collection_id}/items/{feature_id}",
            "/collections/{collection_id}/items/{fid}",
            "/collections/{collectionId}/items/{featureId}",
        ),
        "progress": first("/progress"),
        "ranking": first("/progress/ranking"),
        "progress_target": first("/progress/{target}"),
        "progress_map": first("/maps/progress"),
        "ogc": first("/ogc"),
        "vendor": first("/vendor/{path:path}", "/vendor/{package}/{path:path}", "/vendor/{pkg}/{path:path}"),
    }
    return {key: fill(path) for key, path in found.items()}


def _layer_config(layer: Layer, count: int | None) -> dict[str, Any]:
    lifecycle = None
    if layer.lifecycle is not None:
        lifecycle = {
            "label": layer.lifecycle.label,
            "label_en": layer.lifecycle.label_en,
            "statuses": [
                {"code": s.code, "label": s.label, "label_en": s.label_en, "color": s.color}
                for s in layer.lifecycle.statuses
            ],
        }
    fields: list[dict[str, Any]] = [
        {"name": "code", "label": layer.code_label, "label_en": "Code"},
        {"name": "name", "label": layer.name_label, "label_en": "Name"},
        {"name": "district_code", "label": "区县代码", "label_en": "District code"},
    ]
    fields += [
        {
            "name": f.name,
            "label": f.label,
            "label_en": f.label_en,
            "unit": f.unit,
            "choices": {c.code: [c.label, c.label_en or c.label] for c in f.choices or []} or None,
        }
        for f in layer.fields
    ]
    return {
        "id": layer.id,
        "title": layer.title,
        "title_en": layer.title_en,
        "group": layer.group,
        "group_en": layer.group_en,
        "kind": layer.kind,
        "geometry_type": layer.geometry_type,
        "measure": layer.measure,
        "measure_field": layer.measure_field,
        "min_zoom": layer.min_zoom,
        "max_zoom": layer.max_zoom,
        "style": layer.style.model_dump(),
        "lifecycle": lifecycle,
        "fields": fields,
        "count": count,
        "visible": layer.id in DEFAULT_ON,
    }


@router.get("/viewer/config", summary="Everything the map viewer needs to draw its panels")
async def viewer_config(
    request: Request, pool: PoolDep, registry: RegistryDep, settings: SettingsDep, access: ReadAccessDep,
    city: CityDep,
) -> dict[str, Any]:
    """Layers grouped as in the registry, districts with bounding boxes, and the URLs of the other APIs.

    Title, centre and zoom come from the database's city profile (:mod:`layers.city`).

    Counts and district extents are read from the database in one round trip; the rest comes from
    the registry, so a new layer appears in the viewer without touching it. A layer the caller may
    not read is listed (its registry entry is documentation) with ``count: null`` and ``readable: false``.
    """
    counts_sql = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::text, count(*) FROM {}").format(
            sql.Literal(layer.id), sql.Identifier(layer.schema_name, layer.table)
        )
        for layer in access.readable()
    )
    districts = access.layer("districts")
    districts_sql = sql.SQL(
        "SELECT coalesce(json_agg(json_build_object('code', code, 'name', name, 'bbox', "
        "json_build_array(round(ST_XMin(geom)::numeric, 5), round(ST_YMin(geom)::numeric, 5), "
        "round(ST_XMax(geom)::numeric, 5), round(ST_YMax(geom)::numeric, 5))) ORDER BY code), '[]'::json)::text, "
        "json_build_array(ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), "
        "ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)))::text FROM {}"
    ).format(sql.Identifier(districts.schema_name, districts.table))
    async with pool.connection() as conn:
        cur = await conn.execute(counts_sql)
        counts = {name: int(n) for name, n in await cur.fetchall()}
        cur = await conn.execute(districts_sql)
        row = await cur.fetchone()
    district_list = json.loads(row[0]) if row else []
    city_bbox = json.loads(row[1]) if row and row[1] else None
    groups: dict[str, dict[str, Any]] = {}
    layers = []
    for layer in registry:
        entry = _layer_config(layer, counts.get(layer.id, 0) if access.may_read(layer) else None)
        entry["readable"] = access.may_read(layer)
        layers.append(entry)
        group = groups.setdefault(
            layer.group, {"id": layer.group, "label": layer.group, "label_en": layer.group_en, "layers": []}
        )
        group["layers"].append(layer.id)
    return {
        "title": city.title,
        "title_en": city.title_en,
        "city": {"name": city.name, "name_en": city.name_en, "adcode": city.adcode, "area_srid": city.area_srid,
                 "extent": list(city.extent), "catalog": city.catalog is not None,
                 "demo": city.demo is not None},
        "center": list(city.centre),
        "zoom": city.zoom,
        "city_bbox": city_bbox,
        "start_date": START_DATE.isoformat(),
        "today": dt.date.today().isoformat(),
        "groups": list(groups.values()),
        "layers": layers,
        "districts": district_list,
        "endpoints": _endpoints(_route_paths(request)),
        "basemaps": {"tianditu_key": settings.tianditu_key},
        "downloads": [{"f": "gpkg", "label": "GeoPackage"}, {"f": "xlsx", "label": "Excel"}],
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/viewer/search", summary="Features by name or code, across every layer")
async def viewer_search(
    pool: PoolDep,
    access: ReadAccessDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="Part of a name or code, e.g. 华药 or TTD-001")],
    only: Annotated[Layer | None, Depends(readable_layer_param("layer", description="Only this layer",
                                                                 required=False))] = None,
    limit: Annotated[int, Query(ge=1, le=SEARCH_MAX)] = 20,
) -> Response:
    """Case-insensitive substring match on ``name`` and ``code``; exact and prefix matches first.

    Each hit carries its bounding box (CRS84) so the viewer can zoom to it without another request.
    """
    text = q.strip()
    if not text:
        raise InvalidInputError("Type part of a name or code to search for.")
    # Search spans layers, so it searches only the layers the caller may read.
    layers = [only] if only is not None else access.readable()
    parts = []
    for lyr in layers:
        status = sql.SQL("status") if lyr.has_status else sql.SQL("NULL::text")
        parts.append(
            sql.SQL(
                "(SELECT {lid}::text AS layer, id, code, name, district_code, {status} AS status, "
                "CASE WHEN lower(name) = lower(%(q)s) OR lower(code) = lower(%(q)s) THEN 0 "
                "WHEN name ILIKE %(prefix)s OR code ILIKE %(prefix)s THEN 1 ELSE 2 END AS rank, "
                "ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1 "
                "FROM {table} WHERE name ILIKE %(pattern)s OR code ILIKE %(pattern)s "
                "ORDER BY rank, length(name), id LIMIT %(limit)s)"
            ).format(lid=sql.Literal(lyr.id), status=status, table=sql.Identifier(lyr.schema_name, lyr.table))
        )
    query = sql.SQL(
        "SELECT json_build_object('query', %(q)s::text, 'hits', coalesce(json_agg(json_build_object("
        "'layer', h.layer, 'id', h.id, 'code', h.code, 'name', h.name, 'district_code', h.district_code, "
        "'status', h.status, 'bbox', json_build_array(h.x0, h.y0, h.x1, h.y1)) "
        "ORDER BY h.rank, length(h.name), h.layer, h.id), '[]'::json))::text "
        "FROM (SELECT * FROM ({union}) AS u ORDER BY rank, length(name), layer, id LIMIT %(limit)s) AS h"
    ).format(union=sql.SQL(" UNION ALL ").join(parts))
    escaped = _escape_like(text)
    params = {"q": text, "prefix": escaped + "%", "pattern": "%" + escaped + "%", "limit": limit}
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    return Response(row[0] if row else '{"hits": []}', media_type="application/json")


def _lifecycle_layer(layer: Layer) -> Layer:
    if not layer.has_status:
        raise InvalidInputError(f"Layer '{layer.id}' ({layer.title}) has no status, so it has no status history.")
    return layer


@router.get("/viewer/history/{layer}/{feature_id}", summary="A feature's status timeline and its area or length")
async def viewer_history(
    lyr: Annotated[Layer, Depends(readable_layer_param("layer", where="path", description="Layer id"))],
    feature_id: int,
    pool: PoolDep,
    as_of: Annotated[str | None, as_of_query("Date YYYY-MM-DD of the map: adds the status as of that date")] = None,
) -> Response:
    """The status changes of one feature from ``renewal.status_history``, oldest first.

    Also returns the feature's code, name, current status (``status``) and area (mu) or length
    (m), so the popup has everything even when the OGC items router is not mounted. With
    ``as_of`` (the viewer's date slider) it adds ``status_as_of`` and ``status_since`` by the
    rule of :mod:`layers.history` (the rule that colours the map; null: the feature did not
    exist yet), so the popup shows the date's status and labels the current one as current.
    """
    day = parse_as_of(as_of) if as_of is not None else None
    params = Params(layer=lyr.id, table=lyr.table, id=feature_id, measure=lyr.measure_field, as_of=day)
    measure = (sql.SQL("t.{}").format(sql.Identifier(lyr.measure_field)) if lyr.measure_field
               else sql.SQL("NULL::double precision"))
    status = sql.SQL("t.status") if lyr.has_status else sql.SQL("NULL::text")
    join: sql.Composable
    if lyr.has_status and day is not None:
        join = status_join(lyr, day, params)
        as_of_status = sql.SQL("s.status")
        as_of_since = sql.SQL("s.since")
    else:
        join = sql.SQL("")
        as_of_status = sql.SQL("NULL::text")
        as_of_since = sql.SQL("NULL::date")
    query = sql.SQL(
        "SELECT json_build_object('layer', %(layer)s::text, 'id', t.id, 'code', t.code, 'name', t.name, "
        "'district_code', t.district_code, 'status', {status}, 'measure', %(measure)s::text, "
        "'measure_value', round({measure}::numeric, 2), "
        "'as_of', %(as_of)s::date, 'status_as_of', {as_of_status}, 'status_since', {as_of_since}, "
        "'history', coalesce((SELECT json_agg(json_build_object('from_status', h.from_status, "
        "'to_status', h.to_status, 'effective_date', h.effective_date, 'source_doc', h.source_doc, "
        "'note', h.note) ORDER BY h.effective_date, h.id) FROM renewal.status_history h "
        "WHERE h.layer = %(table)s AND h.feature_id = t.id), '[]'::json))::text "
        "FROM {table} AS t {join} WHERE t.id = %(id)s"
    ).format(status=status, measure=measure, table=sql.Identifier(lyr.schema_name, lyr.table), join=join,
             as_of_status=as_of_status, as_of_since=as_of_since)
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"Layer '{lyr.id}' ({lyr.title}) has no feature with id {feature_id}.")
    return Response(row[0], media_type="application/json")


_AS_OF_SQL = """
WITH f AS (
  SELECT t.id, {status} AS status
  FROM {table} AS t
  {join}
  WHERE (%(district)s::text IS NULL OR t.district_code = %(district)s)
    AND (%(x0)s::float8 IS NULL OR t.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4490))
)
SELECT json_build_object(
  'layer', %(layer)s::text, 'as_of', %(as_of)s::date, 'district', %(district)s::text,
  'states', CASE WHEN %(states)s THEN (SELECT coalesce(json_object_agg(id, status), '{{}}'::json) FROM f) END,
  'counts', (SELECT coalesce(json_object_agg(coalesce(status, 'none'), n), '{{}}'::json)
             FROM (SELECT status, count(*) AS n FROM f GROUP BY status) AS c),
  'total', (SELECT count(*) FROM f))::text
"""


def _parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | tuple[None, None, None, None]:
    if not bbox:
        return (None, None, None, None)
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    except ValueError:
        raise InvalidInputError("bbox must be four numbers: minLon,minLat,maxLon,maxLat (CRS84).") from None
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidInputError("bbox must be minLon,minLat,maxLon,maxLat with min < max, in degrees (CRS84).")
    return (x0, y0, x1, y1)


@router.get("/viewer/status-as-of", summary="Every feature's status on a date (for the date slider)")
async def viewer_status_as_of(
    pool: PoolDep,
    layer: Annotated[Layer, Depends(readable_layer_param("layer", description="A layer with a lifecycle, "
                                                                               "e.g. old_compounds"))],
    as_of: Annotated[str | None, as_of_query("Date YYYY-MM-DD; omitted: the current status")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="District adcode, e.g. 130102")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (CRS84): only features here")] = None,
    states: Annotated[bool, Query(description="false: only the counts per status")] = True,
) -> Response:
    """``{states: {id: status}, counts: {status: n}}`` as of the date, from ``renewal.status_history``.

    Without ``as_of``, the current status. With it, the rule of :mod:`layers.history`: the
    ``to_status`` of the last change effective on or before the date; without one, the first
    lifecycle status if the feature was created by then; otherwise the feature did not exist
    yet and its status is null (counted as ``none``).
    """
    lyr = _lifecycle_layer(layer)
    x0, y0, x1, y1 = _parse_bbox(bbox)
    day = parse_as_of(as_of) if as_of is not None else None
    params = Params({
        "layer": lyr.id,
        "table": lyr.table,
        "as_of": day,
        "district": district,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "states": states,
    })
    status: sql.Composable
    join: sql.Composable
    if day is None:
        status, join = sql.SQL("t.status"), sql.SQL("")
    else:
        status, join = sql.SQL("s.status"), status_join(lyr, day, params)
    query = sql.SQL(_AS_OF_SQL).format(table=sql.Identifier(lyr.schema_name, lyr.table), status=status, join=join)
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    return Response(row[0], media_type="application/json")


_TARGET_SQL = """
SELECT json_build_object('target', %(target)s::text, 'layer', %(layer)s::text, 'as_of', %(as_of)s::date,
  'ids', coalesce(json_agg(t.id ORDER BY t.id), '[]'::json),
  'bbox', CASE WHEN count(*) > 0 THEN json_build_array(
    ST_XMin(ST_Extent(t.geom)), ST_YMin(ST_Extent(t.geom)), ST_XMax(ST_Extent(t.geom)), ST_YMax(ST_Extent(t.geom)))
  END)::text
FROM {features} AS t
WHERE t.counts AND (%(district)s::text IS NULL OR t.district_code = %(district)s)
"""


@router.get("/viewer/target-features", summary="The features that count towards a plan target on a date")
async def viewer_target_features(
    pool: PoolDep,
    access: ReadAccessDep,
    target: Annotated[str, Query(description="Plan target id, e.g. compounds_renovated_2021")],
    as_of: AsOf = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="District adcode")] = None,
) -> Response:
    """Ids and extent of the features a target counts as of the date, so the map can highlight them.

    The rule is :func:`layers.history.target_features`, the one progress counts with: as of the
    date the feature is at or beyond the target status, first reached it inside the target's window,
    and passes the target's filters.
    """
    goal = get_target(target)
    access.layer(goal.layer)  # the ids are features of the target's layer
    day = parse_as_of(as_of)
    params = Params(target=goal.id, layer=goal.layer, as_of=day, district=district)
    query = sql.SQL(_TARGET_SQL).format(features=target_features(goal, day, params, registry=access.registry))
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    return Response(row[0], media_type="application/json")
