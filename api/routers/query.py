"""The planner's everyday spatial queries: what is here, what is inside, what is nearest, district summary.

Every answer is one SQL statement that builds its JSON in PostgreSQL and returns text. Distances are
geodesic metres (``geography``), areas are mu in the city's area CRS (``area_mu`` columns, or the area of an
intersection measured the same way); the geometry column stays bare in ``WHERE`` (a degree box around
the query geometry prefilters on the GiST index, then the exact metric test runs).

Point inputs may be in CRS84/WGS84 (default), CGCS2000, the city's Gauss-Krüger CRS, EPSG:3857, or the Chinese web-map
datums GCJ02 (Gaode/Tencent) and BD09 (Baidu): ``lon``/``lat`` are the x/y of that CRS (easting/northing
for projected ones).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Final, Literal

import shapely
import shapely.geometry
from fastapi import APIRouter, Body, Query, Request
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.auth import readable_layers
from api.city import CityDep
from api.deps import ReadPoolDep, RegistryDep
from gis.crs import CRS84, CrsRef, outside_city, parse_crs, transform_coords, transform_geometry
from gis.errors import GeometryError, InvalidInputError, NotFoundError
from layers.city import CityProfile
from layers.models import Layer
from layers.query import Binder, feature_sql, table_sql
from layers.registry import Registry

ORDER = 30
router = APIRouter(prefix="/query", tags=["Planner queries"])

MAX_DISTANCE_M: Final = 10_000.0
MAX_K: Final = 100
MAX_WITHIN_FEATURES: Final = 10_000
MU_PER_M2: Final = 0.0015
STORAGE_STORAGE: Final = CrsRef("epsg", 4490)


def _json_text(text: str | None) -> Response:
    return Response(text or "null", media_type="application/json")


def _point_4490(lon: float, lat: float, crs: str | None, city: CityProfile) -> tuple[float, float]:
    """The query point in CGCS2000 lon/lat; 400 if not finite or outside the city."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInputError("lon and lat must be finite numbers.")
    ref = parse_crs(crs) if crs else CRS84
    if ref.kind == "epsg" and ref.epsg not in (4326, 4490, city.area_srid, 3857):
        raise InvalidInputError(f"crs {ref.label} is not accepted here; use CRS84, EPSG:4326, EPSG:4490, "
                                f"EPSG:{city.area_srid}, EPSG:3857, GCJ02 or BD09.")
    xs, ys = transform_coords(ref, STORAGE_STORAGE, [lon], [lat])
    x, y = float(xs[0]), float(ys[0])
    if not (math.isfinite(x) and math.isfinite(y)) or bool(outside_city([x], [y], city.bbox)[0]):
        raise InvalidInputError(
            f"The point ({lon}, {lat}) in {ref.label} lies outside {city.name_en} ({city.bbox.describe()}). "
            "Check the order (lon first) and the CRS."
        )
    return x, y


def _degree_box(lat: float, metres: float) -> tuple[float, float]:
    """Half-sizes in degrees (lon, lat) of a box sure to hold every point within ``metres`` (prefilter)."""
    dlat = metres / 110_000.0 + 1e-6
    dlon = metres / (111_000.0 * math.cos(math.radians(min(89.0, abs(lat) + 1.0)))) + 1e-6
    return dlon, dlat


def _status_label_sql(layer: Layer) -> sql.Composable:
    if layer.lifecycle is None:
        return sql.SQL("NULL::text")
    whens = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(s.code), sql.Literal(s.label)) for s in layer.lifecycle.statuses
    )
    return sql.SQL("CASE t.status {} END").format(whens)


def _status_sql(layer: Layer) -> sql.Composable:
    return sql.SQL("t.status") if layer.has_status else sql.SQL("NULL::text")


def _measure_sql(layer: Layer) -> tuple[str, sql.Composable]:
    m = layer.measure_field
    if m is None:
        return "measure", sql.SQL("NULL::double precision")
    return m, sql.Identifier("t", m)


