"""Mapbox vector tiles (MVT) per collection and for several layers at once, with TileJSON.

Tiles are built by PostGIS (``ST_AsMVTGeom``/``ST_AsMVT``) and returned as bytes. Each layer is
drawn only within its registry zoom range (``min_zoom``..``max_zoom``) and carries ``id``, ``code``,
``name``, ``status`` and the fields marked ``tile: true``. A labelled polygon layer also has an MVT
layer ``<id>:label`` of label points (``id``, ``name``, ``status``) at its label zooms, each polygon's
point in one tile only (:func:`layers.styles.label_points` says why). Geometry is simplified per zoom (half a
256-px screen pixel) before clipping; points are never simplified. From ``QUANTISE_MIN_ZOOM``
geometry goes from degrees to tile units by an affine map, unsimplified, and a feature wholly
inside the tile skips ``ST_AsMVTGeom`` (:func:`_tile_geometry` says why and what it keeps).

Caching: the ETag is derived from ``renewal.layer_version`` of the layers in the tile (bumped by a
trigger on every write, announced by NOTIFY and kept in memory by :mod:`api.versions`), so a
tile's ETag changes the moment its data change, and a 304 or a cached tile costs no database
round trip. Responses carry
``Cache-Control: no-cache`` (clients revalidate and get a cheap ``304``) unless the URL pins the
current version with ``?v=<version token>`` (then ``max-age=RENEWAL_TILE_CACHE_MAX_AGE_S``). An
in-process LRU keyed by the same versions saves re-rendering popular tiles; it can never serve a
stale tile because a new version is a new key.

Paths use the XYZ convention ``{z}/{x}/{y}`` that web maps use (OGC API Tiles names them
``{tileMatrix}/{tileCol}/{tileRow}``; the templated links say so).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from psycopg import sql
from starlette.responses import Response

from api.access import ReadableLayer, ReadableLayers
from api.city import CityDep
from api.deps import ReadPoolDep, SettingsDep
from api.ogc.links import JSON_TYPE, MVT, base_url, link
from api.routing import ReadPool
from api.settings import Settings
from api.versions import LayerVersions
from gis.crs import STORAGE_SRID
from gis.errors import NotFoundError
from gis.tilegrid import tile_affine
from layers.city import CityProfile
from layers.models import Layer
from layers.overview import overview_tile_sql, shows_overview
from layers.query import fetch_one_serial, table_sql
from layers.styles import label_points

ORDER = 20
router = APIRouter(tags=["Vector tiles"])

TMS: Final = "WebMercatorQuad"
TMS_URI: Final = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EXTENT: Final = 4096
BUFFER: Final = 64
MAX_Z: Final = 24
EARTH_CIRCUMFERENCE_M: Final = 40075016.685578488
QUANTISE_MIN_ZOOM: Final = 15
"""From this zoom (a tile unit at most 0.3 m) features inside a tile skip ``ST_AsMVTGeom`` (:func:`_tile_geometry`)."""
TILE_SCHEMA: Final = "t3"
"""Bump when the tile attributes or simplification change, so old ETags stop matching."""
CACHE_MAX_ITEMS: Final = 4096
CACHE_MAX_BYTES: Final = 64 * 1024 * 1024
_MVT_TYPES: Final = {"text": "String", "integer": "Number", "number": "Number", "boolean": "Boolean",
                     "date": "String"}


class TileNotFoundError(NotFoundError):
    """A tile outside the tile matrix set, or an unknown tile matrix set."""

    title = "Tile not found"


def tile_columns(layer: Layer) -> list[str]:
    """Attributes carried in tiles: id, code, name, status and the ``tile: true`` fields."""
    cols = ["code", "name"]
    if layer.has_status:
        cols.append("status")
    cols += [f.name for f in layer.fields if f.tile and f.name not in cols]
    return cols


def _parse_tile(tms: str, z: str, x: str, y: str) -> tuple[int, int, int]:
    if tms != TMS:
        raise TileNotFoundError(f"Tile matrix set '{tms}' is not offered; use {TMS}.")
    try:
        zi, xi, yi = int(z), int(x), int(y.removesuffix(".pbf").removesuffix(".mvt"))
    except ValueError:
        raise TileNotFoundError(f"Tile {z}/{x}/{y} is not a tile address (integers z/x/y).") from None
    if not 0 <= zi <= MAX_Z or not 0 <= xi < 2**zi or not 0 <= yi < 2**zi:
        raise TileNotFoundError(f"Tile {z}/{x}/{y} is outside {TMS} (zoom 0–{MAX_Z}, x and y below 2^zoom).")
    return zi, xi, yi


def _layer_tile_sql(layer: Layer, z: int, x: int, y: int, params: dict[str, Any]) -> sql.Composable:
    """``ST_AsMVT`` of one layer's features in tile z/x/y (bytea, possibly empty).

    There is deliberately no ``WHERE geom IS NOT NULL`` around the subquery: PostgreSQL would
    flatten it into the scan filter and evaluate ``ST_AsMVTGeom`` twice per row (measured 3x
    slower on a 16,000-parcel z14 tile); ``ST_AsMVT`` itself skips rows whose geometry is NULL
    (clipped away entirely).
    """
    cols = sql.SQL(", ").join(sql.Identifier("t", c) for c in tile_columns(layer))
    rows = sql.SQL(
        "SELECT t.id, {cols}, {g} AS geom FROM {table} AS t "
        "WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid})"
    ).format(cols=cols, g=_tile_geometry(layer, z, x, y, params), table=table_sql(layer),
             srid=sql.Literal(STORAGE_SRID))
    return _mvt_layer(layer.id, rows)


def _mvt_layer(name: str, rows: sql.Composable) -> sql.Composable:
    """``ST_AsMVT`` of ``rows`` (``id``, attributes, ``geom`` in tile units) as MVT layer ``name``; ``''`` for none."""
    return sql.SQL(
        "(SELECT coalesce(ST_AsMVT(m, {name}, {extent}, 'geom', 'id'), ''::bytea) FROM ({rows}) AS m)"
    ).format(name=sql.Literal(name), extent=sql.Literal(EXTENT), rows=rows)


def _label_points_sql(layer: Layer, name: str) -> sql.Composable:
    """``ST_AsMVT`` of a polygon layer's label points in tile z/x/y, layer ``name`` (bytea, possibly empty).

    The point is ``ST_PointOnSurface``: always inside the polygon, where a centroid can fall outside
    a crescent or into a hole. It belongs to the one tile whose half-open bounds hold it in Web
    Mercator (west and south edges in, east and north edges out), so no name is written twice and
    none is lost on a shared edge. A feature without a name has no point.
    """
    cols = [sql.SQL("t.id"), sql.SQL("t.name")] + ([sql.SQL("t.status")] if layer.has_status else [])
    # OFFSET 0 keeps the point computed once per row: a flattened subquery would repeat the expression
    # at each of its five uses (measured 5.4 -> 2.3 ms for the points of a z16 parcel tile).
    rows = sql.SQL(
        "SELECT p.id, p.name{status}, ST_AsMVTGeom(p.q, p.box, {extent}, 0, false) AS geom FROM ("
        "SELECT {cols}, ST_Transform(ST_PointOnSurface(t.geom), 3857) AS q, e.box "
        "FROM (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS box) AS e, {table} AS t "
        "WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {srid}) AND t.name <> '' OFFSET 0"
        ") AS p WHERE ST_X(p.q) >= ST_XMin(p.box) AND ST_X(p.q) < ST_XMax(p.box) "
        "AND ST_Y(p.q) > ST_YMin(p.box) AND ST_Y(p.q) <= ST_YMax(p.box)"
    ).format(extent=sql.Literal(EXTENT), cols=sql.SQL(", ").join(cols), srid=sql.Literal(STORAGE_SRID),
             status=sql.SQL(", p.status") if layer.has_status else sql.SQL(""), table=table_sql(layer))
    return _mvt_layer(name, rows)


def _label_point_zooms(layer: Layer) -> tuple[str, int, int] | None:
    """(MVT layer, minzoom, maxzoom) of ``layer``'s label points (:func:`label_points`) within the layer's own zooms.

    The one statement of that range: tiles carry the points at exactly the zooms TileJSON announces.
    """
    points = label_points(layer)
    if points is None:
        return None
    name, first, below = points
    return name, max(first, layer.min_zoom), layer.max_zoom if below is None else min(layer.max_zoom, below - 1)


def _has_label_points(layer: Layer, z: int) -> str | None:
    """The MVT layer of ``layer``'s label points if tiles at zoom ``z`` carry them."""
    zooms = _label_point_zooms(layer)
    return zooms[0] if zooms is not None and zooms[1] <= z <= zooms[2] else None


