"""The planner's everyday spatial queries: what is here, what is inside, what is nearest, district summary.

SQL builders with thin runners, as :mod:`layers.progress` does, so that the API
(``api/routers/query.py``), the CLI and notebooks ask the same question the same way:

=====================  ===========================  =========================================
question               builder (``(sql, params)``)  runners (sync dict / async JSON text)
=====================  ===========================  =========================================
what is here           :func:`point_query`          :func:`point` / :func:`apoint_text`
what is inside         :func:`within_query`         :func:`within` / :func:`awithin_text`
what is nearest        :func:`nearest_query`        :func:`nearest` / :func:`anearest_text`
per district           :func:`district_summary_query`  :func:`district_summary` / :func:`adistrict_summary_text`
=====================  ===========================  =========================================

Every answer is one SQL statement that builds its JSON in PostgreSQL and returns text. Distances are
geodesic metres (``geography``), areas are mu in the city's area CRS (``area_mu`` columns, or the area of an
intersection measured the same way); the geometry column stays bare in ``WHERE`` (a degree box around
the query geometry prefilters on the GiST index, then the exact metric test runs).

Point inputs may be in CRS84/WGS84 (default), CGCS2000, the city's Gauss-Krüger CRS, EPSG:3857, or the Chinese
web-map datums GCJ02 (Gaode/Tencent) and BD09 (Baidu): ``lon``/``lat`` are the x/y of that CRS
(easting/northing for projected ones). :func:`storage_point`, :meth:`Area.from_selector`,
:meth:`Area.from_geojson` and :meth:`Origin.of` check the inputs and raise 4xx errors a GIS officer understands.

The builders take the layers to read as already-resolved :class:`~layers.models.Layer` objects, so a
caller that checks read rights (the API) decides which layers those are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import psycopg
import shapely
import shapely.geometry
from psycopg import sql

from gis.crs import CRS84, CrsRef, outside_city, parse_crs, transform_coords, transform_geometry
from gis.errors import GeometryError, InvalidInputError, NotFoundError
from layers import city as city_profile
from layers.city import CityProfile
from layers.models import Layer
from layers.query import Binder, feature_sql, parse_feature_id, table_sql
from layers.registry import Registry, get_registry

MAX_DISTANCE_M: Final = 10_000.0
"""Largest search radius of :func:`point_query` (m)."""
MAX_K: Final = 100
"""Most features :func:`nearest_query` returns."""
MAX_WITHIN_FEATURES: Final = 10_000
"""Most features listed per layer by :func:`within_query`."""
MU_PER_M2: Final = 0.0015
STORAGE: Final = CrsRef("epsg", 4490)
"""The CRS the layers are stored in (CGCS2000 lon/lat)."""

Statement = tuple[sql.Composed, dict[str, Any]]
"""A built query: SQL and its bound parameters."""
Predicate = Literal["intersects", "within"]


# --------------------------------------------------------------------------- inputs


def storage_point(lon: float, lat: float, crs: str | None, city: CityProfile) -> tuple[float, float]:
    """The query point in CGCS2000 lon/lat; 400 if not finite or outside the city."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInputError("lon and lat must be finite numbers.")
    ref = parse_crs(crs) if crs else CRS84
    if ref.kind == "epsg" and ref.epsg not in (4326, 4490, city.area_srid, 3857):
        raise InvalidInputError(f"crs {ref.label} is not accepted here; use CRS84, EPSG:4326, EPSG:4490, "
                                f"EPSG:{city.area_srid}, EPSG:3857, GCJ02 or BD09.")
    xs, ys = transform_coords(ref, STORAGE, [lon], [lat])
    x, y = float(xs[0]), float(ys[0])
    if not (math.isfinite(x) and math.isfinite(y)) or bool(outside_city([x], [y], city.bbox)[0]):
        raise InvalidInputError(
            f"The point ({lon}, {lat}) in {ref.label} lies outside {city.name_en} ({city.bbox.describe()}). "
            "Check the order (lon first) and the CRS."
        )
    return x, y