def _parse_layer_list(registry: Registry, text: str | list[str] | None) -> list[Layer]:
    if text is None or (isinstance(text, str) and not text.strip()):
        return list(registry)
    names = text if isinstance(text, list) else [p.strip() for p in text.split(",") if p.strip()]
    out: list[Layer] = []
    for name in names:
        if name not in registry:
            raise InvalidInputError(f"layers: '{name}' is not a layer. Known layers: {', '.join(registry.ids)}.",
                                    detail={"layer": name})
        layer = registry.get(name)
        if layer not in out:
            out.append(layer)
    return out


# --------------------------------------------------------------------------- what is here


@router.get("/point", summary="What is here: district, ring zone, land parcel and every feature near a point")
async def point(
    request: Request, pool: ReadPoolDep, registry: RegistryDep, city: CityDep,
    lon: Annotated[float, Query(description="Longitude (or easting for projected CRSs)")],
    lat: Annotated[float, Query(description="Latitude (or northing for projected CRSs)")],
    crs: Annotated[str | None, Query(description="CRS of lon/lat: CRS84 (default), EPSG:4490, EPSG:4547, "
                                                 "EPSG:3857, GCJ02, BD09")] = None,
    distance: Annotated[float, Query(ge=0, le=MAX_DISTANCE_M, description="Search radius in metres")] = 100.0,
    layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: all)")] = None,
) -> Response:
    """District, ring zone, the containing land parcel, and each feature within ``distance`` metres.

    Features are sorted by distance; ``contains`` is true when the feature covers the point
    (distance 0).
    """
    x, y = _point_4490(lon, lat, crs, city)
    chosen = _parse_layer_list(registry, layers)
    b = Binder()
    pt = sql.SQL("ST_SetSRID(ST_MakePoint({}, {}), 4490)").format(b(x, "double precision"), b(y, "double precision"))
    dlon, dlat = _degree_box(y, distance)
    box = sql.SQL("ST_Expand({}, {}, {})").format(pt, b(dlon, "double precision"), b(dlat, "double precision"))
    dist = b(distance, "double precision")
    parts = []
    for layer in chosen:
        mkey, msql = _measure_sql(layer)
        parts.append(sql.SQL(
            "SELECT {lid}::text AS layer, {title}::text AS layer_title, t.id, t.code, t.name, {status} AS status, "
            "{label} AS status_label, t.district_code, {mkey}::text AS measure_name, "
            "round({msql}::numeric, 3) AS measure, "
            "round(ST_Distance(t.geom::geography, {pt}::geography)::numeric, 2) AS distance_m, "
            "ST_Intersects(t.geom, {pt}) AS contains "
            "FROM {table} AS t WHERE t.geom && {box} AND ST_DWithin(t.geom::geography, {pt}::geography, {dist})"
        ).format(lid=sql.Literal(layer.id), title=sql.Literal(layer.title), status=_status_sql(layer),
                 label=_status_label_sql(layer), mkey=sql.Literal(mkey), msql=msql, pt=pt, table=table_sql(layer),
                 box=box, dist=dist))
    near = sql.SQL(" UNION ALL ").join(parts) if parts else sql.SQL(
        "SELECT NULL::text AS layer, NULL::text, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL::numeric, "
        "NULL::numeric AS distance_m, NULL::boolean WHERE FALSE")
    sub: list[sql.Composable] = []
    for lid, key, extra in (("districts", "district", None), ("ring_zones", "ring_zone", "zone")):
        if lid in registry:
            ref = registry.get(lid)
            cols: sql.Composable = sql.SQL("'id', t.id, 'code', t.code, 'name', t.name")
            if extra:
                cols = sql.SQL("{}, {}, {}").format(cols, sql.Literal(extra), sql.Identifier("t", extra))
            sub.append(sql.SQL("{}, (SELECT json_build_object({}) FROM {} AS t WHERE ST_Intersects(t.geom, {}) "
                               "ORDER BY t.id LIMIT 1)").format(sql.Literal(key), cols, table_sql(ref), pt))
    if "land_parcels" in registry and registry.get("land_parcels") in readable_layers(request):  # read policy
        parcels = registry.get("land_parcels")
        sub.append(sql.SQL("'land_parcel', (SELECT ({})::json FROM {} AS t WHERE ST_Intersects(t.geom, {}) "
                           "ORDER BY t.id LIMIT 1)").format(feature_sql(parcels, b), table_sql(parcels), pt))
    stmt = sql.SQL(
        "SELECT json_build_object('point', json_build_object('lon', {x}, 'lat', {y}, 'crs', 'EPSG:4490'), "
        "'distance_m', {dist}, {sub}, "
        "'features', coalesce((SELECT json_agg(n ORDER BY n.distance_m, n.layer, n.id) FROM ({near}) AS n), "
        "'[]'))::text"
    ).format(x=b(x, "double precision"), y=b(y, "double precision"), dist=b(distance, "double precision"),
             sub=sql.SQL(", ").join(sub) if sub else sql.SQL("'district', NULL"), near=near)
    async with pool.connection() as conn:
        cur = await conn.execute(stmt, b.params)
        row = await cur.fetchone()
    return _json_text(row[0] if row else None)


