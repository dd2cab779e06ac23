"""Planned roads (规划路): planned versus opened length by district, and compounds near newly opened roads.

Lengths are split exactly among districts by intersection and measured in the city's area CRS;
distances are measured there too (within 0.05 % of geodesic over the city).
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd
from psycopg import sql

from gis.errors import InvalidInputError
from layers.analysis._sql import METRIC_SRID, ConnLike, Params, as_of_subquery, codes, connect, frame, resolve_as_of


def road_length_by_district(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Planned, started and opened road length per district as of a date.

    ``planned_m`` is the length of every road on the list (whatever its status), ``started_m``
    of those under construction (开工, not yet opened), ``opened_m`` of those opened (打通).

    Returns
    -------
    pandas.DataFrame
        ``district_code``, ``district_name``, ``roads`` (roads with a part in the district),
        ``planned_m``, ``started_m``, ``opened_m``, ``share_opened``; districts without planned
        roads are left out.
    """
    day = resolve_as_of(as_of)
    _, started, opened = codes("planned_roads")
    p = Params()
    q = sql.SQL(
        """
        WITH r AS {pr},
        parts AS (
          SELECT d.code AS district_code, d.name AS district_name, r.id, r.status_as_of,
                 ST_Length(ST_Transform(ST_Intersection(r.geom, d.geom), {srid})) AS m
          FROM r JOIN renewal.districts AS d ON ST_Intersects(r.geom, d.geom)
        )
        SELECT district_code, district_name, count(DISTINCT id)::int AS roads,
          sum(m)::float8 AS planned_m,
          coalesce(sum(m) FILTER (WHERE status_as_of = {started}), 0)::float8 AS started_m,
          coalesce(sum(m) FILTER (WHERE status_as_of = {opened}), 0)::float8 AS opened_m
        FROM parts
        GROUP BY district_code, district_name
        HAVING sum(m) > 0
        ORDER BY district_code
        """
    ).format(
        pr=as_of_subquery("planned_roads", p, day),
        srid=METRIC_SRID,
        started=p.add("started", started),
        opened=p.add("opened", opened),
    )
    with connect(conn) as c:
        df = frame(c, q, p)
    df["share_opened"] = df["opened_m"] / df["planned_m"].where(df["planned_m"] > 0)
    df.attrs["as_of"] = day
    return df


def compounds_near_opened_roads(
    conn: ConnLike,
    as_of: dt.date | str | None = None,
    *,
    since: dt.date | str = dt.date(2021, 1, 1),
    distance_m: float = 500.0,
) -> gpd.GeoDataFrame:
    """Old compounds within ``distance_m`` of a road opened between ``since`` and ``as_of``.

    A road counts as newly opened when its status as of ``as_of`` is ``opened`` (打通) and the
    status change that made it so is dated on or after ``since``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per compound near at least one such road: ``code``, ``name``,
        ``district_code``, ``households``, ``status`` (renovation status as of the date),
        ``roads_within`` (how many newly opened roads are within the distance),
        ``road_codes`` (list), ``nearest_road_code``, ``nearest_road_name``,
        ``nearest_road_opened_on``, ``nearest_road_distance_m``; outlines in EPSG:4490,
        sorted by distance.
    """
    day = resolve_as_of(as_of)
    start = resolve_as_of(since)
    if start > day:
        raise InvalidInputError("since must not be after as_of")
    if not 0 < distance_m <= 5000:
        raise InvalidInputError("distance_m must be between 0 and 5000 m")
    p = Params()
    q = sql.SQL(
        """
        WITH r AS MATERIALIZED (
          SELECT pr.code, pr.name, pr.status_since AS opened_on, ST_Transform(pr.geom, {srid}) AS g
          FROM {pr} AS pr WHERE pr.status_as_of = {opened} AND pr.status_since >= {since}
        ),
        cc AS MATERIALIZED (
          SELECT oc.code, oc.name, oc.district_code, oc.households, oc.status_as_of AS status, oc.geom,
                 ST_Transform(oc.geom, {srid}) AS g
          FROM {oc} AS oc
        )
        SELECT cc.code, cc.name, cc.district_code, cc.households, cc.status,
          k.roads_within, k.road_codes,
          n.code AS nearest_road_code, n.name AS nearest_road_name, n.opened_on AS nearest_road_opened_on,
          n.distance_m::float8 AS nearest_road_distance_m,
          ST_AsBinary(cc.geom) AS geom
        FROM cc
        CROSS JOIN LATERAL (
          SELECT count(*)::int AS roads_within, array_agg(r.code ORDER BY r.code) AS road_codes
          FROM r WHERE ST_DWithin(r.g, cc.g, {d})
        ) AS k
        CROSS JOIN LATERAL (
          SELECT r.code, r.name, r.opened_on, ST_Distance(r.g, cc.g) AS distance_m
          FROM r ORDER BY r.g <-> cc.g, r.code LIMIT 1
        ) AS n
        WHERE k.roads_within > 0
        ORDER BY n.distance_m, cc.code
        """
    ).format(
        srid=METRIC_SRID,
        pr=as_of_subquery("planned_roads", p, day),
        opened=p.add("opened", codes("planned_roads")[-1]),
        since=p.add("since", start),
        oc=as_of_subquery("old_compounds", p, day),
        d=p.add("distance", float(distance_m)),
    )
    with connect(conn) as c:
        gdf = frame(c, q, p, geometry="geom")
    gdf["nearest_road_opened_on"] = pd.to_datetime(gdf["nearest_road_opened_on"])
    gdf.attrs.update(as_of=day, since=start, distance_m=distance_m)
    return gdf
