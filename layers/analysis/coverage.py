"""How far renewal reaches: old compounds, urban villages and resettlement housing by district, ring zone and date.

Every function takes a connection (or URL) and a date; statuses are read as of that date
from ``renewal.status_history`` (see :func:`layers.analysis._sql.as_of_subquery`), so the same
call answers "where were we at the end of 2022?" and "where are we today?".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import geopandas as gpd
import pandas as pd
from psycopg import sql

from gis.errors import InvalidInputError, NotFoundError
from layers.analysis._sql import (
    METRIC_SRID,
    ConnLike,
    Params,
    as_of_subquery,
    codes,
    columns_of,
    connect,
    frame,
    layer,
    resolve_as_of,
    table,
    table_exists,
)
from layers.history import status_intervals

RESETTLEMENT_LAYER = "resettlement_housing"
"""Table of the resettlement (棚改安置住房) projects, added by a later migration."""
_UNIT_COLUMNS = ("units", "housing_units", "dwelling_units", "dwellings", "households")
_STARTED_CODES = ("started", "under_construction", "construction")
_COMPLETED_CODES = ("completed", "basically_completed", "built", "delivered")


def _share(num: pd.Series, den: pd.Series) -> pd.Series:
    """Divide ``num`` by ``den``, NaN where the denominator is zero."""
    return num.astype(float) / den.astype(float).where(den != 0)


def _summary_with_shares(
    conn: ConnLike, q: sql.Composed, p: Params, day: dt.date, shares: Mapping[str, tuple[str, str]]
) -> pd.DataFrame:
    """Run a summary query, add each share column ``name: (done, all)`` with :func:`_share`, stamp ``as_of``.

    Why one helper: the by-district and by-ring-zone summaries all end this way, and the share
    rule (NaN where there is nothing to count) and the ``attrs['as_of']`` stamp must not drift
    apart between them.
    """
    with connect(conn) as c:
        df = frame(c, q, p)
    for name, (done, total) in shares.items():
        df[name] = _share(df[done], df[total])
    df.attrs["as_of"] = day
    return df


def renovation_by_district(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Old-compound renovation by district as of a date: by count, households and floor area.

    "Renovated" means the compound's status as of the date is the last of its lifecycle
    (``completed``, 已完工); ``started`` compounds are counted separately, not as renovated.
    Compounds outside every district outline have ``district_code`` NULL and form their own row.

    Returns
    -------
    pandas.DataFrame
        One row per district with compounds: ``district_code``, ``district_name``,
        ``compounds``, ``compounds_started``, ``compounds_completed``, ``households``,
        ``households_completed``, ``floor_area_m2``, ``floor_area_completed_m2`` and the shares
        ``share_compounds``, ``share_households``, ``share_floor_area`` (0–1).
    """
    day = resolve_as_of(as_of)
    _, started, completed = codes("old_compounds")
    p = Params()
    q = sql.SQL(
        """
        WITH c AS {oc}
        SELECT c.district_code, d.name AS district_name,
          count(*)::int AS compounds,
          count(*) FILTER (WHERE c.status_as_of = {started})::int AS compounds_started,
          count(*) FILTER (WHERE c.status_as_of = {completed})::int AS compounds_completed,
          coalesce(sum(c.households), 0)::bigint AS households,
          coalesce(sum(c.households) FILTER (WHERE c.status_as_of = {completed}), 0)::bigint AS households_completed,
          coalesce(sum(c.floor_area_m2), 0)::float8 AS floor_area_m2,
          coalesce(sum(c.floor_area_m2) FILTER (WHERE c.status_as_of = {completed}), 0)::float8
            AS floor_area_completed_m2
        FROM c LEFT JOIN renewal.districts AS d ON d.code = c.district_code
        GROUP BY c.district_code, d.name
        ORDER BY c.district_code
        """
    ).format(
        oc=as_of_subquery("old_compounds", p, day),
        started=p.add("started", started),
        completed=p.add("completed", completed),
    )
    shares = {
        "share_compounds": ("compounds_completed", "compounds"),
        "share_households": ("households_completed", "households"),
        "share_floor_area": ("floor_area_completed_m2", "floor_area_m2"),
    }
    return _summary_with_shares(conn, q, p, day, shares)