# --------------------------------------------------------------------------- within an area


class WithinBody(BaseModel):
    """A posted area: a GeoJSON Polygon/MultiPolygon (or a Feature holding one) and what to count in it."""

    model_config = ConfigDict(extra="forbid")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, or a Feature with one")
    crs: str | None = Field(default=None, description="CRS of the coordinates (default CRS84; GCJ02/BD09 accepted)")
    layers: list[str] | None = None
    predicate: Literal["intersects", "within"] = "intersects"
    limit: int = Field(default=1000, ge=0, le=MAX_WITHIN_FEATURES)


def _area_from_selector(registry: Registry, b: Binder, district: str | None, ring_zone: str | None,
                        belt_zone: str | None) -> tuple[sql.Composable, str, str]:
    """SQL for the area geometry (EPSG:4490) named by exactly one selector, its kind and the value."""
    given = [(k, v) for k, v in (("district", district), ("ring_zone", ring_zone), ("belt_zone", belt_zone))
             if v is not None and v.strip()]
    if len(given) != 1:
        raise InvalidInputError(
            "Give exactly one area: district= (adcode or name, e.g. 130102 or 长安区), ring_zone= (inside_2nd, "
            "between_2nd_3rd, outside_3rd or the Chinese name), belt_zone= (a zone code or a zone type such as "
            "flood_channel), or POST a GeoJSON polygon."
        )
    kind, value = given[0]
    value = value.strip()
    layer_id = {"district": "districts", "ring_zone": "ring_zones", "belt_zone": "hutuo_belt_zones"}[kind]
    layer = registry.get(layer_id)
    v1, v2, v3 = b(value), b(value), b(value)
    extra = {"district": sql.SQL("FALSE"), "ring_zone": sql.SQL("t.zone = {}").format(v3),
             "belt_zone": sql.SQL("t.zone_type = {}").format(v3)}[kind]
    cond = sql.SQL("(t.code = {} OR t.name = {} OR {})").format(v1, v2, extra)
    return sql.SQL("(SELECT ST_Union(t.geom) FROM {} AS t WHERE {})").format(table_sql(layer), cond), kind, value


