"""The planner's everyday spatial queries over HTTP: what is here, what is inside, what is nearest, per district.

The questions themselves (SQL builders and runners) are :mod:`layers.planner`, which notebooks
and scripts call too; each route here only turns the request into typed values (a point in
storage coordinates, an :class:`~layers.planner.Area`, an :class:`~layers.planner.Origin`, the
layers to read) and returns the JSON text PostgreSQL built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.access import ReadableLayers, ReadableRenewalLayers, ReadAccessDep
from api.city import CityDep
from api.deps import ReadPoolDep, RegistryDep
from layers import planner
from layers.planner import MAX_DISTANCE_M, MAX_K, MAX_WITHIN_FEATURES, Area, Origin

ORDER = 30
router = APIRouter(prefix="/query", tags=["Planner queries"])


def _json_text(text: str) -> Response:
    return Response(text, media_type="application/json")


# --------------------------------------------------------------------------- what is here


@router.get("/point", summary="What is here: district, ring zone, land parcel and every feature near a point")
async def point(
    pool: ReadPoolDep, registry: RegistryDep, city: CityDep, access: ReadAccessDep, chosen: ReadableLayers,
    lon: Annotated[float, Query(description="Longitude (or easting for projected CRSs)")],
    lat: Annotated[float, Query(description="Latitude (or northing for projected CRSs)")],
    crs: Annotated[str | None, Query(description="CRS of lon/lat: CRS84 (default), EPSG:4490, "
                                                 "EPSG:3857, the city's Gauss-Krüger zone, GCJ02, BD09")] = None,
    distance: Annotated[float, Query(ge=0, le=MAX_DISTANCE_M, description="Search radius in metres")] = 100.0,
) -> Response:
    """District, ring zone, the containing land parcel, and each feature within ``distance`` metres.

    Features are sorted by distance; ``contains`` is true when the feature covers the point
    (distance 0).
    """
    x, y = planner.storage_point(lon, lat, crs, city)
    with_parcel = "land_parcels" in registry and access.may_read(registry.get("land_parcels"))  # read policy
    async with pool.connection() as conn:
        return _json_text(await planner.apoint_text(conn, registry, x, y, distance, chosen, with_parcel=with_parcel))


# --------------------------------------------------------------------------- within an area


class WithinBody(BaseModel):
    """A posted area: a GeoJSON Polygon/MultiPolygon (or a Feature holding one) and what to count in it."""

    model_config = ConfigDict(extra="forbid")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, or a Feature with one")
    crs: str | None = Field(default=None, description="CRS of the coordinates (default CRS84; GCJ02/BD09 accepted)")
    layers: list[str] | None = None
    predicate: Literal["intersects", "within"] = "intersects"
    limit: int = Field(default=1000, ge=0, le=MAX_WITHIN_FEATURES)


@router.get("/within", summary="Features of chosen layers inside a district, ring zone or Hutuo belt zone")
async def within(
    pool: ReadPoolDep, registry: RegistryDep, city: CityDep, access: ReadAccessDep, chosen: ReadableRenewalLayers,
    district: Annotated[str | None, Query(description="District adcode or name, e.g. 130102 or 长安区")] = None,
    ring_zone: Annotated[str | None, Query(description="inside_2nd, between_2nd_3rd, outside_3rd or name")] = None,
    belt_zone: Annotated[str | None, Query(description="Hutuo belt zone code or type, e.g. flood_channel")] = None,
    predicate: Annotated[Literal["intersects", "within"], Query(description="intersects (default) or within")] = (
        "intersects"),
    limit: Annotated[int, Query(ge=0, le=MAX_WITHIN_FEATURES, description="Features listed per layer")] = 1000,
) -> Response:
    """Per layer: count, total and inside-the-area measure (mu or metres), counts by status, and the features."""
    area = Area.from_selector(district, ring_zone, belt_zone)
    access.layer({"district": "districts", "ring_zone": "ring_zones", "belt_zone": "hutuo_belt_zones"}[area.kind])
    async with pool.connection() as conn:
        return _json_text(await planner.awithin_text(conn, registry, area, chosen, predicate=predicate, limit=limit,
                                                     srid=city.area_srid, geodesic=city.measure == "geodesic"))


@router.post("/within", summary="Features of chosen layers inside a posted GeoJSON polygon")
async def within_polygon(pool: ReadPoolDep, registry: RegistryDep, city: CityDep, access: ReadAccessDep,
                         body: Annotated[WithinBody, Body()]) -> Response:
    """The same answer as ``GET /query/within`` for a polygon drawn by the planner.

    The layers come from the body, so they are checked here against the caller's read rights
    (``access``): a layer the caller may not read is a 401, never a silent answer.
    """
    chosen = access.layers(body.layers, default=lambda lyr: lyr.kind == "renewal")
    area = Area.from_geojson(body.geometry, body.crs, city)
    async with pool.connection() as conn:
        return _json_text(await planner.awithin_text(conn, registry, area, chosen, predicate=body.predicate,
                                                     limit=body.limit, srid=city.area_srid,
                                                     geodesic=city.measure == "geodesic"))


# --------------------------------------------------------------------------- nearest


@router.get("/nearest", summary="The k nearest features of a layer to a point or to another feature")
async def nearest(
    pool: ReadPoolDep, registry: RegistryDep, city: CityDep, access: ReadAccessDep,
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
    target = access.layers([layer], param="layer")[0]
    if from_layer is not None:
        access.layers([from_layer], param="from_layer")
    origin = Origin.of(registry, city, lon=lon, lat=lat, crs=crs, from_layer=from_layer, from_id=from_id,
                       from_code=from_code)
    async with pool.connection() as conn:
        return _json_text(await planner.anearest_text(conn, target, origin, k=k, max_distance=max_distance))


# --------------------------------------------------------------------------- district summary


@router.get("/district-summary", summary="Per district: counts and areas of every layer by status")
async def district_summary(pool: ReadPoolDep, registry: RegistryDep, access: ReadAccessDep,
                           chosen: ReadableRenewalLayers) -> Response:
    """Counts and measures (mu or metres) per district, layer and status, from the features' ``district_code``.

    Features without a district code (or with one that is not a district) are grouped under
    ``district_code: null``.
    """
    access.layer("districts")
    async with pool.connection() as conn:
        return _json_text(await planner.adistrict_summary_text(conn, registry, chosen))