def urban_village_stages(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Urban-village projects by district and stage as of a date.

    Returns
    -------
    pandas.DataFrame
        One row per district: ``district_code``, ``district_name``, ``villages``,
        ``households``, ``area_mu``, one count column per stage in lifecycle order
        (``planned`` … ``completed``), ``villages_started`` (past the first stage, i.e. 启动 or
        later), ``share_started`` and ``share_completed``. ``attrs['stages']`` maps stage codes
        to Chinese labels.
    """
    day = resolve_as_of(as_of)
    stages = codes("urban_villages")
    p = Params()
    stage_cols = sql.SQL(",\n").join(
        sql.SQL("count(*) FILTER (WHERE v.status_as_of = {s})::int AS {alias}").format(
            s=p.add("stage", s), alias=sql.Identifier(s)
        )
        for s in stages
    )
    q = sql.SQL(
        """
        WITH v AS {uv}
        SELECT v.district_code, d.name AS district_name,
          count(*)::int AS villages,
          coalesce(sum(v.households), 0)::bigint AS households,
          coalesce(sum(v.area_mu), 0)::float8 AS area_mu,
          {stage_cols},
          count(*) FILTER (WHERE v.status_as_of <> {first})::int AS villages_started
        FROM v LEFT JOIN renewal.districts AS d ON d.code = v.district_code
        GROUP BY v.district_code, d.name
        ORDER BY v.district_code
        """
    ).format(uv=as_of_subquery("urban_villages", p, day), stage_cols=stage_cols, first=p.add("first", stages[0]))
    shares = {"share_started": ("villages_started", "villages"), "share_completed": (stages[-1], "villages")}
    df = _summary_with_shares(conn, q, p, day, shares)
    lc = layer("urban_villages").lifecycle
    df.attrs["stages"] = {s.code: s.label for s in lc.statuses} if lc else {}
    return df


def status_counts_over_time(
    conn: ConnLike, layer_id: str, dates: Sequence[dt.date], *, weight: str | None = None
) -> pd.DataFrame:
    """Features of a lifecycle layer per status at each date: the series behind a progress chart.

    Parameters
    ----------
    layer_id
        A registered layer with a lifecycle (``old_compounds``, ``urban_villages``, …).
    dates
        The dates to evaluate (e.g. :func:`period_ends`).
    weight
        Sum this numeric column instead of counting features (``households``, ``area_mu``,
        ``length_m``, ``spaces`` …); must be a numeric field of the layer.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``as_of`` (datetime), one column per status in lifecycle order.

    Notes
    -----
    Same rule as :func:`layers.analysis._sql.as_of_subquery`, computed for all dates at once
    from :func:`layers.history.status_intervals`: each status holds from its date until the
    feature's next one (rows of one day in recorded order, so the last of the day wins), a
    feature created before its first history row is in the first status from its creation
    date, and every date is joined to the interval valid on it; features absent on a date
    (created later) are not counted.
    """
    lyr = layer(layer_id)
    stages = codes(layer_id)
    if not stages:
        raise InvalidInputError(f"layer {layer_id} has no lifecycle status to chart")
    if not dates:
        raise InvalidInputError("give at least one date")
    if weight is not None:
        numeric = {f.name for f in lyr.fields if f.type in ("number", "integer")}
        if lyr.measure_field:
            numeric.add(lyr.measure_field)
        if weight not in numeric:
            raise InvalidInputError(f"{weight!r} is not a numeric field of {layer_id}; use one of {sorted(numeric)}")
    p = Params()
    value = (
        sql.SQL("coalesce(sum(t.{w}), 0)::float8").format(w=sql.Identifier(weight))
        if weight
        else sql.SQL("count(*)::float8")
    )
    q = sql.SQL(
        """
        WITH h AS ({intervals})
        SELECT d.as_of, h.status, {value} AS value
        FROM unnest({dates}::date[]) AS d(as_of)
        JOIN h ON h.valid_from <= d.as_of AND (h.valid_to IS NULL OR d.as_of < h.valid_to)
        JOIN {tbl} AS t ON t.id = h.feature_id
        GROUP BY 1, 2
        """
    ).format(
        intervals=status_intervals(lyr, p),
        value=value,
        dates=p.add("dates", [resolve_as_of(d) for d in dates]),
        tbl=table(layer_id),
    )
    with connect(conn) as c:
        long = frame(c, q, p)
    wide = long.pivot_table(index="as_of", columns="status", values="value", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(index=sorted({resolve_as_of(d) for d in dates}), columns=stages, fill_value=0.0)
    wide.index = pd.to_datetime(wide.index)
    wide.index.name = "as_of"
    wide.columns.name = "status"
    return wide


def period_ends(start: dt.date, end: dt.date, *, months: int = 3) -> list[dt.date]:
    """Last days of every ``months``-month period from ``start``'s period to ``end`` (quarters by default)."""
    if months < 1 or 12 % months:
        raise InvalidInputError("months must divide 12 (1, 2, 3, 4, 6 or 12)")
    out: list[dt.date] = []
    year, month = start.year, ((start.month - 1) // months + 1) * months
    while True:
        nxt = dt.date(year + (month // 12), month % 12 + 1, 1)
        last = nxt - dt.timedelta(days=1)
        if last > end:
            break
        out.append(last)
        month += months
        if month > 12:
            year, month = year + 1, month - 12
    return out


def has_resettlement_layer(conn: ConnLike) -> bool:
    """Whether this database has the resettlement-housing table (added by a later migration)."""
    with connect(conn) as c:
        return table_exists(c, "renewal", RESETTLEMENT_LAYER)


def resettlement_housing_progress(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Resettlement housing (棚改安置住房) started and completed by district as of a date.

    A project counts as started when its status is at or beyond the lifecycle's start
    status (``started``/``under_construction``, else the second status) and completed when at
    or beyond its completion status (``completed``/``basically_completed``/``built``, else the
    last). Units come from the first of ``units``, ``housing_units``, ``dwelling_units``,
    ``dwellings``, ``households`` the table has.

    Raises
    ------
    NotFoundError
        If the database has no ``renewal.resettlement_housing`` table (migration not applied,
        or an older schema): check with :func:`has_resettlement_layer` first.

    Returns
    -------
    pandas.DataFrame
        One row per district: ``district_code``, ``district_name``, ``projects``,
        ``projects_started``, ``projects_completed``, ``units``, ``units_started``,
        ``units_completed`` (units columns NULL if the table has no units column).
    """
    day = resolve_as_of(as_of)
    with connect(conn) as c:
        if not table_exists(c, "renewal", RESETTLEMENT_LAYER):
            raise NotFoundError(
                "This database has no resettlement-housing layer (renewal.resettlement_housing); "
                "apply the latest migrations (renewal db upgrade) and load or import the projects first."
            )
        try:
            stages = codes(RESETTLEMENT_LAYER)
        except Exception as exc:  # UnknownLayerError: table present but not registered in this version
            raise NotFoundError(
                "renewal.resettlement_housing exists but this toolkit version has no layer definition for it"
            ) from exc
        if len(stages) < 2:
            raise NotFoundError("the resettlement-housing layer has no start/complete lifecycle to measure")
        start_code = next((s for s in _STARTED_CODES if s in stages), stages[1])
        done_code = next((s for s in _COMPLETED_CODES if s in stages), stages[-1])
        started = stages[stages.index(start_code) :]
        done = stages[stages.index(done_code) :]
        cols = columns_of(c, "renewal", RESETTLEMENT_LAYER)
        unit_col = next((u for u in _UNIT_COLUMNS if u in cols), None)
        p = Params()
        units = sql.SQL("r.{}").format(sql.Identifier(unit_col)) if unit_col else sql.SQL("NULL::bigint")
        q = sql.SQL(
            """
            WITH r AS {rh}
            SELECT r.district_code, d.name AS district_name,
              count(*)::int AS projects,
              count(*) FILTER (WHERE r.status_as_of = ANY({started}))::int AS projects_started,
              count(*) FILTER (WHERE r.status_as_of = ANY({done}))::int AS projects_completed,
              sum({units})::bigint AS units,
              coalesce(sum({units}) FILTER (WHERE r.status_as_of = ANY({started})), 0)::bigint AS units_started,
              coalesce(sum({units}) FILTER (WHERE r.status_as_of = ANY({done})), 0)::bigint AS units_completed
            FROM r LEFT JOIN renewal.districts AS d ON d.code = r.district_code
            GROUP BY r.district_code, d.name
            ORDER BY r.district_code
            """
        ).format(
            rh=as_of_subquery(RESETTLEMENT_LAYER, p, day),
            started=p.add("started", started),
            done=p.add("done", done),
            units=units,
        )
        df = frame(c, q, p)
    df.attrs["as_of"] = day
    df.attrs["units_column"] = unit_col
    return df


def ring_zone_summary(conn: ConnLike, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Renewal inside versus outside the second ring (二环内"减量"、二环外"增量") as of a date.

    Polygons and points are assigned to the ring zone containing their point-on-surface;
    road lengths are split exactly by intersection with each zone (metres in the city's area CRS).

    Returns
    -------
    pandas.DataFrame
        One row per ring zone (inside → outside): ``zone``, ``zone_name``, ``zone_area_mu``;
        old compounds ``compounds``, ``compounds_completed``, ``households``,
        ``households_completed``, ``compound_area_mu``, ``share_compounds``; urban villages
        ``villages``, ``villages_started``, ``villages_completed``, ``village_area_mu``;
        vacated land ``vacated_plots``, ``vacated_area_mu``, ``vacated_handed_over_mu`` (交割/交付
        or later); public parking ``parking_sites_built``, ``parking_spaces_built``; planned roads
        ``road_planned_m``, ``road_opened_m``; land supply ``new_supply_mu`` and its
        area-weighted floor-area ratio ``new_supply_far`` (parcels supplied or built as of the date
        with ``supply_year`` from 2021 to the year of the date).
    """
    day = resolve_as_of(as_of)
    oc = codes("old_compounds")
    uv = codes("urban_villages")
    vl = codes("vacated_land")
    zone_field = layer("ring_zones").field("zone")
    zone_order = [ch.code for ch in zone_field.choices or []]
    p = Params()
    q = sql.SQL(
        """
        WITH oc AS {oc_q}, uv AS {uv_q}, vl AS {vl_q}, ps AS {ps_q}, pr AS {pr_q}, lp AS {lp_q},
        oc_z AS (
          SELECT z.code, count(*)::int AS n,
            count(*) FILTER (WHERE oc.status_as_of = {oc_done})::int AS n_done,
            coalesce(sum(oc.households), 0)::bigint AS hh,
            coalesce(sum(oc.households) FILTER (WHERE oc.status_as_of = {oc_done}), 0)::bigint AS hh_done,
            coalesce(sum(oc.area_mu), 0)::float8 AS mu
          FROM oc CROSS JOIN LATERAL (
            SELECT z.code FROM renewal.ring_zones AS z WHERE ST_Intersects(z.geom, ST_PointOnSurface(oc.geom))
            ORDER BY z.code LIMIT 1) AS z
          GROUP BY z.code),
        uv_z AS (
          SELECT z.code, count(*)::int AS n,
            count(*) FILTER (WHERE uv.status_as_of <> {uv_first})::int AS n_started,
            count(*) FILTER (WHERE uv.status_as_of = {uv_done})::int AS n_done,
            coalesce(sum(uv.area_mu), 0)::float8 AS mu
          FROM uv CROSS JOIN LATERAL (
            SELECT z.code FROM renewal.ring_zones AS z WHERE ST_Intersects(z.geom, ST_PointOnSurface(uv.geom))
            ORDER BY z.code LIMIT 1) AS z
          GROUP BY z.code),
        vl_z AS (
          SELECT z.code, count(*)::int AS n, coalesce(sum(vl.area_mu), 0)::float8 AS mu,
            coalesce(sum(vl.area_mu) FILTER (WHERE vl.status_as_of = ANY({vl_handed})), 0)::float8 AS mu_handed
          FROM vl CROSS JOIN LATERAL (
            SELECT z.code FROM renewal.ring_zones AS z WHERE ST_Intersects(z.geom, ST_PointOnSurface(vl.geom))
            ORDER BY z.code LIMIT 1) AS z
          GROUP BY z.code),
        ps_z AS (
          SELECT z.code, count(*)::int AS n, coalesce(sum(ps.spaces), 0)::bigint AS spaces
          FROM ps CROSS JOIN LATERAL (
            SELECT z.code FROM renewal.ring_zones AS z WHERE ST_Intersects(z.geom, ps.geom)
            ORDER BY z.code LIMIT 1) AS z
          WHERE ps.status_as_of = {ps_built}
          GROUP BY z.code),
        pr_z AS (
          SELECT z.code,
            sum(ST_Length(ST_Transform(ST_Intersection(pr.geom, z.geom), {srid})))::float8 AS m,
            coalesce(sum(ST_Length(ST_Transform(ST_Intersection(pr.geom, z.geom), {srid})))
              FILTER (WHERE pr.status_as_of = {pr_opened}), 0)::float8 AS m_opened
          FROM pr JOIN renewal.ring_zones AS z ON ST_Intersects(pr.geom, z.geom)
          GROUP BY z.code),
        lp_z AS (
          SELECT z.code, sum(lp.area_mu)::float8 AS mu,
            (sum(lp.area_mu * lp.far) / nullif(sum(lp.area_mu) FILTER (WHERE lp.far IS NOT NULL), 0))::float8 AS far
          FROM lp CROSS JOIN LATERAL (
            SELECT z.code FROM renewal.ring_zones AS z WHERE ST_Intersects(z.geom, ST_PointOnSurface(lp.geom))
            ORDER BY z.code LIMIT 1) AS z
          WHERE lp.status_as_of = ANY({lp_supplied}) AND lp.supply_year BETWEEN 2021 AND {year}
          GROUP BY z.code)
        SELECT z.zone, z.name AS zone_name, z.area_mu::float8 AS zone_area_mu,
          coalesce(oc_z.n, 0) AS compounds, coalesce(oc_z.n_done, 0) AS compounds_completed,
          coalesce(oc_z.hh, 0) AS households, coalesce(oc_z.hh_done, 0) AS households_completed,
          coalesce(oc_z.mu, 0) AS compound_area_mu,
          coalesce(uv_z.n, 0) AS villages, coalesce(uv_z.n_started, 0) AS villages_started,
          coalesce(uv_z.n_done, 0) AS villages_completed, coalesce(uv_z.mu, 0) AS village_area_mu,
          coalesce(vl_z.n, 0) AS vacated_plots, coalesce(vl_z.mu, 0) AS vacated_area_mu,
          coalesce(vl_z.mu_handed, 0) AS vacated_handed_over_mu,
          coalesce(ps_z.n, 0) AS parking_sites_built, coalesce(ps_z.spaces, 0) AS parking_spaces_built,
          coalesce(pr_z.m, 0) AS road_planned_m, coalesce(pr_z.m_opened, 0) AS road_opened_m,
          coalesce(lp_z.mu, 0) AS new_supply_mu, lp_z.far AS new_supply_far
        FROM renewal.ring_zones AS z
        LEFT JOIN oc_z ON oc_z.code = z.code
        LEFT JOIN uv_z ON uv_z.code = z.code
        LEFT JOIN vl_z ON vl_z.code = z.code
        LEFT JOIN ps_z ON ps_z.code = z.code
        LEFT JOIN pr_z ON pr_z.code = z.code
        LEFT JOIN lp_z ON lp_z.code = z.code
        ORDER BY array_position({zone_order}::text[], z.zone), z.code
        """
    ).format(
        oc_q=as_of_subquery("old_compounds", p, day),
        uv_q=as_of_subquery("urban_villages", p, day),
        vl_q=as_of_subquery("vacated_land", p, day),
        ps_q=as_of_subquery("parking_sites", p, day),
        pr_q=as_of_subquery("planned_roads", p, day),
        lp_q=as_of_subquery("land_parcels", p, day),
        oc_done=p.add("oc_done", oc[-1]),
        uv_first=p.add("uv_first", uv[0]),
        uv_done=p.add("uv_done", uv[-1]),
        vl_handed=p.add("vl_handed", vl[vl.index("handed_over") :]),
        ps_built=p.add("ps_built", codes("parking_sites")[-1]),
        pr_opened=p.add("pr_opened", codes("planned_roads")[-1]),
        lp_supplied=p.add("lp_supplied", ["supplied", "built"]),
        year=p.add("year", day.year),
        srid=METRIC_SRID,
        zone_order=p.add("zone_order", zone_order),
    )
    shares = {
        "share_compounds": ("compounds_completed", "compounds"),
        "share_villages_started": ("villages_started", "villages"),
        "share_road_opened": ("road_opened_m", "road_planned_m"),
    }
    return _summary_with_shares(conn, q, p, day, shares)


__all__ = [
    "has_resettlement_layer",
    "period_ends",
    "read_layer",
    "renovation_by_district",
    "resettlement_housing_progress",
    "ring_zone_summary",
    "status_counts_over_time",
    "urban_village_stages",
]


def read_layer(conn: ConnLike, layer_id: str, as_of: dt.date | str | None = None) -> gpd.GeoDataFrame:
    """A whole registered layer as a GeoDataFrame (EPSG:4490), with ``status_as_of`` for lifecycle layers.

    For maps and ad-hoc questions in notebooks; the set-based analyses above do not need it.
    The status columns are ``status`` (current) and, for lifecycle layers, ``status_as_of`` and
    ``status_since`` as of the date (see :func:`layers.analysis._sql.as_of_subquery`); a
    feature that did not exist yet on the date is kept with ``status_as_of`` null.
    """
    lyr = layer(layer_id)
    p = Params()
    src = (
        as_of_subquery(layer_id, p, resolve_as_of(as_of), include_absent=True) if lyr.has_status else table(layer_id)
    )
    q = sql.SQL(
        "SELECT to_jsonb(t) - 'geom' - 'created_at' - 'updated_at' AS props, ST_AsBinary(t.geom) AS geom "
        "FROM {src} AS t ORDER BY t.code"
    ).format(src=src)
    with connect(conn) as c:
        raw = frame(c, q, p, geometry="geom")
    props = pd.DataFrame.from_records(list(raw["props"]), index=raw.index)
    if "status_since" in props:
        props["status_since"] = pd.to_datetime(props["status_since"])
    out: gpd.GeoDataFrame = gpd.GeoDataFrame(props, geometry=raw.geometry, crs=raw.crs)
    out.attrs["layer"] = layer_id
    return out
