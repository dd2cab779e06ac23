"""Land: vacated plots by stage and planned use, conflicts with the Hutuo belt, and floor-area-ratio compliance.

Intersection areas are measured in the city's Gauss-Krüger CRS (renewal.city.area_srid) and given in
mu (亩, 1 mu = 666.67 m²), the same way as the generated ``area_mu`` columns: the overlay is cut
in the storage CRS (EPSG:4490, where the stored edges are straight) and the pieces are
transformed and measured, so a plot wholly inside a zone overlaps it by exactly its ``area_mu``.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd
from psycopg import sql

from gis.errors import InvalidInputError
from layers.analysis._sql import (
    M2_TO_MU,
    METRIC_SRID,
    ConnLike,
    Params,
    as_of_subquery,
    codes,
    connect,
    frame,
    layer,
    resolve_as_of,
    table,
)

USE_SEPARATORS = r"[、,，;；/／]+"
"""How several planned uses are written in one ``planned_use`` value (居住、商业、公园绿地)."""

CONSTRAINTS = {
    "hutuo_belt": "滹沱河生态经济带",
    "flood_channel": "行洪通道",
    "water_source": "水源保护区",
}
"""Constraint categories: the whole belt (every zone of ``hutuo_belt_zones``) and two of its zone types."""


def vacated_land_plots(conn: ConnLike, as_of: dt.date | str | None = None) -> gpd.GeoDataFrame:
    """Every vacated plot with its stage as of a date and its planned uses split into a list.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code``, ``name``, ``former_owner``, ``district_code``, ``district_name``,
        ``planned_use`` (as recorded), ``uses`` (list), ``primary_use`` (first listed),
        ``stage``, ``stage_label``, ``stage_since`` (date of the latest status change, NaT if
        none recorded by then), ``area_mu``; outlines in EPSG:4490.
    """
    day = resolve_as_of(as_of)
    p = Params()
    q = sql.SQL(
        """
        SELECT v.code, v.name, v.former_owner, v.district_code, d.name AS district_name, v.planned_use,
          coalesce(ARRAY(SELECT btrim(u) FROM regexp_split_to_table(coalesce(v.planned_use, ''), {sep}) AS u
                         WHERE btrim(u) <> ''), '{{}}'::text[]) AS uses,
          v.status_as_of AS stage, v.status_since AS stage_since, v.area_mu::float8 AS area_mu,
          ST_AsBinary(v.geom) AS geom
        FROM {vl} AS v LEFT JOIN renewal.districts AS d ON d.code = v.district_code
        ORDER BY v.code
        """
    ).format(sep=p.add("sep", USE_SEPARATORS), vl=as_of_subquery("vacated_land", p, day))
    with connect(conn) as c:
        gdf = frame(c, q, p, geometry="geom")
    lc = layer("vacated_land").lifecycle
    labels = {s.code: s.label for s in lc.statuses} if lc else {}
    gdf["primary_use"] = [u[0] if len(u) else None for u in gdf["uses"]]
    gdf["stage_label"] = gdf["stage"].map(labels)
    gdf["stage_since"] = pd.to_datetime(gdf["stage_since"])
    gdf.attrs["as_of"] = day
    return gdf


def vacated_land_by_stage(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Vacated land per stage (列清单 → … → 已建成) as of a date, every stage listed even when empty.

    Returns
    -------
    pandas.DataFrame
        ``stage``, ``stage_label``, ``plots``, ``area_mu``, ``share_area`` (of all vacated land),
        ``area_mu_at_or_beyond`` (cumulative from this stage to the last).
    """
    day = resolve_as_of(as_of)
    stages = codes("vacated_land")
    p = Params()
    q = sql.SQL(
        """
        WITH v AS {vl}
        SELECT s.stage, count(v.id)::int AS plots, coalesce(sum(v.area_mu), 0)::float8 AS area_mu
        FROM unnest({stages}::text[]) WITH ORDINALITY AS s(stage, n)
        LEFT JOIN v ON v.status_as_of = s.stage
        GROUP BY s.stage, s.n
        ORDER BY s.n
        """
    ).format(vl=as_of_subquery("vacated_land", p, day), stages=p.add("stages", stages))
    with connect(conn) as c:
        df = frame(c, q, p)
    lc = layer("vacated_land").lifecycle
    labels = {s.code: s.label for s in lc.statuses} if lc else {}
    df.insert(1, "stage_label", df["stage"].map(labels))
    total = float(df["area_mu"].sum())
    df["share_area"] = df["area_mu"] / total if total else float("nan")
    df["area_mu_at_or_beyond"] = df["area_mu"][::-1].cumsum()[::-1]
    df.attrs["as_of"] = day
    return df