def layer_list(registry: Registry, names: str | Sequence[str] | None) -> list[Layer]:
    """The layers named (comma-separated text or a list), in order, without repeats; all layers if none.

    400 names the unknown layer and lists the known ones.
    """
    if names is None or (isinstance(names, str) and not names.strip()):
        return list(registry)
    parts = [p.strip() for p in names.split(",") if p.strip()] if isinstance(names, str) else list(names)
    out: list[Layer] = []
    for name in parts:
        if name not in registry:
            raise InvalidInputError(f"layers: '{name}' is not a layer. Known layers: {', '.join(registry.ids)}.",
                                    detail={"layer": name})
        layer = registry.get(name)
        if layer not in out:
            out.append(layer)
    return out


def renewal_layers(registry: Registry) -> list[Layer]:
    """The default layers of the area and district questions: the renewal layers."""
    return [x for x in registry if x.kind == "renewal"]


@dataclass(frozen=True)
class Area:
    """The area of a *within* question: a named district, ring zone or Hutuo belt zone, or a polygon.

    ``value`` is the name/code given, or for a polygon its hex WKB in EPSG:4490.
    """

    kind: Literal["district", "ring_zone", "belt_zone", "polygon"]
    value: str

    @classmethod
    def from_selector(cls, district: str | None = None, ring_zone: str | None = None,
                      belt_zone: str | None = None) -> Area:
        """The area named by exactly one selector (400 otherwise)."""
        given = [(k, v) for k, v in (("district", district), ("ring_zone", ring_zone), ("belt_zone", belt_zone))
                 if v is not None and v.strip()]
        if len(given) != 1:
            raise InvalidInputError(
                "Give exactly one area: district= (adcode or name, e.g. 130102 or 长安区), ring_zone= (inside_2nd, "
                "between_2nd_3rd, outside_3rd or the Chinese name), belt_zone= (a zone code or a zone type such as "
                "flood_channel), or POST a GeoJSON polygon."
            )
        kind, value = given[0]
        return cls(kind, value.strip())  # type: ignore[arg-type]

    @classmethod
    def from_geojson(cls, geometry: dict[str, Any], crs: str | None, city: CityProfile) -> Area:
        """A GeoJSON Polygon/MultiPolygon (or a Feature with one) in ``crs`` (default CRS84); made valid."""
        geom = geometry
        if geom.get("type") == "Feature":
            geom = geom.get("geometry") or {}
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            raise GeometryError(
                "The posted geometry must be a GeoJSON Polygon or MultiPolygon (or a Feature with one).")
        try:
            shp = shapely.geometry.shape(geom)
        except Exception:  # noqa: BLE001 - any malformed GeoJSON is the caller's error
            raise GeometryError("The posted polygon is not valid GeoJSON (rings must be lists of [x, y] positions).") \
                from None
        coords = shapely.get_coordinates(shp)
        if shp.is_empty or not math.isfinite(float(coords.sum())):
            raise GeometryError("The posted polygon is empty or has non-finite coordinates.")
        ref = parse_crs(crs) if crs else CRS84
        shp = transform_geometry(shp, ref, STORAGE)
        if not shp.is_valid:
            shp = shapely.make_valid(shp)
        c = shapely.get_coordinates(shp)
        if bool(outside_city(c[:, 0], c[:, 1], city.bbox).all()):
            raise GeometryError(
                f"The posted polygon lies entirely outside {city.name_en}; check the CRS and axis order.")
        return cls("polygon", shapely.to_wkb(shapely.force_2d(shp), hex=True))

    @property
    def info(self) -> dict[str, Any]:
        """How the answer describes the area."""
        return {"kind": "polygon"} if self.kind == "polygon" else {"kind": self.kind, "value": self.value}

    @property
    def description(self) -> str:
        """The area in a "no area matches ..." message."""
        return "the posted polygon" if self.kind == "polygon" else f"{self.kind}='{self.value}'"

    def geometry_sql(self, registry: Registry, b: Binder) -> sql.Composable:
        """SQL for the area's geometry (EPSG:4490); NULL when no zone matches the name."""
        if self.kind == "polygon":
            return sql.SQL("ST_SetSRID(ST_GeomFromWKB(decode({}, 'hex')), 4490)").format(b(self.value))
        layer_id = {"district": "districts", "ring_zone": "ring_zones", "belt_zone": "hutuo_belt_zones"}[self.kind]
        layer = registry.get(layer_id)
        v1, v2, v3 = b(self.value), b(self.value), b(self.value)
        extra = {"district": sql.SQL("FALSE"), "ring_zone": sql.SQL("t.zone = {}").format(v3),
                 "belt_zone": sql.SQL("t.zone_type = {}").format(v3)}[self.kind]
        cond = sql.SQL("(t.code = {} OR t.name = {} OR {})").format(v1, v2, extra)
        return sql.SQL("(SELECT ST_Union(t.geom) FROM {} AS t WHERE {})").format(table_sql(layer), cond)