def _tile_geometry(layer: Layer, z: int, x: int, y: int, params: dict[str, Any]) -> sql.Composable:
    """A feature's geometry in tile units: projected ``ST_AsMVTGeom``, or from ``QUANTISE_MIN_ZOOM`` a cheaper path.

    ``ST_AsMVTGeom`` of the projected geometry costs a Web Mercator projection of every vertex, then
    clipping and re-validation of every polygon (wagyu), whether or not it crosses the tile's edge:
    about two thirds of a z16 parcel tile's time. From ``QUANTISE_MIN_ZOOM`` both are avoided where
    they add nothing:

    * Degrees map to tile units with one affine transform (:mod:`gis.tilegrid`: exact at the tile's
      edges, within 0.06 units of the projected position at z15 and less above, below the rounding
      to whole units), so nothing is projected.
    * A feature whose bounding box lies inside the buffered tile needs no clipping: it is mapped,
      snapped to whole units and its polygon rings are oriented as MVT requires (exterior clockwise on
      screen). Stored geometries are valid (every layer's CHECK), the affine map keeps them valid,
      and at these zooms a unit is at most 0.3 m, so snapping can make a ring touch itself only
      where the feature is narrower than that. A feature that collapses is left out, as
      ``ST_AsMVTGeom`` leaves it out.
    * A feature crossing the buffered tile's edge keeps ``ST_AsMVTGeom`` (clipped and re-validated),
      given the geometry in degrees and the tile's bounds in degrees, which applies the same affine
      map: a vertex shared by a clipped and an unclipped parcel lands on the same unit in both.

    Nothing is simplified from this zoom: parcels keep their few vertices at these scales, and
    simplifying without re-validation could make rings cross. The boxes are sub-selects so that a
    prepared (generic) plan builds them once per tile, not once per row. Measured on a million
    parcels: a z16 tile's statement 1.7-1.8x cheaper (``bench/bench_api.py``: 2.0-2.35x tipg's throughput).
    """
    if z >= QUANTISE_MIN_ZOOM:
        return _quantised_geometry(layer, z, x, y, params)
    projected: sql.Composable = sql.SQL("ST_Transform(t.geom, 3857)")
    if layer.geometry_type not in ("Point", "MultiPoint"):
        projected = sql.SQL("ST_Simplify({}, %(tol)s, true)").format(projected)
    params["tol"] = EARTH_CIRCUMFERENCE_M / (512 * 2**z)
    return sql.SQL("ST_AsMVTGeom({g}, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {extent}, {buffer}, true)").format(
        g=projected, extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER))


