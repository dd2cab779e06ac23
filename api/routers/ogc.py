"""OGC API Features Parts 1–3: landing page, conformance, collections, items, features, queryables.

GeoJSON is built by PostgreSQL (:mod:`layers.query`) and sent as text; this module only adds the
envelope (links, ``numberReturned``, ``numberMatched``) by string concatenation. HTML pages are
rendered from :mod:`api.ogc.html`.

The landing page lives at ``/ogc`` for every client and at ``/`` for clients that want JSON; HTML
at ``/`` is served here only until another router (the map viewer) defines ``GET /`` — see
:mod:`api.ogc.negotiation`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg import AsyncConnection, sql
from starlette.responses import Response

from api.access import Public, ReadableLayer, ReadAccessDep
from api.deps import ReadPoolDep, SettingsDep
from api.ogc import formats as ogc_formats
from api.ogc import html as ogc_html
from api.ogc.links import GEOJSON, HTML_TYPE, JSON_TYPE, OPENAPI_JSON, SCHEMA_JSON, base_url, link, with_query
from api.ogc.metadata import CONFORMANCE, city_bbox, crs_uris, property_schema, queryables, storage_crs
from api.ogc.negotiation import HTML, JSON, HtmlFallbackRoute, JsonPreferredRoute, negotiate
from api.params import ItemsRequestDep, doc_query, parse_crs_param
from api.routing import STATE_MIN_LSN
from api.settings import Settings
from gis.crs import CRS84
from gis.errors import InvalidInputError
from layers.city import CityProfile, current
from layers.models import Layer
from layers.query import FeatureQuery, column_kinds, fetch_feature_tagged, fetch_page, parse_feature_id, table_sql

ORDER = 10
router = APIRouter(tags=["OGC API Features"])

def _title(city: CityProfile) -> str:
    return f"{city.name}城市更新 OGC API — {city.name_en} urban renewal"


def _description(city: CityProfile) -> str:
    return (
        f"{city.name}城市更新图层（宗地、城中村、老旧小区、腾退土地、规划路、停车设施等）的 OGC API Features "
        f"服务，支持 CQL2 过滤与 CGCS2000 坐标系。OGC API Features (Parts 1–3) for {city.name_en}'s urban-renewal "
        "layers, with CQL2 filtering and CGCS2000 output."
    )


# --------------------------------------------------------------------------- helpers


def _json(body: Any, headers: dict[str, str] | None = None, media_type: str = JSON_TYPE) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type=media_type,
                    headers=headers)


def _self_and_alternate(url: str, fmt: str, json_type: str = JSON_TYPE) -> list[dict[str, Any]]:
    json_link = link(with_query(url, {"f": "json"}), "self" if fmt == JSON else "alternate", json_type,
                     "此文档的 JSON 格式 This document as JSON")
    html_link = link(with_query(url, {"f": "html"}), "self" if fmt == HTML else "alternate", HTML_TYPE,
                     "此文档的 HTML 格式 This document as HTML")
    return [json_link, html_link] if fmt == JSON else [html_link, json_link]


def _only_params(request: Request, allowed: set[str], *, strict: bool = True) -> None:
    """Reject unknown query parameters (items/feature) or, for metadata documents, ignore them.

    Metadata endpoints are lenient because clients such as GDAL forward a collection URL's query
    string (e.g. a ``filter`` meant for the items) to ``/collections/{id}``.
    """
    if not strict:
        return
    unknown = [k for k in request.query_params if k not in allowed]
    if unknown:
        raise InvalidInputError(
            f"Unknown parameter '{unknown[0]}'. This endpoint accepts: {', '.join(sorted(allowed))}."
        )


async def _extents(request: Request, conn: AsyncConnection[Any], layers: list[Layer]) -> dict[str, dict[str, Any]]:
    """Spatial (CRS84) and temporal extents, cached per layer version so big tables are scanned once."""
    cache: dict[tuple[str, int], dict[str, Any]] = request.app.state.__dict__.setdefault("ogc_extent_cache", {})
    min_lsn = int(request.scope.get("state", {}).get(STATE_MIN_LSN, 0))
    versions = await request.app.state.versions.lookup(conn, [layer.table for layer in layers], min_lsn)
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        key = (layer.id, versions.get(layer.table, 0))
        if key not in cache:
            temporal = [f.name for f in layer.fields if f.temporal]
            t0: sql.Composable
            t1: sql.Composable
            if temporal:
                t0 = sql.SQL("make_timestamptz(min({})::int, 1, 1, 0, 0, 0, 'UTC')").format(sql.Identifier(temporal[0]))
                t1 = sql.SQL("make_timestamptz(max({})::int, 12, 31, 23, 59, 59, 'UTC')").format(
                    sql.Identifier(temporal[-1]))
            else:
                t0, t1 = sql.SQL("min(updated_at)"), sql.SQL("max(updated_at)")
            stmt = sql.SQL(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), a, b FROM "
                "(SELECT ST_Extent(geom) AS e, {} AS a, {} AS b FROM {}) s"
            ).format(t0, t1, table_sql(layer))
            cur = await conn.execute(stmt)
            row = await cur.fetchone()
            bbox = [round(float(v), 7) for v in row[:4]] if row and row[0] is not None else city_bbox()
            interval = [
                row[4].astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if row and row[4] else None,
                row[5].astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if row and row[5] else None,
            ]
            cache[key] = {
                "spatial": {"bbox": [bbox], "crs": CRS84.uri},
                "temporal": {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
            }
        out[layer.id] = cache[key]
    return out


def _collection_doc(root: str, layer: Layer, extent: dict[str, Any], fmt: str = JSON) -> dict[str, Any]:
    url = f"{root}/collections/{layer.id}"
    links = _self_and_alternate(url, fmt)
    links += [
        link(with_query(url + "/items", {"f": "json"}), "items", GEOJSON, "要素 Items as GeoJSON"),
        link(with_query(url + "/items", {"f": "html"}), "items", HTML_TYPE, "要素 Items as HTML"),
        link(url + "/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables", SCHEMA_JSON,
             "可查询属性 Queryables"),
        link(url + "/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON_TYPE,
             "矢量瓦片 Vector tiles"),
        link(url + "/tiles/WebMercatorQuad/tilejson.json", "describedby", JSON_TYPE, "TileJSON"),
    ]
    for name, f in ogc_formats.items_formats().items():
        links.append(link(with_query(url + "/items", {"f": name}), "alternate", f.media_type,
                          f"下载 Download as {f.title}"))
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": layer.title,
        "description": f"{layer.title_en}. {layer.description}",
        "links": links,
        "extent": extent,
        "itemType": "feature",
        "crs": crs_uris(),
        "storageCrs": storage_crs(),
        "geometry_type": layer.geometry_type,
        "x-group": layer.group,
        "x-kind": layer.kind,
        "x-min-zoom": layer.min_zoom,
        "x-max-zoom": layer.max_zoom,
    }
    return doc


def _content_crs(uri: str) -> dict[str, str]:
    return {"Content-Crs": f"<{uri}>"}


# --------------------------------------------------------------------------- landing, conformance


def _landing(request: Request, settings: Settings, fmt: str) -> Response:
    root = base_url(request, settings)
    links = _self_and_alternate(f"{root}/ogc", fmt)
    links += [
        link(f"{root}/api", "service-desc", OPENAPI_JSON, "OpenAPI 3 定义 API definition"),
        link(f"{root}/api.html", "service-doc", HTML_TYPE, "API 文档 API documentation"),
        link(f"{root}/conformance", "conformance", JSON_TYPE, "一致性声明 Conformance"),
        link(f"{root}/conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance", JSON_TYPE,
             "一致性声明 Conformance"),
        link(f"{root}/collections", "data", JSON_TYPE, "图层 Collections"),
        link(f"{root}/collections", "http://www.opengis.net/def/rel/ogc/1.0/data", JSON_TYPE, "图层 Collections"),
        link(f"{root}/tiles/WebMercatorQuad/tilejson.json", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
             JSON_TYPE, "多图层矢量瓦片 Multi-layer vector tiles (TileJSON)"),
    ]
    title, description = _title(current()), _description(current())
    if fmt == HTML:
        return ogc_html.render("landing.html", title=title, description=description, links=links, root=root)
    return _json({"title": title, "description": description, "links": links})


root_json_router = APIRouter(route_class=JsonPreferredRoute)
root_html_router = APIRouter(route_class=HtmlFallbackRoute)


@root_json_router.get("/", summary="Landing page (JSON clients; browsers may get the map viewer)",
                      tags=["OGC API Features"], dependencies=[Public])
async def landing_root_json(request: Request, settings: SettingsDep,
                            f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """The OGC landing page at ``/`` for clients that ask for JSON."""
    return _landing(request, settings, JSON)


@root_html_router.get("/", include_in_schema=False, dependencies=[Public])
async def landing_root_html(request: Request, settings: SettingsDep) -> Response:
    """The OGC landing page as HTML at ``/``, until a map viewer takes that path."""
    return _landing(request, settings, HTML)


@router.get("/ogc", summary="Landing page", dependencies=[Public])
async def landing(request: Request, settings: SettingsDep,
                  f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """Links to the API definition, conformance and collections."""
    _only_params(request, {"f"}, strict=False)
    return _landing(request, settings, negotiate(request))


@router.get("/conformance", summary="Conformance classes", dependencies=[Public])
async def conformance(request: Request, settings: SettingsDep,
                      f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """The standards and options this service implements."""
    _only_params(request, {"f"}, strict=False)
    fmt = negotiate(request)
    root = base_url(request, settings)
    links = _self_and_alternate(f"{root}/conformance", fmt)
    if fmt == HTML:
        return ogc_html.render("conformance.html", title="一致性声明 Conformance", conforms=CONFORMANCE,
                               links=links, root=root)
    return _json({"conformsTo": CONFORMANCE, "links": links})


# --------------------------------------------------------------------------- collections


@router.get("/collections", summary="Every layer as an OGC collection")
async def collections(request: Request, pool: ReadPoolDep, settings: SettingsDep, access: ReadAccessDep,
                      f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """The collections the caller may read, with extents, CRSs and links."""
    _only_params(request, {"f"}, strict=False)
    fmt = negotiate(request)
    root = base_url(request, settings)
    layers = access.readable()
    async with pool.connection() as conn:
        extents = await _extents(request, conn, layers)
    docs = [_collection_doc(root, layer, extents[layer.id]) for layer in layers]
    links = _self_and_alternate(f"{root}/collections", fmt)
    if fmt == HTML:
        return ogc_html.render("collections.html", title="图层 Collections", links=links, root=root,
                               collections=docs)
    return _json({"links": links, "collections": docs, "crs": crs_uris()})


@router.get("/collections/{collection_id}", summary="One collection")
async def collection(request: Request, layer: ReadableLayer, pool: ReadPoolDep, settings: SettingsDep,
                     f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """A layer's metadata: extent, CRSs (incl. CGCS2000), links to items, queryables and tiles."""
    _only_params(request, {"f"}, strict=False)
    fmt = negotiate(request)
    root = base_url(request, settings)
    async with pool.connection() as conn:
        extent = (await _extents(request, conn, [layer]))[layer.id]
        sample = ""
        if fmt == HTML:
            q = FeatureQuery(layer=layer, limit=200)
            sample = (await fetch_page(conn, q, count=False)).features.decode()
    doc = _collection_doc(root, layer, extent, fmt)
    if fmt == HTML:
        return ogc_html.render(
            "collection.html", title=f"{layer.title} {layer.title_en}", c=doc, links=doc["links"], root=root,
            properties=property_schema(layer), **_map_context(layer, sample),
        )
    return _json(doc)


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties (JSON Schema)",
            response_class=Response, responses={200: {"content": {SCHEMA_JSON: {}, HTML_TYPE: {}}}})