@dataclass(frozen=True)
class Origin:
    """Where a *nearest* question measures from: a point (EPSG:4490) or a feature of a layer (id or code)."""

    point: tuple[float, float] | None = None
    layer: Layer | None = None
    feature_id: int | None = None
    feature_code: str | None = None

    @classmethod
    def of(
        cls, registry: Registry, city: CityProfile, *, lon: float | None = None, lat: float | None = None,
        crs: str | None = None, from_layer: str | None = None, from_id: int | None = None,
        from_code: str | None = None,
    ) -> Origin:
        """lon/lat (in ``crs``), or ``from_layer`` with exactly one of ``from_id``/``from_code`` (400 otherwise)."""
        if from_layer is not None:
            if lon is not None or lat is not None:
                raise InvalidInputError("Give either lon/lat or from_layer with from_id/from_code, not both.")
            src = layer_list(registry, [from_layer])[0]
            if (from_id is None) == (from_code is None):
                raise InvalidInputError("With from_layer give exactly one of from_id or from_code.")
            if from_id is not None:  # the feature-id rule: a number no id can be (past bigint) is a 404, not a 500
                from_id = parse_feature_id(src, str(from_id))
            return cls(layer=src, feature_id=from_id, feature_code=from_code)
        if lon is None or lat is None:
            raise InvalidInputError("Give lon and lat (or from_layer with from_id/from_code).")
        return cls(point=storage_point(lon, lat, crs, city))

    @property
    def info(self) -> dict[str, Any]:
        """How the answer describes the origin."""
        if self.layer is not None:
            return {"layer": self.layer.id, "id": self.feature_id, "code": self.feature_code}
        assert self.point is not None
        return {"lon": self.point[0], "lat": self.point[1], "crs": "EPSG:4490"}


# --------------------------------------------------------------------------- shared SQL pieces


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
    """A feature's stored size column (``area_mu`` or ``length_m``, by :attr:`Layer.measure`), keyed by its name.

    Not a target's measure (:func:`layers.progress.feature_value_sql`): a layer has no metric, so
    there is no count, no ``spaces``/``units`` and no km divisor here; the planner reports the raw column.
    """
    m = layer.measure_field
    if m is None:
        return "measure", sql.SQL("NULL::double precision")
    return m, sql.Identifier("t", m)


def _area_m2_sql(expr: sql.Composable, srid: int, geodesic: bool) -> sql.Composable:
    """Area in m² measured as the city's ``area_mu`` columns are (:attr:`CityProfile.measure`)."""
    if geodesic:
        return sql.SQL("ST_Area(({})::geography)").format(expr)
    return sql.SQL("ST_Area(ST_Transform({}, {}))").format(expr, sql.Literal(int(srid)))


def _clip_sql(layer: Layer, srid: int, geodesic: bool = False) -> sql.Composable:
    """The measure of the part inside the area, measured as the city's stored columns are."""
    part = sql.SQL("ST_Intersection(t.geom, a.g)")
    if layer.measure == "area":
        return sql.SQL("CASE WHEN ST_CoveredBy(t.geom, a.g) THEN t.area_mu ELSE {} * {} END").format(
            _area_m2_sql(part, srid, geodesic), sql.Literal(MU_PER_M2))
    if layer.measure == "length":
        length = (sql.SQL("ST_Length(({})::geography)").format(part) if geodesic
                  else sql.SQL("ST_Length(ST_Transform({}, {}))").format(part, sql.Literal(int(srid))))
        return sql.SQL("CASE WHEN ST_CoveredBy(t.geom, a.g) THEN t.length_m ELSE {} END").format(length)
    return sql.SQL("NULL")