def _quantised_geometry(layer: Layer, z: int, x: int, y: int, params: dict[str, Any]) -> sql.Composable:
    """The geometry in tile units from ``QUANTISE_MIN_ZOOM``, mapped from degrees (see :func:`_tile_geometry`)."""
    a = tile_affine(z, x, y, EXTENT, BUFFER)
    params.update(q_sx=a.sx, q_tx=a.tx, q_sy=a.sy, q_ty=a.ty,
                  q_w=a.box.west, q_s=a.box.south, q_e=a.box.east, q_n=a.box.north,
                  t_w=a.tile.west, t_s=a.tile.south, t_e=a.tile.east, t_n=a.tile.north)
    oriented: sql.Composable = sql.SQL("t.geom")
    if layer.geometry_type in ("Polygon", "MultiPolygon"):
        # Clockwise in degrees (y up) is clockwise on screen after the y flip: MVT's exterior ring.
        oriented = sql.SQL("ST_ForcePolygonCW(t.geom)")
    empty = sql.Literal(f"SRID={STORAGE_SRID};{layer.geometry_type.upper()} EMPTY")
    return sql.SQL(
        "CASE WHEN t.geom @ (SELECT ST_MakeEnvelope(%(q_w)s, %(q_s)s, %(q_e)s, %(q_n)s, {srid})) "
        "THEN NULLIF(ST_SnapToGrid(ST_Affine({o}, %(q_sx)s, 0, 0, %(q_sy)s, %(q_tx)s, %(q_ty)s), 1), "
        "{empty}::geometry) "
        "ELSE ST_AsMVTGeom(t.geom, (SELECT ST_MakeEnvelope(%(t_w)s, %(t_s)s, %(t_e)s, %(t_n)s)::box2d), "
        "{extent}, {buffer}, true) END"
    ).format(srid=sql.Literal(STORAGE_SRID), o=oriented, empty=empty, extent=sql.Literal(EXTENT),
             buffer=sql.Literal(BUFFER))