def _posted_area(body: WithinBody, b: Binder, city: CityProfile) -> sql.Composable:
    geom = body.geometry
    if geom.get("type") == "Feature":
        geom = geom.get("geometry") or {}
    if geom.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeometryError("The posted geometry must be a GeoJSON Polygon or MultiPolygon (or a Feature with one).")
    try:
        shp = shapely.geometry.shape(geom)
    except Exception:  # noqa: BLE001 - any malformed GeoJSON is the caller's error
        raise GeometryError("The posted polygon is not valid GeoJSON (rings must be lists of [x, y] positions).") \
            from None
    coords = shapely.get_coordinates(shp)
    if shp.is_empty or not math.isfinite(float(coords.sum())):
        raise GeometryError("The posted polygon is empty or has non-finite coordinates.")
    ref = parse_crs(body.crs) if body.crs else CRS84
    shp = transform_geometry(shp, ref, STORAGE_STORAGE)
    if not shp.is_valid:
        shp = shapely.make_valid(shp)
    c = shapely.get_coordinates(shp)
    if bool(outside_city(c[:, 0], c[:, 1], city.bbox).all()):
        raise GeometryError(f"The posted polygon lies entirely outside {city.name_en}; check the CRS and axis order.")
    wkb = shapely.to_wkb(shapely.force_2d(shp), hex=True)
    return sql.SQL("ST_SetSRID(ST_GeomFromWKB(decode({}, 'hex')), 4490)").format(b(wkb))


def _within_sql(layers: list[Layer], area: sql.Composable, predicate: str, limit: int, b: Binder,
                area_info: dict[str, Any], srid: int) -> sql.Composable:
    pred = "ST_Within" if predicate == "within" else "ST_Intersects"
    per_layer = []
    for layer in layers:
        mkey, _ = _measure_sql(layer)
        inside_key = {"area": "area_mu_inside", "length": "length_m_inside"}.get(layer.measure, "measure_inside")
        per_layer.append(sql.SQL(
            "SELECT {lid} AS layer, json_build_object("
            "'layer', {lid}, 'title', {title}, 'count', count(*), {mkey}, round(coalesce(sum(m), 0)::numeric, 3), "
            "{ikey}, round(coalesce(sum(mi), 0)::numeric, 3), "
            "'by_status', coalesce((SELECT json_object_agg(st, json_build_object('label', lb, 'count', n, {mkey}, "
            "round(coalesce(sm, 0)::numeric, 3))) FROM (SELECT status AS st, min(label) AS lb, count(*) AS n, "
            "sum(m) AS sm "
            "FROM f WHERE f.layer = {lid} AND status IS NOT NULL GROUP BY status) s), '{{}}'::json), "
            "'features', coalesce((SELECT json_agg(json_build_object('id', id, 'code', code, 'name', name, 'status', "
            "status, 'status_label', label, {mkey}, round(m::numeric, 3)) ORDER BY id) FROM "
            "(SELECT * FROM f WHERE f.layer = {lid} ORDER BY id LIMIT {lim}) ff), '[]'::json)"
            ") AS doc FROM f WHERE f.layer = {lid}"
        ).format(lid=sql.Literal(layer.id), title=sql.Literal(layer.title), mkey=sql.Literal(mkey),
                 ikey=sql.Literal(inside_key), lim=b(limit, "integer")))
    feats = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {lid}::text AS layer, t.id, t.code, t.name, {status} AS status, {label} AS label, "
            "{msql}::double precision AS m, ({clip})::double precision AS mi "
            "FROM {table} AS t, a WHERE {pred}(t.geom, a.g)"
        ).format(lid=sql.Literal(layer.id), status=_status_sql(layer), label=_status_label_sql(layer),
                 msql=_measure_sql(layer)[1], clip=_clip_sql(layer, srid), table=table_sql(layer), pred=sql.SQL(pred))
        for layer in layers
    )
    return sql.SQL(
        "WITH a AS MATERIALIZED (SELECT {area} AS g), f AS MATERIALIZED ({feats}) "
        "SELECT CASE WHEN (SELECT g FROM a) IS NULL THEN NULL ELSE json_build_object("
        "'area', ({info}::jsonb || jsonb_build_object('area_mu', round((SELECT ST_Area(ST_Transform(g, {srid})) * {mu} "
        "FROM a)::numeric, 3)))::json, 'predicate', {pred}, 'layers', "
        "coalesce((SELECT json_agg(doc ORDER BY ord) FROM ({docs}) d), '[]'::json))::text END"
    ).format(area=area, feats=feats, info=b(json.dumps(area_info, ensure_ascii=False)), mu=sql.Literal(MU_PER_M2),
             srid=sql.Literal(int(srid)),
             pred=sql.Literal(predicate),
             docs=sql.SQL(" UNION ALL ").join(
                 sql.SQL("SELECT {} AS ord, doc FROM ({}) x").format(sql.Literal(i), p)
                 for i, p in enumerate(per_layer)))