# --------------------------------------------------------------------------- what is here


def point_query(registry: Registry, x: float, y: float, distance: float, layers: Sequence[Layer], *,
                with_parcel: bool = True) -> Statement:
    """District, ring zone, the containing land parcel, and each feature of ``layers`` within ``distance`` m.

    ``x``/``y`` are CGCS2000 lon/lat (:func:`storage_point`). Features are sorted by distance;
    ``contains`` is true when the feature covers the point (distance 0). The land parcel is
    looked up only ``with_parcel`` (the caller may read parcels).
    """
    b = Binder()
    pt = sql.SQL("ST_SetSRID(ST_MakePoint({}, {}), 4490)").format(b(x, "double precision"), b(y, "double precision"))
    dlon, dlat = _degree_box(y, distance)
    box = sql.SQL("ST_Expand({}, {}, {})").format(pt, b(dlon, "double precision"), b(dlat, "double precision"))
    dist = b(distance, "double precision")
    parts = []
    for layer in layers:
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
    if with_parcel and "land_parcels" in registry:
        parcels = registry.get("land_parcels")
        sub.append(sql.SQL("'land_parcel', (SELECT ({})::json FROM {} AS t WHERE ST_Intersects(t.geom, {}) "
                           "ORDER BY t.id LIMIT 1)").format(feature_sql(parcels), table_sql(parcels), pt))
    stmt = sql.SQL(
        "SELECT json_build_object('point', json_build_object('lon', {x}, 'lat', {y}, 'crs', 'EPSG:4490'), "
        "'distance_m', {dist}, {sub}, "
        "'features', coalesce((SELECT json_agg(n ORDER BY n.distance_m, n.layer, n.id) FROM ({near}) AS n), "
        "'[]'))::text"
    ).format(x=b(x, "double precision"), y=b(y, "double precision"), dist=b(distance, "double precision"),
             sub=sql.SQL(", ").join(sub) if sub else sql.SQL("'district', NULL"), near=near)
    return stmt, b.params


# --------------------------------------------------------------------------- within an area


def within_query(registry: Registry, area: Area, layers: Sequence[Layer], *, predicate: Predicate = "intersects",
                 limit: int = 1000, srid: int, geodesic: bool = False) -> Statement:
    """Per layer: count, total and inside-the-area measure (mu or metres), counts by status, and the features.

    ``srid`` is the city's area CRS (:attr:`CityProfile.area_srid`); ``geodesic`` measures on the
    spheroid instead, for a city whose profile says so (:attr:`CityProfile.measure`). The answer is NULL when no
    zone matches the area's name.
    """
    b = Binder()
    area_sql = area.geometry_sql(registry, b)
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
                 msql=_measure_sql(layer)[1], clip=_clip_sql(layer, srid, geodesic), table=table_sql(layer),
                 pred=sql.SQL(pred))
        for layer in layers
    )
    stmt = sql.SQL(
        "WITH a AS MATERIALIZED (SELECT {area} AS g), f AS MATERIALIZED ({feats}) "
        "SELECT CASE WHEN (SELECT g FROM a) IS NULL THEN NULL ELSE json_build_object("
        "'area', ({info}::jsonb || jsonb_build_object('area_mu', round((SELECT {area_m2} * {mu} "
        "FROM a)::numeric, 3)))::json, 'predicate', {pred}, 'layers', "
        "coalesce((SELECT json_agg(doc ORDER BY ord) FROM ({docs}) d), '[]'::json))::text END"
    ).format(area=area_sql, feats=feats, info=b(json.dumps(area.info, ensure_ascii=False)),
             mu=sql.Literal(MU_PER_M2), area_m2=_area_m2_sql(sql.SQL("g"), srid, geodesic),
             pred=sql.Literal(predicate),
             docs=sql.SQL(" UNION ALL ").join(
                 sql.SQL("SELECT {} AS ord, doc FROM ({}) x").format(sql.Literal(i), p)
                 for i, p in enumerate(per_layer)))
    return stmt, b.params