def tile_sql(layers: list[Layer], z: int, x: int, y: int) -> tuple[sql.Composed | sql.SQL, dict[str, Any]]:
    """One statement returning the MVT of every layer visible at zoom ``z`` (concatenated, bytea)."""
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT}
    visible = [layer for layer in layers if layer.min_zoom <= z <= layer.max_zoom or shows_overview(layer, z)]
    if not visible:
        return sql.SQL("SELECT ''::bytea"), params
    parts: list[sql.Composable] = []
    for layer in visible:
        if shows_overview(layer, z):
            parts.append(overview_tile_sql(layer, EXTENT, params))
            continue
        parts.append(_layer_tile_sql(layer, z, x, y, params))
        if (points := _has_label_points(layer, z)) is not None:
            parts.append(_label_points_sql(layer, points))
    return sql.SQL("SELECT {}").format(sql.SQL(" || ").join(parts)), params


def _served_tile_sql(layers: list[Layer], z: int, x: int, y: int) -> tuple[sql.Composed, dict[str, Any]]:
    """:func:`tile_sql` plus the versions of the layers *in the same snapshot* (one round trip).

    The tile cache stores a tile under the versions memory predicted only when the snapshot that
    drew it had exactly those versions, so a replica that lags, or a notification still on its
    way, can never file old features under a new key.
    """
    stmt, params = tile_sql(layers, z, x, y)
    params["tables"] = [layer.table for layer in layers]
    return sql.SQL("SELECT t.*, (SELECT json_object_agg(layer, version) FROM renewal.layer_version "
                   "WHERE layer = ANY(%(tables)s)) FROM ({}) AS t").format(stmt), params


def _version_token(layers: list[Layer], versions: dict[str, int]) -> str:
    raw = TILE_SCHEMA + ";" + ";".join(f"{layer.id}:{versions.get(layer.table, 0)}" for layer in layers)
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:16]


def _cache(request: Request) -> OrderedDict[tuple[Any, ...], bytes]:
    cache: OrderedDict[tuple[Any, ...], bytes] | None = getattr(request.app.state, "tile_cache", None)
    if cache is None:
        cache = OrderedDict()
        request.app.state.tile_cache = cache
        request.app.state.tile_cache_bytes = 0
    return cache


def _cache_put(request: Request, key: tuple[Any, ...], data: bytes) -> None:
    cache = _cache(request)
    cache[key] = data
    request.app.state.tile_cache_bytes += len(data)
    while len(cache) > CACHE_MAX_ITEMS or request.app.state.tile_cache_bytes > CACHE_MAX_BYTES:
        _, old = cache.popitem(last=False)
        request.app.state.tile_cache_bytes -= len(old)


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def _headers(settings: Settings, token: str, v: str | None) -> dict[str, str]:
    max_age = settings.tile_cache_max_age_s if v == token else 0
    return {
        "ETag": f'W/"{token}"',
        "Cache-Control": f"public, max-age={max_age}" if max_age else "no-cache",
        "Vary": "Accept-Encoding",
    }