def _clip_sql(layer: Layer, srid: int) -> sql.Composable:
    """The measure of the part inside the area, in the city's area CRS (as the stored columns)."""
    if layer.measure == "area":
        return sql.SQL("CASE WHEN ST_CoveredBy(t.geom, a.g) THEN t.area_mu "
                       "ELSE ST_Area(ST_Transform(ST_Intersection(t.geom, a.g), {})) * {} END").format(
            sql.Literal(int(srid)), sql.Literal(MU_PER_M2))
    if layer.measure == "length":
        return sql.SQL("CASE WHEN ST_CoveredBy(t.geom, a.g) THEN t.length_m "
                       "ELSE ST_Length(ST_Transform(ST_Intersection(t.geom, a.g), {})) END").format(
            sql.Literal(int(srid)))
    return sql.SQL("NULL")


async def _run_within(pool: Any, stmt: sql.Composable, params: dict[str, Any], what: str) -> Response:
    async with pool.connection() as conn:
        cur = await conn.execute(stmt, params)
        row = await cur.fetchone()
    if row is None or row[0] is None:
        raise NotFoundError(f"No area matches {what}.")
    return _json_text(row[0])


@router.get("/within", summary="Features of chosen layers inside a district, ring zone or Hutuo belt zone")
async def within(
    pool: ReadPoolDep, registry: RegistryDep, city: CityDep,
    district: Annotated[str | None, Query(description="District adcode or name, e.g. 130102 or 长安区")] = None,
    ring_zone: Annotated[str | None, Query(description="inside_2nd, between_2nd_3rd, outside_3rd or name")] = None,
    belt_zone: Annotated[str | None, Query(description="Hutuo belt zone code or type, e.g. flood_channel")] = None,
    layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: renewal layers)")] = None,
    predicate: Annotated[Literal["intersects", "within"], Query(description="intersects (default) or within")] = (
        "intersects"),
    limit: Annotated[int, Query(ge=0, le=MAX_WITHIN_FEATURES, description="Features listed per layer")] = 1000,
) -> Response:
    """Per layer: count, total and inside-the-area measure (mu or metres), counts by status, and the features."""
    b = Binder()
    area, kind, value = _area_from_selector(registry, b, district, ring_zone, belt_zone)
    chosen = _parse_layer_list(registry, layers) if layers else [x for x in registry if x.kind == "renewal"]
    stmt = _within_sql(chosen, area, predicate, limit, b, {"kind": kind, "value": value}, city.area_srid)
    return await _run_within(pool, stmt, b.params, f"{kind}='{value}'")


@router.post("/within", summary="Features of chosen layers inside a posted GeoJSON polygon")
async def within_polygon(pool: ReadPoolDep, registry: RegistryDep, city: CityDep,
                         body: Annotated[WithinBody, Body()]) -> Response:
    """The same answer as ``GET /query/within`` for a polygon drawn by the planner."""
    b = Binder()
    area = _posted_area(body, b, city)
    chosen = _parse_layer_list(registry, body.layers) if body.layers else [x for x in registry if x.kind == "renewal"]
    stmt = _within_sql(chosen, area, body.predicate, body.limit, b, {"kind": "polygon"}, city.area_srid)
    return await _run_within(pool, stmt, b.params, "the posted polygon")