# --------------------------------------------------------------------------- nearest


def nearest_query(target: Layer, origin: Origin, *, k: int = 5, max_distance: float | None = None) -> Statement:
    """The ``k`` features of ``target`` nearest to ``origin``, with geodesic distances in metres.

    KNN on the index (``k × 8 + 20`` candidates), re-ranked in metres. A feature origin in the
    same layer is not its own neighbour. The answer is NULL when the origin feature does not exist.
    """
    b = Binder()
    if origin.layer is not None:
        cond = sql.SQL("s.id = {}").format(b(origin.feature_id, "bigint")) if origin.feature_id is not None \
            else sql.SQL("s.code = {}").format(b(origin.feature_code, "text"))
        origin_sql: sql.Composable = sql.SQL("(SELECT s.geom FROM {} AS s WHERE {})").format(
            table_sql(origin.layer), cond)
    else:
        assert origin.point is not None
        x, y = origin.point
        origin_sql = sql.SQL("ST_SetSRID(ST_MakePoint({}, {}), 4490)").format(b(x, "double precision"),
                                                                              b(y, "double precision"))
    candidates = b(k * 8 + 20, "integer")
    exclude = sql.SQL("TRUE")
    if origin.layer is not None and origin.layer.id == target.id:
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
    ).format(origin=origin_sql, status=_status_sql(target), label=_status_label_sql(target), msql=msql,
             mk=sql.Identifier(mkey), table=table_sql(target), exclude=exclude, cand=candidates,
             info=b(json.dumps(origin.info, ensure_ascii=False)), lid=sql.Literal(target.id), k=b(k, "integer"),
             maxd=maxd, k2=b(k, "integer"))
    return stmt, b.params


# --------------------------------------------------------------------------- district summary


def district_summary_query(registry: Registry, layers: Sequence[Layer]) -> Statement:
    """Counts and measures (mu or metres) per district, layer and status, from the features' ``district_code``.

    Features without a district code (or with one that is not a district) are grouped under
    ``district_code: null``. 404 if the registry has no districts layer.
    """
    if "districts" not in registry:
        raise NotFoundError("The districts layer is not available.")
    parts = []
    for layer in layers:
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
             ids=sql.Literal(json.dumps([x.id for x in layers])))
    return stmt, {}


# --------------------------------------------------------------------------- runners


def _not_found_origin(origin: Origin) -> NotFoundError:
    layer = origin.layer.id if origin.layer is not None else None
    return NotFoundError(f"Layer '{layer}' has no feature with "
                         + (f"id {origin.feature_id}." if origin.feature_id is not None
                            else f"code '{origin.feature_code}'."))


async def _atext(conn: psycopg.AsyncConnection[Any], statement: Statement) -> str | None:
    cur = await conn.execute(*statement)
    row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _text(conn: psycopg.Connection[Any], statement: Statement) -> str | None:
    row = conn.execute(*statement).fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def apoint_text(conn: psycopg.AsyncConnection[Any], registry: Registry, x: float, y: float, distance: float,
                      layers: Sequence[Layer], *, with_parcel: bool = True) -> str:
    """:func:`point_query` run on an async connection: the answer as JSON text."""
    return await _atext(conn, point_query(registry, x, y, distance, layers, with_parcel=with_parcel)) or "null"


async def awithin_text(conn: psycopg.AsyncConnection[Any], registry: Registry, area: Area, layers: Sequence[Layer],
                       *, predicate: Predicate = "intersects", limit: int = 1000, srid: int,
                       geodesic: bool = False) -> str:
    """:func:`within_query` run on an async connection; 404 when no zone matches the area's name."""
    text = await _atext(conn, within_query(registry, area, layers, predicate=predicate, limit=limit, srid=srid,
                                           geodesic=geodesic))
    if text is None:
        raise NotFoundError(f"No area matches {area.description}.")
    return text