def _from_memory(request: Request, key: tuple[Any, ...], headers: dict[str, str]) -> Response | None:
    """A 304 or a cached tile, with no database work; None when the tile must be drawn."""
    if _etag_matches(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    data = _cache(request).get(key)
    if data is None:
        return None
    _cache(request).move_to_end(key)
    return _tile_response(data, headers)


def _tile_response(data: bytes, headers: dict[str, str]) -> Response:
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


async def _serve_tile(request: Request, pool: ReadPool, settings: Settings, layers: list[Layer],
                      z: int, x: int, y: int, v: str | None) -> Response:
    """Answer a tile: from memory when the versions are known (no round trip), else drawn in one.

    Versions come from :class:`api.versions.LayerVersions` (kept by LISTEN/NOTIFY); only while
    its listener is down, or for a client whose own write it has not synced yet, are they read
    on the connection first (a second round trip, as before).
    """
    versions_store: LayerVersions = request.app.state.versions
    tables = [layer.table for layer in layers]
    ids = tuple(layer.id for layer in layers)
    versions = versions_store.known(tables, pool.min_lsn)
    if versions is not None:
        token = _version_token(layers, versions)
        headers = _headers(settings, token, v)
        hit = _from_memory(request, (ids, token, z, x, y), headers)
        if hit is not None:
            return hit
    async with pool.connection() as conn:
        if versions is None:
            versions = await versions_store.lookup(conn, tables, pool.min_lsn)
            token = _version_token(layers, versions)
            headers = _headers(settings, token, v)
            hit = _from_memory(request, (ids, token, z, x, y), headers)
            if hit is not None:
                return hit
        stmt, params = _served_tile_sql(layers, z, x, y)
        row = await fetch_one_serial(conn, stmt, params, prepare=True)
    data = bytes(row[0]) if row and row[0] is not None else b""
    drawn = {str(k): int(n) for k, n in (row[1] or {}).items()} if row else {}
    versions_store.merge(drawn)
    if all(drawn.get(t, 0) == versions.get(t, 0) for t in tables):
        _cache_put(request, (ids, token, z, x, y), data)
    else:  # drawn from another snapshot (a lagging replica): label it with the versions it shows
        headers = _headers(settings, _version_token(layers, drawn), v)
    return _tile_response(data, headers)


def _check_zoom(layers: list[Layer], z: int, who: str) -> None:
    """404 for a zoom outside the range the TileJSON announces (a client asking there is misconfigured).

    Inside the range an empty tile stays a 204: that is "nothing here", not "no such tile".
    """
    low, high = _zoom_range(layers)
    if not low <= z <= high:
        raise TileNotFoundError(f"{who} drawn at zoom {low}–{high} (see the TileJSON's minzoom and maxzoom); "
                                f"zoom {z} is outside that range.", detail={"minzoom": low, "maxzoom": high})


def _min_zoom(layer: Layer) -> int:
    """The first zoom with anything in the layer's tiles (its overview, if it has one)."""
    return layer.overview_min_zoom if layer.overview_min_zoom is not None else layer.min_zoom


def _zoom_range(layers: list[Layer]) -> tuple[int, int]:
    """The zooms with anything in these layers' tiles: what TileJSON announces and tile requests must stay in."""
    return (min((_min_zoom(layer) for layer in layers), default=0),
            max((layer.max_zoom for layer in layers), default=MAX_Z))


def _tilejson(root: str, layers: list[Layer], tiles_url: str, name: str, description: str,
              city: CityProfile) -> dict[str, Any]:
    vector_layers = []
    for layer in layers:
        fields: dict[str, str] = {"id": "Number", "code": "String", "name": "String"}
        if layer.has_status:
            fields["status"] = "String"
        for f in layer.fields:
            if f.tile:
                fields[f.name] = _MVT_TYPES[f.type]
        vector_layers.append({"id": layer.id, "description": f"{layer.title} {layer.title_en}", "fields": fields,
                              "minzoom": _min_zoom(layer), "maxzoom": layer.max_zoom})
        if (zooms := _label_point_zooms(layer)) is not None:
            label_fields = {k: v for k, v in fields.items() if k in ("id", "name", "status")}
            vector_layers.append({"id": zooms[0], "description": f"{layer.title}（名称位置）label points",
                                  "fields": label_fields, "minzoom": zooms[1], "maxzoom": zooms[2]})
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": description,
        "scheme": "xyz",
        "tiles": [tiles_url],
        **dict(zip(("minzoom", "maxzoom"), _zoom_range(layers), strict=True)),
        "bounds": list(city.extent),
        "center": [city.centre[0], city.centre[1], math.ceil(city.zoom)],
        "vector_layers": vector_layers,
        "attribution": f"{city.name}城市更新" + ("（演示数据 synthetic demo data）" if city.demo else ""),
    }