def vacated_land_by_use(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Vacated land per planned use as of a date.

    A plot planned for several uses (居住、商业) counts under each (``plots``, ``area_mu``: the
    area of plots that include the use, so these do not add up to the total) and once under
    its first-listed use (``primary_plots``, ``primary_area_mu``, which add up).

    Returns
    -------
    pandas.DataFrame
        ``planned_use``, ``plots``, ``area_mu``, ``primary_plots``, ``primary_area_mu``,
        ``area_mu_handed_over`` (area of the plots with the use that have reached 交割/交付 or
        later), sorted by ``area_mu`` descending.
    """
    day = resolve_as_of(as_of)
    stages = codes("vacated_land")
    p = Params()
    q = sql.SQL(
        """
        WITH v AS {vl},
        u AS (
          SELECT v.id, v.area_mu, v.status_as_of, btrim(x.use) AS use, x.n
          FROM v CROSS JOIN LATERAL regexp_split_to_table(coalesce(v.planned_use, ''), {sep})
            WITH ORDINALITY AS x(use, n)
          WHERE btrim(x.use) <> ''
        ),
        firsts AS (SELECT DISTINCT ON (u.id) u.id, u.use FROM u ORDER BY u.id, u.n)
        SELECT u.use AS planned_use,
          count(DISTINCT u.id)::int AS plots,
          sum(u.area_mu)::float8 AS area_mu,
          count(f.id)::int AS primary_plots,
          coalesce(sum(u.area_mu) FILTER (WHERE f.id IS NOT NULL), 0)::float8 AS primary_area_mu,
          coalesce(sum(u.area_mu) FILTER (WHERE u.status_as_of = ANY({handed})), 0)::float8 AS area_mu_handed_over
        FROM u LEFT JOIN firsts AS f ON f.id = u.id AND f.use = u.use
        GROUP BY u.use
        ORDER BY area_mu DESC, planned_use
        """
    ).format(
        vl=as_of_subquery("vacated_land", p, day),
        sep=p.add("sep", USE_SEPARATORS),
        handed=p.add("handed", stages[stages.index("handed_over") :]),
    )
    with connect(conn) as c:
        df = frame(c, q, p)
    df.attrs["as_of"] = day
    return df


def constraint_conflicts(
    conn: ConnLike, layer_id: str = "vacated_land", as_of: dt.date | str | None = None
) -> gpd.GeoDataFrame:
    """Features of a polygon layer that overlap the Hutuo belt, its flood channel or the water-source zone.

    Belt zones overlap each other (the ecological zone contains the flood channel, …), so the
    overlap with each category is the area of the union of the intersections, never a sum.
    Features that only touch a zone (zero overlap area) are not conflicts.

    Parameters
    ----------
    layer_id
        A polygon layer: ``vacated_land`` (default), ``land_parcels``, ``urban_villages``,
        ``old_compounds``.
    as_of
        Date for the ``status`` column (ignored for layers without lifecycle).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per conflicting feature: ``code``, ``name``, ``district_code``, ``status``,
        ``area_mu``, and for each category C in ``hutuo_belt``, ``flood_channel``,
        ``water_source``: ``C_mu`` (overlap in mu) and ``C_zones`` (names of the zones
        touched); ``conflicts`` (list of categories with overlap > 0), ``belt_share`` (overlap
        with the belt / plot area); outlines in EPSG:4490. Sorted by ``hutuo_belt_mu`` descending.
    """
    day = resolve_as_of(as_of)
    lyr = layer(layer_id)
    if lyr.geometry_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInputError(f"layer {layer_id} is not a polygon layer; conflicts are measured by area")
    p = Params()
    src = (
        as_of_subquery(layer_id, p, day)
        if lyr.has_status
        else sql.SQL("(SELECT t.*, NULL::text AS status_as_of FROM {} AS t)").format(table(layer_id))
    )
    cat_cols = sql.SQL(",\n").join(
        sql.SQL(
            "coalesce(max(m.mu) FILTER (WHERE m.category = {c}), 0)::float8 AS {mu},\n"
            "coalesce(max(m.names) FILTER (WHERE m.category = {c}), '{{}}'::text[]) AS {zones}"
        ).format(c=p.add("cat", cat), mu=sql.Identifier(f"{cat}_mu"), zones=sql.Identifier(f"{cat}_zones"))
        for cat in CONSTRAINTS
    )
    q = sql.SQL(
        """
        WITH f AS {src},
        hits AS (
          SELECT f.id, c.category,
            ST_Union(ST_CollectionExtract(ST_Intersection(f.geom, z.geom), 3)) AS g,
            array_agg(DISTINCT z.name ORDER BY z.name) AS names
          FROM f JOIN renewal.hutuo_belt_zones AS z ON ST_Intersects(f.geom, z.geom)
          CROSS JOIN LATERAL (VALUES ({belt}::text), (CASE WHEN z.zone_type = ANY({special}) THEN z.zone_type END))
            AS c(category)
          WHERE c.category IS NOT NULL
          GROUP BY f.id, c.category
        ),
        m AS (
          SELECT hits.id, hits.category, hits.names,
            coalesce(ST_Area(ST_Transform(hits.g, {srid})), 0) * {m2_to_mu} AS mu
          FROM hits
        )
        SELECT f.code, f.name, f.district_code, f.status_as_of AS status, f.area_mu::float8 AS area_mu,
          {cat_cols},
          ST_AsBinary(f.geom) AS geom
        FROM f JOIN m ON m.id = f.id
        GROUP BY f.id, f.code, f.name, f.district_code, f.status_as_of, f.area_mu, f.geom
        HAVING max(m.mu) > 0
        ORDER BY max(m.mu) FILTER (WHERE m.category = {belt}) DESC NULLS LAST, f.code
        """
    ).format(
        src=src,
        belt=p.add("belt", "hutuo_belt"),
        special=p.add("special", [c for c in CONSTRAINTS if c != "hutuo_belt"]),
        srid=METRIC_SRID,
        m2_to_mu=p.add("m2_to_mu", M2_TO_MU),
        cat_cols=cat_cols,
    )
    with connect(conn) as c:
        gdf = frame(c, q, p, geometry="geom")
    gdf["conflicts"] = (
        [[cat for cat in CONSTRAINTS if row[f"{cat}_mu"] > 0] for _, row in gdf.iterrows()]
        if len(gdf)
        else pd.Series([], dtype=object)
    )
    gdf["belt_share"] = gdf["hutuo_belt_mu"] / gdf["area_mu"].where(gdf["area_mu"] > 0)
    gdf.attrs["as_of"] = day
    gdf.attrs["layer"] = layer_id
    return gdf


def far_violations(
    conn: ConnLike,
    *,
    max_far: float = 2.0,
    min_supply_year: int = 2021,
    land_use_code: str = "0701",
) -> gpd.GeoDataFrame:
    """Parcels of a land use supplied from a year on whose floor-area ratio exceeds a cap.

    The plan (task 8) caps new residential (城镇住宅用地 0701) floor-area ratio at 2.0 from
    2021; the defaults check exactly that. Parcels without a recorded ``far`` are not listed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code``, ``name``, ``district_code``, ``district_name``, ``ring_zone``,
        ``land_use_code``, ``supply_year``, ``status``, ``far``, ``excess_far``, ``area_mu``,
        ``excess_floor_area_m2`` (floor area above the cap), sorted by ``far`` descending.
    """
    if not 0 <= max_far <= 20:
        raise InvalidInputError("max_far must be between 0 and 20")
    p = Params()
    q = sql.SQL(
        """
        SELECT lp.code, lp.name, lp.district_code, d.name AS district_name, z.zone AS ring_zone,
          lp.land_use_code, lp.supply_year, lp.status, lp.far::float8 AS far,
          (lp.far - {max_far})::float8 AS excess_far, lp.area_mu::float8 AS area_mu,
          ((lp.far - {max_far}) * lp.area_mu / {m2_to_mu})::float8 AS excess_floor_area_m2,
          ST_AsBinary(lp.geom) AS geom
        FROM renewal.land_parcels AS lp
        LEFT JOIN renewal.districts AS d ON d.code = lp.district_code
        LEFT JOIN LATERAL (
          SELECT rz.zone FROM renewal.ring_zones AS rz WHERE ST_Intersects(rz.geom, ST_PointOnSurface(lp.geom))
          ORDER BY rz.code LIMIT 1) AS z ON true
        WHERE lp.land_use_code = {code} AND lp.supply_year >= {year} AND lp.far > {max_far}
        ORDER BY lp.far DESC, lp.code
        """
    ).format(
        max_far=p.add("max_far", float(max_far)),
        m2_to_mu=p.add("m2_to_mu", M2_TO_MU),
        code=p.add("code", land_use_code),
        year=p.add("year", int(min_supply_year)),
    )
    with connect(conn) as c:
        gdf = frame(c, q, p, geometry="geom")
    gdf.attrs.update(max_far=max_far, min_supply_year=min_supply_year, land_use_code=land_use_code)
    return gdf
