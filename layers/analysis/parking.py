"""Public parking around old compounds: nearest built site, spaces within walking radii, coverage and gaps.

Distances are planar in the city's CGCS2000 3-degree Gauss-Krüger zone (renewal.city.area_srid), which over the
city is within 0.05 % of the geodesic distance; they are measured from the compound's
outline (a site inside a compound is at 0 m). Only sites whose status as of the date is
``built`` (建成) count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import geopandas as gpd
import pandas as pd
from psycopg import sql

from gis.errors import InvalidInputError
from layers.analysis._sql import METRIC_SRID, ConnLike, Params, as_of_subquery, codes, connect, frame, resolve_as_of

DEFAULT_RADII = (300.0, 500.0)
"""Walking radii (m) at which spaces are summed: a five-minute walk and a longer one."""


def _radius_label(r: float) -> str:
    return f"{r:g}m"


def _check_radii(radii: Sequence[float]) -> list[float]:
    out = [float(r) for r in radii]
    if not out or any(not (0 < r <= 5000) for r in out):
        raise InvalidInputError("parking radii must be between 0 and 5000 m")
    if len({_radius_label(r) for r in out}) != len(out):
        raise InvalidInputError("parking radii must be distinct")
    return out


def _per_compound_query(p: Params, day: dt.date, radii: list[float]) -> sql.Composed:
    """Every old compound with its nearest built parking site and the spaces within each radius."""
    within = sql.SQL(",\n").join(
        sql.SQL(
            "coalesce(sum(s.spaces) FILTER (WHERE ST_DWithin(s.g, cc.g, {r})), 0)::bigint AS {spaces},\n"
            "count(*) FILTER (WHERE ST_DWithin(s.g, cc.g, {r}))::int AS {sites}"
        ).format(
            r=p.add("radius", r),
            spaces=sql.Identifier(f"spaces_{_radius_label(r)}"),
            sites=sql.Identifier(f"sites_{_radius_label(r)}"),
        )
        for r in radii
    )
    within_cols = sql.SQL(", ").join(
        sql.SQL("w.{}, w.{}").format(
            sql.Identifier(f"spaces_{_radius_label(r)}"), sql.Identifier(f"sites_{_radius_label(r)}")
        )
        for r in radii
    )
    return sql.SQL(
        """
        WITH s AS MATERIALIZED (
          SELECT ps.code, ps.name, ps.spaces, ST_Transform(ps.geom, {srid}) AS g
          FROM {ps} AS ps WHERE ps.status_as_of = {built}
        ),
        cc AS MATERIALIZED (
          SELECT oc.id, oc.code, oc.name, oc.district_code, oc.households, oc.status_as_of AS status,
                 oc.geom, ST_Transform(oc.geom, {srid}) AS g
          FROM {oc} AS oc
        )
        SELECT cc.id, cc.code, cc.name, cc.district_code, cc.households, cc.status,
          n.code AS nearest_site_code, n.name AS nearest_site_name, n.spaces AS nearest_site_spaces,
          n.distance_m::float8 AS nearest_distance_m,
          {within_cols},
          ST_AsBinary(cc.geom) AS geom
        FROM cc
        LEFT JOIN LATERAL (
          SELECT s.code, s.name, s.spaces, ST_Distance(s.g, cc.g) AS distance_m
          FROM s ORDER BY s.g <-> cc.g, s.code LIMIT 1
        ) AS n ON true
        CROSS JOIN LATERAL (
          SELECT {within} FROM s WHERE ST_DWithin(s.g, cc.g, {max_r})
        ) AS w
        """
    ).format(
        srid=METRIC_SRID,
        ps=as_of_subquery("parking_sites", p, day),
        built=p.add("built", codes("parking_sites")[-1]),
        oc=as_of_subquery("old_compounds", p, day),
        within_cols=within_cols,
        within=within,
        max_r=p.add("max_radius", max(radii)),
    )


def parking_coverage(
    conn: ConnLike, as_of: dt.date | str | None = None, *, radii: Sequence[float] = DEFAULT_RADII
) -> gpd.GeoDataFrame:
    """For every old compound: the nearest built public parking site and the spaces within each radius.

    The nearest site is found with a KNN ``<->`` search in a LATERAL join over the built sites
    (in the city's area CRS, so the order is by true metric distance); spaces within a radius are summed
    over sites with ``ST_DWithin``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per compound (EPSG:4490 outlines): ``code``, ``name``, ``district_code``,
        ``households``, ``status`` (renovation status as of the date), ``nearest_site_code``,
        ``nearest_site_name``, ``nearest_site_spaces``, ``nearest_distance_m`` (NaN if no site is
        built yet), and per radius R (e.g. ``300m``) ``spaces_R``, ``sites_R`` and
        ``spaces_per_household_R`` (NaN for a compound without households).
    """
    day = resolve_as_of(as_of)
    rs = _check_radii(radii)
    p = Params()
    q = sql.SQL("{} ORDER BY cc.code").format(_per_compound_query(p, day, rs))
    with connect(conn) as c:
        gdf = frame(c, q, p, geometry="geom")
    hh = gdf["households"].astype(float)
    for r in rs:
        label = _radius_label(r)
        gdf[f"spaces_per_household_{label}"] = gdf[f"spaces_{label}"].astype(float) / hh.where(hh > 0)
    gdf["nearest_distance_m"] = gdf["nearest_distance_m"].astype(float)
    gdf.attrs["as_of"] = day
    gdf.attrs["radii"] = rs
    return gdf


def parking_coverage_by_district(
    conn: ConnLike, as_of: dt.date | str | None = None, *, radius_m: float = 500.0
) -> pd.DataFrame:
    """Share of old compounds and of their households with a built public parking site within ``radius_m``.

    Returns
    -------
    pandas.DataFrame
        One row per district: ``district_code``, ``district_name``, ``compounds``,
        ``compounds_covered``, ``share_compounds_covered``, ``households``, ``households_covered``,
        ``share_households_covered``, ``spaces_within`` (sum over compounds of the spaces within
        the radius; a site near two compounds counts for both), ``median_nearest_m``,
        ``max_nearest_m``.
    """
    day = resolve_as_of(as_of)
    (r,) = _check_radii([radius_m])
    p = Params()
    label = _radius_label(r)
    q = sql.SQL(
        """
        WITH pc AS ({per_compound})
        SELECT pc.district_code, d.name AS district_name,
          count(*)::int AS compounds,
          count(*) FILTER (WHERE pc.nearest_distance_m <= {r})::int AS compounds_covered,
          coalesce(sum(pc.households), 0)::bigint AS households,
          coalesce(sum(pc.households) FILTER (WHERE pc.nearest_distance_m <= {r}), 0)::bigint AS households_covered,
          coalesce(sum(pc.{spaces}), 0)::bigint AS spaces_within,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY pc.nearest_distance_m)::float8 AS median_nearest_m,
          max(pc.nearest_distance_m)::float8 AS max_nearest_m
        FROM pc LEFT JOIN renewal.districts AS d ON d.code = pc.district_code
        GROUP BY pc.district_code, d.name
        ORDER BY pc.district_code
        """
    ).format(
        per_compound=_per_compound_query(p, day, [r]),
        r=p.add("covered_radius", r),
        spaces=sql.Identifier(f"spaces_{label}"),
    )
    with connect(conn) as c:
        df = frame(c, q, p)
    df["share_compounds_covered"] = df["compounds_covered"] / df["compounds"].where(df["compounds"] > 0)
    df["share_households_covered"] = df["households_covered"] / df["households"].where(df["households"] > 0)
    df.attrs["as_of"] = day
    df.attrs["radius_m"] = r
    return df


def parking_gaps(
    conn: ConnLike, as_of: dt.date | str | None = None, *, radius_m: float = 500.0, limit: int = 20
) -> gpd.GeoDataFrame:
    """The old compounds with the worst parking gaps, worst first.

    Worst means fewest built public spaces per household within ``radius_m``, then the
    farthest nearest site, then the most households (so a large compound far from any
    car park heads the list).

    Returns
    -------
    geopandas.GeoDataFrame
        At most ``limit`` rows of :func:`parking_coverage` (computed with radius ``radius_m``)
        with a ``rank`` column starting at 1.
    """
    if limit < 1:
        raise InvalidInputError("limit must be at least 1")
    gdf = parking_coverage(conn, as_of, radii=[radius_m])
    label = _radius_label(float(radius_m))
    key = gdf[f"spaces_per_household_{label}"].fillna(float("inf"))
    ordered = gdf.assign(_key=key, _dist=gdf["nearest_distance_m"].fillna(float("inf"))).sort_values(
        ["_key", "_dist", "households", "code"], ascending=[True, False, False, True]
    )
    out = ordered.drop(columns=["_key", "_dist"]).head(limit).reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    out.attrs.update(gdf.attrs)
    return out