# --------------------------------------------------------------------------- per collection


@router.get("/collections/{collection_id}/tiles", summary="Vector tilesets of a collection")
async def collection_tilesets(request: Request, layer: ReadableLayer, settings: SettingsDep) -> Response:
    """The WebMercatorQuad MVT tileset of the collection (OGC API Tiles tileset list)."""
    root = base_url(request, settings)
    base = f"{root}/collections/{layer.id}/tiles"
    body = {
        "links": [link(base, "self", JSON_TYPE), link(f"{root}/collections/{layer.id}", "collection", JSON_TYPE)],
        "tilesets": [{
            "title": f"{layer.title} {layer.title_en}",
            "dataType": "vector",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": TMS_URI,
            "links": [
                link(f"{base}/{TMS}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}", "item", MVT, "MVT tiles (z/x/y)",
                     templated=True),
                link(f"{base}/{TMS}/tilejson.json", "describedby", JSON_TYPE, "TileJSON"),
                link(TMS_URI, "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", JSON_TYPE),
            ],
        }],
    }
    return _json_response(body)


def _json_response(body: Any) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type=JSON_TYPE)


@router.get("/collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json", summary="TileJSON of a collection")
async def collection_tilejson(request: Request, layer: ReadableLayer, settings: SettingsDep,
                              city: CityDep) -> Response:
    """TileJSON 3.0 for the collection's MVT tiles, with its zoom range and attributes."""
    root = base_url(request, settings)
    url = f"{root}/collections/{layer.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"
    return _json_response(_tilejson(root, [layer], url, layer.id, f"{layer.title} {layer.title_en}", city))


@router.get("/collections/{collection_id}/tiles/{tms}/{z}/{x}/{y}", summary="MVT tile of a collection",
            response_class=Response, responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"},
                                                304: {"description": "Not modified"},
                                                404: {"description": "Outside the tile matrix set or the zooms"}})
async def collection_tile(
    request: Request, layer: ReadableLayer, tms: str, z: str, x: str, y: str, pool: ReadPoolDep, settings: SettingsDep,
    v: Annotated[str | None, Query(description="Version token from a previous ETag (enables max-age)")] = None,
) -> Response:
    """One MVT tile with one layer named after the collection id, and its label points (404 outside its zooms)."""
    zi, xi, yi = _parse_tile(tms, z, x, y)
    _check_zoom([layer], zi, f"Layer '{layer.id}' is")
    return await _serve_tile(request, pool, settings, [layer], zi, xi, yi, v)


# --------------------------------------------------------------------------- multi-layer (viewer)


@router.get("/tiles/WebMercatorQuad/tilejson.json", summary="TileJSON of the multi-layer tiles")
async def multi_tilejson(request: Request, chosen: ReadableLayers, settings: SettingsDep,
                         city: CityDep) -> Response:
    """TileJSON for ``/tiles/WebMercatorQuad/{z}/{x}/{y}`` with one vector layer per readable registry layer."""
    root = base_url(request, settings)
    url = f"{root}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"
    if request.query_params.get("layers"):
        url += "?layers=" + ",".join(layer.id for layer in chosen)
    description = f"{city.name}城市更新图层 {city.name_en} renewal layers"
    return _json_response(_tilejson(root, chosen, url, "renewal", description, city))


@router.get("/tiles/{tms}/{z}/{x}/{y}", summary="Multi-layer MVT tile for the map viewer", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"},
                       304: {"description": "Not modified"}})
async def multi_tile(
    request: Request, tms: str, z: str, x: str, y: str, pool: ReadPoolDep, settings: SettingsDep,
    chosen: ReadableLayers,
    v: Annotated[str | None, Query(description="Version token from a previous ETag (enables max-age)")] = None,
) -> Response:
    """One MVT tile holding every chosen layer visible at this zoom (one MVT layer per readable registry layer)."""
    zi, xi, yi = _parse_tile(tms, z, x, y)
    _check_zoom(chosen, zi, "The chosen layers are")
    return await _serve_tile(request, pool, settings, chosen, zi, xi, yi, v)