async def collection_queryables(request: Request, layer: ReadableLayer, settings: SettingsDep,
                                f: Annotated[str | None, Query(description="json or html")] = None) -> Response:
    """The properties a CQL2 filter, an equality filter or ``sortby`` may use."""
    _only_params(request, {"f"}, strict=False)
    fmt = negotiate(request)
    root = base_url(request, settings)
    url = f"{root}/collections/{layer.id}/queryables"
    doc = queryables(layer, url)
    if fmt == HTML:
        return ogc_html.render("queryables.html", title=f"{layer.title} 可查询属性 Queryables", q=doc,
                               links=_self_and_alternate(url, fmt, SCHEMA_JSON), root=root)
    return _json(doc, media_type=SCHEMA_JSON)


def _map_context(layer: Layer, geojson_features: str) -> dict[str, Any]:
    colors = {s.code: s.color for s in layer.lifecycle.statuses} if layer.lifecycle else {}
    fc = '{"type":"FeatureCollection","features":' + (geojson_features or "[]") + "}"
    return {"geojson": fc, "colors": colors, "default_color": layer.style.color}


# --------------------------------------------------------------------------- items


@router.get("/collections/{collection_id}/items", summary="Features of a collection (GeoJSON, HTML)",
            response_class=Response,
            responses={200: {"content": {GEOJSON: {}, HTML_TYPE: {}}}, 400: {"description": "Invalid input"},
                       404: {"description": "Unknown collection"}})