async def anearest_text(conn: psycopg.AsyncConnection[Any], target: Layer, origin: Origin, *, k: int = 5,
                        max_distance: float | None = None) -> str:
    """:func:`nearest_query` run on an async connection; 404 when the origin feature does not exist."""
    text = await _atext(conn, nearest_query(target, origin, k=k, max_distance=max_distance))
    if text is None:
        raise _not_found_origin(origin)
    return text


async def adistrict_summary_text(conn: psycopg.AsyncConnection[Any], registry: Registry,
                                 layers: Sequence[Layer]) -> str:
    """:func:`district_summary_query` run on an async connection: the answer as JSON text."""
    return await _atext(conn, district_summary_query(registry, layers)) or "null"


def _names(layers: str | Iterable[str] | None) -> str | list[str] | None:
    return layers if layers is None or isinstance(layers, str) else list(layers)


def point(conn: psycopg.Connection[Any], lon: float, lat: float, *, crs: str | None = None,
          distance: float = 100.0, layers: str | Iterable[str] | None = None, with_parcel: bool = True,
          registry: Registry | None = None) -> dict[str, Any]:
    """What is here (for notebooks and scripts): the answer of ``GET /query/point`` as a dict."""
    reg = registry or get_registry()
    if not 0 <= distance <= MAX_DISTANCE_M:
        raise InvalidInputError(f"distance must be between 0 and {MAX_DISTANCE_M:.0f} metres.")
    x, y = storage_point(lon, lat, crs, city_profile.load(conn))
    stmt = point_query(reg, x, y, distance, layer_list(reg, _names(layers)), with_parcel=with_parcel)
    return dict(json.loads(_text(conn, stmt) or "null"))


def within(conn: psycopg.Connection[Any], area: Area, *, layers: str | Iterable[str] | None = None,
           predicate: Predicate = "intersects", limit: int = 1000,
           registry: Registry | None = None) -> dict[str, Any]:
    """What is inside an area (for notebooks): the answer of ``/query/within`` as a dict; 404 if no zone matches.

    ``area`` is :meth:`Area.from_selector` (``district=...`` etc.) or :meth:`Area.from_geojson`.
    """
    reg = registry or get_registry()
    chosen = layer_list(reg, _names(layers)) if layers else renewal_layers(reg)
    profile = city_profile.load(conn)
    text = _text(conn, within_query(reg, area, chosen, predicate=predicate, limit=limit, srid=profile.area_srid,
                                    geodesic=profile.measure == "geodesic"))
    if text is None:
        raise NotFoundError(f"No area matches {area.description}.")
    return dict(json.loads(text))


def nearest(conn: psycopg.Connection[Any], layer: str, *, lon: float | None = None, lat: float | None = None,
            crs: str | None = None, from_layer: str | None = None, from_id: int | None = None,
            from_code: str | None = None, k: int = 5, max_distance: float | None = None,
            registry: Registry | None = None) -> dict[str, Any]:
    """The ``k`` nearest features (for notebooks): the answer of ``GET /query/nearest`` as a dict."""
    reg = registry or get_registry()
    target = layer_list(reg, [layer])[0]
    origin = Origin.of(reg, city_profile.load(conn), lon=lon, lat=lat, crs=crs, from_layer=from_layer,
                       from_id=from_id, from_code=from_code)
    text = _text(conn, nearest_query(target, origin, k=k, max_distance=max_distance))
    if text is None:
        raise _not_found_origin(origin)
    return dict(json.loads(text))


def district_summary(conn: psycopg.Connection[Any], layers: str | Iterable[str] | None = None, *,
                     registry: Registry | None = None) -> dict[str, Any]:
    """Per district, layer and status (for notebooks): the answer of ``GET /query/district-summary`` as a dict."""
    reg = registry or get_registry()
    chosen = layer_list(reg, _names(layers)) if layers else renewal_layers(reg)
    return dict(json.loads(_text(conn, district_summary_query(reg, chosen)) or "null"))