# --------------------------------------------------------------------------- nearest


@router.get("/nearest", summary="The k nearest features of a layer to a point or to another feature")
async def nearest(
    pool: ReadPoolDep, registry: RegistryDep, city: CityDep,
    layer: Annotated[str, Query(description="Layer to search, e.g. parking_sites")],
    lon: Annotated[float | None, Query(description="Longitude / easting of the point")] = None,
    lat: Annotated[float | None, Query(description="Latitude / northing of the point")] = None,
    crs: Annotated[str | None, Query(description="CRS of lon/lat (default CRS84)")] = None,
    from_layer: Annotated[str | None, Query(description="Or: measure from a feature of this layer")] = None,
    from_id: Annotated[int | None, Query(description="... with this id")] = None,
    from_code: Annotated[str | None, Query(description="... or with this code")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many features")] = 5,
    max_distance: Annotated[float | None, Query(gt=0, le=100_000, description="Ignore features farther (m)")] = None,
) -> Response:
    """Nearest features with geodesic distances in metres (KNN on the index, re-ranked in metres)."""
    target = _parse_layer_list(registry, [layer])[0]
    b = Binder()
    origin_info: dict[str, Any]
    if from_layer is not None:
        if lon is not None or lat is not None:
            raise InvalidInputError("Give either lon/lat or from_layer with from_id/from_code, not both.")
        src = _parse_layer_list(registry, [from_layer])[0]
        if (from_id is None) == (from_code is None):
            raise InvalidInputError("With from_layer give exactly one of from_id or from_code.")
        cond = sql.SQL("s.id = {}").format(b(from_id, "bigint")) if from_id is not None else sql.SQL(
            "s.code = {}").format(b(from_code, "text"))
        origin = sql.SQL("(SELECT s.geom FROM {} AS s WHERE {})").format(table_sql(src), cond)
        origin_info = {"layer": src.id, "id": from_id, "code": from_code}
    else:
        if lon is None or lat is None:
            raise InvalidInputError("Give lon and lat (or from_layer with from_id/from_code).")
        x, y = _point_4490(lon, lat, crs, city)
        origin = sql.SQL("ST_SetSRID(ST_MakePoint({}, {}), 4490)").format(b(x, "double precision"),
                                                                          b(y, "double precision"))
        origin_info = {"lon": x, "lat": y, "crs": "EPSG:4490"}
    candidates = b(k * 8 + 20, "integer")
    exclude = sql.SQL("TRUE")
    if from_layer is not None and from_layer == target.id:
        exclude = sql.SQL("t.geom IS DISTINCT FROM o.g")
    maxd = sql.SQL("TRUE") if max_distance is None else sql.SQL("c.distance_m <= {}").format(
        b(max_distance, "double precision"))
    mkey, msql = _measure_sql(target)
    stmt = sql.SQL(
        "WITH o AS MATERIALIZED (SELECT {origin} AS g), "
        "c AS (SELECT t.id, t.code, t.name, {status} AS status, {label} AS status_label, t.district_code, "
        "round({msql}::numeric, 3) AS {mk}, ST_Distance(t.geom::geography, o.g::geography) AS distance_m, "
        "ST_AsGeoJSON(t.geom, 7, 0)::json AS geometry "
        "FROM {table} AS t, o WHERE {exclude} ORDER BY t.geom <-> o.g LIMIT {cand}) "
        "SELECT CASE WHEN (SELECT g FROM o) IS NULL THEN NULL ELSE json_build_object('origin', {info}::json, "
        "'layer', {lid}, 'k', {k}, 'features', coalesce((SELECT json_agg(r ORDER BY r.distance_m, r.id) FROM ("
        "SELECT c.id, c.code, c.name, c.status, c.status_label, c.district_code, c.{mk}, "
        "round(c.distance_m::numeric, 2) AS distance_m, c.geometry FROM c WHERE {maxd} "
        "ORDER BY c.distance_m, c.id LIMIT {k2}) r), '[]'::json))::text END"
    ).format(origin=origin, status=_status_sql(target), label=_status_label_sql(target), msql=msql,
             mk=sql.Identifier(mkey), table=table_sql(target), exclude=exclude, cand=candidates,
             info=b(json.dumps(origin_info, ensure_ascii=False)), lid=sql.Literal(target.id), k=b(k, "integer"),
             maxd=maxd, k2=b(k, "integer"))
    async with pool.connection() as conn:
        cur = await conn.execute(stmt, b.params)
        row = await cur.fetchone()
    if row is None or row[0] is None:
        raise NotFoundError(f"Layer '{from_layer}' has no feature with "
                            + (f"id {from_id}." if from_id is not None else f"code '{from_code}'."))
    return _json_text(row[0])


# --------------------------------------------------------------------------- district summary


@router.get("/district-summary", summary="Per district: counts and areas of every layer by status")
async def district_summary(
    pool: ReadPoolDep, registry: RegistryDep,
    layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: renewal layers)")] = None,
) -> Response:
    """Counts and measures (mu or metres) per district, layer and status, from the features' ``district_code``.

    Features without a district code (or with one that is not a district) are grouped under
    ``district_code: null``.
    """
    chosen = _parse_layer_list(registry, layers) if layers else [x for x in registry if x.kind == "renewal"]
    if "districts" not in registry:
        raise NotFoundError("The districts layer is not available.")
    parts = []
    for layer in chosen:
        mkey, msql = _measure_sql(layer)
        parts.append(sql.SQL(
            "SELECT {lid}::text AS layer, {title}::text AS title, {mkey}::text AS mkey, t.district_code AS dc, "
            "{status} AS status, {label} AS label, count(*) AS n, sum({msql}) AS m "
            "FROM {table} AS t GROUP BY t.district_code, 5, 6"
        ).format(lid=sql.Literal(layer.id), title=sql.Literal(layer.title), mkey=sql.Literal(mkey),
                 status=_status_sql(layer), label=_status_label_sql(layer), msql=msql, table=table_sql(layer)))
    districts = table_sql(registry.get("districts"))
    stmt = sql.SQL(
        "WITH s AS MATERIALIZED ({parts}), "
        "l AS (SELECT dc, layer, min(title) AS title, min(mkey) AS mkey, sum(n) AS n, sum(m) AS m, "
        "json_object_agg(status, json_build_object('label', label, 'count', n, mkey, "
        "round(coalesce(m, 0)::numeric, 3)))"
        " FILTER (WHERE status IS NOT NULL) AS by_status FROM s GROUP BY dc, layer), "
        "d AS (SELECT t.code AS dc, t.name FROM {districts} AS t "
        "UNION ALL SELECT DISTINCT l.dc, NULL FROM l WHERE l.dc IS NULL OR l.dc NOT IN (SELECT code FROM {districts})) "
        "SELECT json_build_object('layers', {ids}::json, 'districts', coalesce(json_agg(json_build_object("
        "'district_code', d.dc, 'district_name', d.name, 'layers', coalesce((SELECT json_object_agg(l.layer, "
        "json_build_object('title', l.title, 'count', l.n, l.mkey, round(coalesce(l.m, 0)::numeric, 3), "
        "'by_status', coalesce(l.by_status, '{{}}'::json))) FROM l WHERE l.dc IS NOT DISTINCT FROM d.dc), '{{}}'::json)"
        ") ORDER BY d.dc NULLS LAST), '[]'::json))::text FROM d"
    ).format(parts=sql.SQL(" UNION ALL ").join(parts), districts=districts,
             ids=sql.Literal(json.dumps([x.id for x in chosen])))
    async with pool.connection() as conn:
        cur = await conn.execute(stmt)
        row = await cur.fetchone()
    return _json_text(row[0] if row else None)