async def items(request: Request, layer: ReadableLayer, pool: ReadPoolDep, settings: SettingsDep,
                items_req: ItemsRequestDep) -> Response:
    """Features, paged by keyset cursor (``next`` links) or by ``offset``; also ``<property>=<value>`` filters.

    The OGC parameters are declared and parsed by :func:`api.params.items_request`; this route
    gets the typed query and only builds the response envelope.
    """
    q = items_req.query
    if items_req.is_export:
        return await ogc_formats.items_formats()[items_req.format].handler(request, layer, q, pool, settings)
    fmt = items_req.format
    root = base_url(request, settings)
    url = f"{root}/collections/{layer.id}/items"
    async with pool.connection() as conn:
        page = await fetch_page(conn, q)
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("f", "cursor", "offset")]
    if q.offset is not None:
        params.append(("offset", str(q.offset)))  # self/alternate name this position
    links = [
        link(with_query(url, [*params, ("f", "json")]),
             "self" if fmt == JSON else "alternate", GEOJSON, "此页 GeoJSON This page as GeoJSON"),
        link(with_query(url, [*params, ("f", "html")]), "self" if fmt == HTML else "alternate", HTML_TYPE,
             "此页 HTML This page as HTML"),
    ]
    if q.cursor is not None:
        cur_param = request.query_params.get("cursor", "")  # the token as the client sent it
        for lk in links:
            lk["href"] = with_query(url, [*params, ("f", "json" if lk["type"] == GEOJSON else "html"),
                                          ("cursor", cur_param)])
    ftype = GEOJSON if fmt == JSON else HTML_TYPE
    fname = "json" if fmt == JSON else "html"
    if q.offset is not None:
        # paging by position keeps paging by position (the order and rows are the cursor pages')
        base = params[:-1]
        if page.next_offset is not None:
            links.append(link(with_query(url, [*base, ("f", fname), ("offset", str(page.next_offset))]), "next",
                              ftype, "下一页 Next page"))
        if page.prev_offset is not None:
            links.append(link(with_query(url, [*base, ("f", fname), ("offset", str(page.prev_offset))]), "prev",
                              ftype, "上一页 Previous page"))
    if page.next_cursor:
        links.append(link(with_query(url, [*params, ("f", fname), ("cursor", page.next_cursor)]), "next", ftype,
                          "下一页 Next page"))
    if page.prev_cursor:
        links.append(link(with_query(url, [*params, ("f", fname), ("cursor", page.prev_cursor)]), "prev", ftype,
                          "上一页 Previous page"))
    links.append(link(f"{root}/collections/{layer.id}", "collection", JSON_TYPE, layer.title))
    headers = _content_crs(q.output_crs.uri)
    if fmt == HTML:
        feats = json.loads(page.features)
        columns = list(q.properties) if q.properties is not None else [
            n for n in column_kinds(layer) if n not in ("id", "created_at")]
        if "status" in columns:
            columns.insert(columns.index("status") + 1, "status_label")
        labels = {**layer.labels, "status_label": "状态名称", "area_mu": "面积（亩）", "length_m": "长度（米）"}
        map_features = page.features.decode() if q.output_crs == CRS84 else "[]"
        return ogc_html.render(
            "items.html", title=f"{layer.title} {layer.title_en}", links=links, root=root, features=feats,
            columns=columns, labels=labels, collection_id=layer.id, number_returned=page.number_returned,
            number_matched=page.number_matched, headers=headers, precisions=layer.precisions,
            **_map_context(layer, map_features),
        )
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    tail: dict[str, Any] = {"numberReturned": page.number_returned}
    if page.number_matched is not None:
        tail["numberMatched"] = page.number_matched
    tail["timeStamp"] = stamp
    tail["links"] = links
    body = (b'{"type":"FeatureCollection","features":' + page.features + b","
            + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:].encode())
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature (GeoJSON, HTML)",
            response_class=Response,
            responses={200: {"content": {GEOJSON: {}, HTML_TYPE: {}}}, 404: {"description": "Unknown feature"}})
async def feature(
    request: Request, layer: ReadableLayer, feature_id: str, pool: ReadPoolDep, settings: SettingsDep,
    crs: Annotated[str | None, doc_query("crs")] = None,
    f: Annotated[str | None, Query(description="json or html")] = None,
) -> Response:
    """One feature by id, with links to its collection."""
    # the layer's property names are tolerated (and ignored): QGIS appends a layer URL's extra query
    # parameters, e.g. an equality filter such as district_code=130108, to every single-item read
    _only_params(request, {"f", "crs", *column_kinds(layer)})
    fmt = negotiate(request)
    out_crs = parse_crs_param(crs, "crs") if crs is not None else CRS84
    fid = parse_feature_id(layer, feature_id)
    root = base_url(request, settings)
    url = f"{root}/collections/{layer.id}/items/{fid}"
    async with pool.connection() as conn:
        text, etag = await fetch_feature_tagged(conn, layer, fid, out_crs)  # one round trip
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    extra_q = [("crs", crs)] if crs is not None else []
    links = [
        link(with_query(url, [*extra_q, ("f", "json")]), "self" if fmt == JSON else "alternate", GEOJSON,
             "此要素 GeoJSON This feature as GeoJSON"),
        link(with_query(url, [*extra_q, ("f", "html")]), "self" if fmt == HTML else "alternate", HTML_TYPE,
             "此要素 HTML This feature as HTML"),
        link(f"{root}/collections/{layer.id}", "collection", JSON_TYPE, layer.title),
    ]
    headers = _content_crs(out_crs.uri)
    headers["ETag"] = etag
    if fmt == HTML:
        feat = json.loads(text)
        labels = {**layer.labels, "status_label": "状态名称", "area_mu": "面积（亩）", "length_m": "长度（米）"}
        map_text = "[" + text + "]" if out_crs == CRS84 else "[]"
        return ogc_html.render("feature.html", title=f"{layer.title}：{feat['properties'].get('name', fid)}",
                               links=links, root=root, feature=feat, labels=labels, headers=headers,
                               precisions=layer.precisions,
                               **_map_context(layer, map_text))
    body = text[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False, separators=(",", ":")) + "}"
    return Response(body, media_type=GEOJSON, headers=headers)


# the root routers are exposed to app.py through ``router`` (one module, one router)
router.include_router(root_json_router)
router.include_router(root_html_router)
