"""layers.analysis against the demo city: every value re-derived with independent SQL or geopandas.

The expected values are computed differently from the functions under test: statuses as
of a date with ``DISTINCT ON`` over the history (the functions use a LATERAL ``LIMIT 1``),
ring-zone and district assignments and overlay areas with geopandas/GEOS (the functions use
PostGIS), nearest distances by brute force on the geography type (the functions use KNN in
EPSG:4547). Writes needed to exercise empty demo layers happen in a transaction that is
rolled back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from gis.errors import InvalidInputError, NotFoundError
from layers import analysis as an
from layers.errors import UnknownLayerError

DATES = [dt.date(2020, 12, 31), dt.date(2021, 12, 31), dt.date(2023, 6, 30), dt.date(2099, 1, 1)]
LEN_RTOL = 1e-4
"""PostGIS cuts lines/polygons in EPSG:4490 (edges straight in lon/lat, as stored) and measures in
EPSG:4547; the geopandas re-derivation cuts in EPSG:4547. The cut points differ by centimetres,
so overlay lengths and areas agree to about 1e-4, not to float precision."""
FIRST = {
    "old_compounds": "pending",
    "urban_villages": "planned",
    "vacated_land": "listed",
    "planned_roads": "planned",
    "parking_sites": "planned",
    "land_parcels": "existing",
    "resettlement_housing": "planned",
}


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def df_of(conn: psycopg.Connection[Any], query: str, params: Any = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description or []]
        return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def gdf_of(conn: psycopg.Connection[Any], query: str, params: Any = None) -> gpd.GeoDataFrame:
    df = df_of(conn, query, params)
    geom = shapely.from_wkb([bytes(b) for b in df["wkb"]])
    return gpd.GeoDataFrame(df.drop(columns=["wkb"]), geometry=geom, crs="EPSG:4490")


def features_as_of(conn: psycopg.Connection[Any], tbl: str, day: dt.date, cols: str) -> pd.DataFrame:
    """Features of ``renewal.<tbl>`` existing on ``day`` with ``st`` = their status then (DISTINCT ON, not LATERAL).

    Without history by the day, a feature created by then is in the first status; one created
    later does not exist yet and is left out (the rule of layers/history.py).
    """
    df = df_of(
        conn,
        f"""
        WITH last AS (
          SELECT DISTINCT ON (feature_id) feature_id, to_status
          FROM renewal.status_history WHERE layer = %(t)s AND effective_date <= %(d)s
          ORDER BY feature_id, effective_date DESC, id DESC)
        SELECT t.id, {cols}, last.to_status AS st,
               t.created_at <= (%(d)s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai' AS existed
        FROM renewal.{tbl} AS t LEFT JOIN last ON last.feature_id = t.id
        """,
        {"t": tbl, "d": day},
    )
    df = df[df["st"].notna() | df["existed"]].drop(columns=["existed"]).reset_index(drop=True)
    df["st"] = df["st"].fillna(FIRST[tbl])
    return df


def district_names(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return dict(df_of(conn, "SELECT code, name FROM renewal.districts").itertuples(index=False, name=None))


def test_demo_has_what_the_analyses_need(db: psycopg.Connection[Any]) -> None:
    row = db.execute(
        "SELECT (SELECT count(*) FROM renewal.old_compounds), (SELECT count(*) FROM renewal.parking_sites), "
        "(SELECT count(*) FROM renewal.vacated_land), (SELECT count(*) FROM renewal.planned_roads), "
        "(SELECT count(*) FROM renewal.ring_zones), (SELECT count(*) FROM renewal.hutuo_belt_zones)"
    ).fetchone()
    assert row is not None and all(n > 0 for n in row)


# --- renewal coverage ------------------------------------------------------------------------


@pytest.mark.parametrize("day", DATES, ids=str)
def test_renovation_by_district(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.renovation_by_district(db, day).set_index("district_code")
    f = features_as_of(db, "old_compounds", day, "t.district_code, t.households, t.floor_area_m2")
    f["done"] = f["st"] == "completed"
    exp = f.groupby("district_code").agg(
        compounds=("id", "size"),
        compounds_started=("st", lambda s: int((s == "started").sum())),
        compounds_completed=("done", "sum"),
        households=("households", "sum"),
        floor_area_m2=("floor_area_m2", "sum"),
    )
    exp["households_completed"] = f[f["done"]].groupby("district_code")["households"].sum()
    exp["floor_area_completed_m2"] = f[f["done"]].groupby("district_code")["floor_area_m2"].sum()
    exp = exp.fillna(0)
    assert sorted(got.index) == sorted(exp.index)
    for col in exp.columns:
        np.testing.assert_allclose(
            got[col].astype(float), exp.loc[got.index, col].astype(float), rtol=1e-9, err_msg=col
        )
    np.testing.assert_allclose(
        got["share_compounds"], exp.loc[got.index, "compounds_completed"] / exp.loc[got.index, "compounds"]
    )
    np.testing.assert_allclose(
        got["share_households"], exp.loc[got.index, "households_completed"] / exp.loc[got.index, "households"]
    )
    names = district_names(db)
    assert [names[c] for c in got.index] == list(got["district_name"])


def test_far_future_status_equals_current_status(db: psycopg.Connection[Any]) -> None:
    got = an.renovation_by_district(db, dt.date(2999, 1, 1)).set_index("district_code")
    exp = df_of(
        db,
        "SELECT district_code, count(*) FILTER (WHERE status = 'completed') AS n FROM renewal.old_compounds "
        "GROUP BY district_code",
    ).set_index("district_code")
    assert got["compounds_completed"].to_dict() == exp["n"].to_dict()


def test_as_of_accepts_iso_string_and_rejects_garbage(db: psycopg.Connection[Any], db_url: str) -> None:
    a = an.renovation_by_district(db, "2022-06-30")
    b = an.renovation_by_district(db_url, dt.date(2022, 6, 30))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(InvalidInputError):
        an.renovation_by_district(db, "end of 2022")


@pytest.mark.parametrize("day", DATES[:3], ids=str)
def test_urban_village_stages(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.urban_village_stages(db, day).set_index("district_code")
    f = features_as_of(db, "urban_villages", day, "t.district_code, t.households, t.area_mu")
    counts = pd.crosstab(f["district_code"], f["st"])
    stages = ["planned", "started", "acquisition", "demolition", "construction", "completed"]
    for s in stages:
        exp = counts[s] if s in counts else pd.Series(0, index=counts.index)
        assert got[s].to_dict() == exp.to_dict(), s
    assert got["villages"].to_dict() == f.groupby("district_code").size().to_dict()
    assert (
        got["villages_started"].to_dict()
        == f[f["st"] != "planned"].groupby("district_code").size().reindex(got.index, fill_value=0).to_dict()
    )
    np.testing.assert_allclose(got["area_mu"], f.groupby("district_code")["area_mu"].sum().loc[got.index])
    assert list(got.attrs["stages"]) == stages


def test_status_counts_over_time(db: psycopg.Connection[Any]) -> None:
    dates = an.period_ends(dt.date(2020, 1, 1), dt.date(2025, 12, 31))
    got = an.status_counts_over_time(db, "old_compounds", dates, weight="households")
    hist = df_of(
        db,
        "SELECT h.feature_id, h.to_status, h.effective_date, h.id FROM renewal.status_history h "
        "WHERE h.layer = 'old_compounds' ORDER BY h.effective_date, h.id",
    )
    rows = df_of(
        db, "SELECT id, households, (created_at AT TIME ZONE 'Asia/Shanghai')::date AS created "
        "FROM renewal.old_compounds",
    )
    hh = dict(zip(rows["id"], rows["households"], strict=True))
    created = dict(zip(rows["id"], rows["created"], strict=True))
    assert list(got.columns) == ["pending", "started", "completed"]
    for day in dates:
        upto = hist[hist["effective_date"] <= day]
        last = upto.groupby("feature_id")["to_status"].last()
        # no history by the day: pending if created by then, else not there yet
        status = {fid: last.get(fid, "pending" if created[fid] <= day else None) for fid in hh}
        exp = pd.Series({s: float(sum(hh[f] for f, st in status.items() if st == s)) for s in got.columns})
        np.testing.assert_allclose(got.loc[pd.Timestamp(day)].to_numpy(), exp.to_numpy(), err_msg=str(day))


def test_status_counts_over_time_counts(db: psycopg.Connection[Any]) -> None:
    dates = [dt.date(2021, 12, 31), dt.date(2024, 12, 31)]
    got = an.status_counts_over_time(db, "parking_sites", dates)
    for day in dates:
        f = features_as_of(db, "parking_sites", day, "t.spaces")
        exp = f["st"].value_counts().reindex(got.columns, fill_value=0)
        assert got.loc[pd.Timestamp(day)].astype(int).to_dict() == exp.to_dict()


@pytest.mark.parametrize(
    ("layer_id", "weight", "dates", "error"),
    [
        ("old_compounds", "name", [dt.date(2022, 1, 1)], InvalidInputError),
        ("old_compounds", "no_such_column", [dt.date(2022, 1, 1)], InvalidInputError),
        ("districts", None, [dt.date(2022, 1, 1)], InvalidInputError),
        ("old_compounds", None, [], InvalidInputError),
        ("no_such_layer", None, [dt.date(2022, 1, 1)], UnknownLayerError),
    ],
)
def test_status_counts_over_time_rejects(
    db: psycopg.Connection[Any], layer_id: str, weight: str | None, dates: list[dt.date], error: type[Exception]
) -> None:
    with pytest.raises(error):
        an.status_counts_over_time(db, layer_id, dates, weight=weight)


@pytest.mark.parametrize("months", [1, 3, 6, 12])
def test_period_ends(months: int) -> None:
    got = an.period_ends(dt.date(2021, 1, 1), dt.date(2025, 12, 31), months=months)
    exp = [d.date() for d in pd.date_range("2021-01-01", "2025-12-31", freq="ME") if d.month % months == 0]
    assert got == exp


def test_period_ends_rejects_bad_months() -> None:
    with pytest.raises(InvalidInputError):
        an.period_ends(dt.date(2021, 1, 1), dt.date(2022, 1, 1), months=5)


# --- resettlement housing (empty in the demo: projects inserted in a rolled-back transaction) --


@pytest.fixture()
def tx(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction that is rolled back at the end."""
    with psycopg.connect(db_url) as c:
        try:
            yield c
        finally:
            c.rollback()


def _insert_resettlement(tx: psycopg.Connection[Any]) -> None:
    """Three projects with dated status changes, written through the history trigger."""
    box = "SRID=4490;MULTIPOLYGON((({x} 38.03,{x2} 38.03,{x2} 38.035,{x} 38.035,{x} 38.03)))"
    rows = [
        ("AZF-T1", "130102", 1200, 114.50, "2021-03-01", "started", "2022-09-30", "completed"),
        ("AZF-T2", "130104", 800, 114.45, "2021-07-15", "started", None, None),
        ("AZF-T3", "130104", 500, 114.47, None, None, None, None),
    ]
    for code, district, units, x, d1, s1, d2, s2 in rows:
        tx.execute("SELECT set_config('renewal.effective_date', '2020-06-01', true)")
        tx.execute(
            "INSERT INTO renewal.resettlement_housing (code, name, district_code, status, units, geom) "
            "VALUES (%s, %s, %s, 'planned', %s, %s)",
            (code, code, district, units, box.format(x=x, x2=x + 0.01)),
        )
        for d, s in ((d1, s1), (d2, s2)):
            if d:
                tx.execute("SELECT set_config('renewal.effective_date', %s, true)", (d,))
                tx.execute("UPDATE renewal.resettlement_housing SET status = %s WHERE code = %s", (s, code))


@pytest.mark.parametrize("day", [dt.date(2021, 1, 1), dt.date(2021, 12, 31), dt.date(2023, 1, 1)], ids=str)
def test_resettlement_housing_progress(tx: psycopg.Connection[Any], day: dt.date) -> None:
    assert an.has_resettlement_layer(tx)
    _insert_resettlement(tx)
    got = an.resettlement_housing_progress(tx, day).set_index("district_code")
    f = features_as_of(tx, "resettlement_housing", day, "t.district_code, t.units")
    started = f["st"].isin(["started", "completed"])
    done = f["st"] == "completed"
    assert got["projects"].to_dict() == f.groupby("district_code").size().to_dict()
    assert got["projects_started"].to_dict() == started.groupby(f["district_code"]).sum().to_dict()
    assert got["units_started"].to_dict() == f["units"].where(started, 0).groupby(f["district_code"]).sum().to_dict()
    assert got["units_completed"].to_dict() == f["units"].where(done, 0).groupby(f["district_code"]).sum().to_dict()
    assert got.attrs["units_column"] == "units"


def test_resettlement_housing_absent_table_is_a_clear_error(tx: psycopg.Connection[Any]) -> None:
    tx.execute("ALTER TABLE renewal.resettlement_housing RENAME TO resettlement_housing_hidden")
    assert not an.has_resettlement_layer(tx)
    with pytest.raises(NotFoundError, match="resettlement"):
        an.resettlement_housing_progress(tx)


# --- ring zones -----------------------------------------------------------------------------


def _zone_of_points(db: psycopg.Connection[Any], points: gpd.GeoDataFrame) -> pd.Series:
    zones = gdf_of(db, "SELECT zone, ST_AsBinary(geom) AS wkb FROM renewal.ring_zones")
    joined = gpd.sjoin(points, zones, how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    return joined["zone"]


@pytest.mark.parametrize("day", [dt.date(2021, 12, 31), dt.date(2025, 12, 31)], ids=str)
def test_ring_zone_summary(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.ring_zone_summary(db, day).set_index("zone")
    assert list(got.index) == ["inside_2nd", "between_2nd_3rd", "outside_3rd"]

    oc = features_as_of(
        db, "old_compounds", day, "t.households, t.area_mu, ST_AsBinary(ST_PointOnSurface(t.geom)) AS wkb"
    )
    oc = gpd.GeoDataFrame(oc.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in oc["wkb"]]), crs=4490)
    oc["zone"] = _zone_of_points(db, oc)
    assert got["compounds"].to_dict() == oc.groupby("zone").size().reindex(got.index, fill_value=0).to_dict()
    done = oc[oc["st"] == "completed"]
    assert (
        got["compounds_completed"].to_dict() == done.groupby("zone").size().reindex(got.index, fill_value=0).to_dict()
    )
    assert got["households_completed"].to_dict() == (
        done.groupby("zone")["households"].sum().reindex(got.index, fill_value=0).to_dict()
    )

    ps = features_as_of(db, "parking_sites", day, "t.spaces, ST_AsBinary(t.geom) AS wkb")
    ps = ps[ps["st"] == "built"]
    ps = gpd.GeoDataFrame(ps.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in ps["wkb"]]), crs=4490)
    ps["zone"] = _zone_of_points(db, ps)
    assert got["parking_spaces_built"].to_dict() == (
        ps.groupby("zone")["spaces"].sum().reindex(got.index, fill_value=0).to_dict()
    )

    # road lengths: GEOS overlay in EPSG:4547 instead of PostGIS
    roads = features_as_of(db, "planned_roads", day, "ST_AsBinary(t.geom) AS wkb")
    roads = gpd.GeoDataFrame(
        roads.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in roads["wkb"]]), crs=4490
    ).to_crs(4547)
    zones = gdf_of(db, "SELECT zone, ST_AsBinary(geom) AS wkb FROM renewal.ring_zones").to_crs(4547)
    for zone, zgeom in zip(zones["zone"], zones.geometry, strict=True):
        inter = roads.geometry.intersection(zgeom).length
        np.testing.assert_allclose(got.loc[zone, "road_planned_m"], inter.sum(), rtol=LEN_RTOL, atol=1.0)
        np.testing.assert_allclose(
            got.loc[zone, "road_opened_m"], inter[roads["st"] == "opened"].sum(), rtol=LEN_RTOL, atol=1.0
        )

    vl = features_as_of(db, "vacated_land", day, "t.area_mu, ST_AsBinary(ST_PointOnSurface(t.geom)) AS wkb")
    vl = gpd.GeoDataFrame(vl.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in vl["wkb"]]), crs=4490)
    vl["zone"] = _zone_of_points(db, vl)
    np.testing.assert_allclose(
        got["vacated_area_mu"].to_numpy(), vl.groupby("zone")["area_mu"].sum().reindex(got.index, fill_value=0.0)
    )
    handed = vl[vl["st"].isin(["handed_over", "under_development", "built"])]
    np.testing.assert_allclose(
        got["vacated_handed_over_mu"].to_numpy(),
        handed.groupby("zone")["area_mu"].sum().reindex(got.index, fill_value=0.0),
    )
    np.testing.assert_allclose(
        got["zone_area_mu"].to_numpy(), zones.set_index("zone").area.loc[got.index].to_numpy() / 666.6666667, rtol=1e-6
    )


def test_ring_zone_new_supply_far(db: psycopg.Connection[Any]) -> None:
    day = dt.date(2024, 12, 31)
    got = an.ring_zone_summary(db, day).set_index("zone")
    lp = features_as_of(
        db, "land_parcels", day, "t.supply_year, t.far, t.area_mu, ST_AsBinary(ST_PointOnSurface(t.geom)) AS wkb"
    )
    lp = lp[lp["st"].isin(["supplied", "built"]) & lp["supply_year"].between(2021, 2024)]
    lp = gpd.GeoDataFrame(lp.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in lp["wkb"]]), crs=4490)
    lp["zone"] = _zone_of_points(db, lp)
    for zone, grp in lp.groupby("zone"):
        np.testing.assert_allclose(got.loc[zone, "new_supply_mu"], grp["area_mu"].sum(), rtol=1e-9)
        with_far = grp.dropna(subset=["far"])
        np.testing.assert_allclose(
            got.loc[zone, "new_supply_far"], (with_far["far"] * with_far["area_mu"]).sum() / with_far["area_mu"].sum()
        )


# --- parking --------------------------------------------------------------------------------


def _parking_pairs(db: psycopg.Connection[Any], day: dt.date) -> pd.DataFrame:
    """Every compound × built site pair with the geodesic distance (brute force on geography)."""
    return df_of(
        db,
        """
        WITH last AS (
          SELECT DISTINCT ON (feature_id) feature_id, to_status FROM renewal.status_history
          WHERE layer = 'parking_sites' AND effective_date <= %(d)s ORDER BY feature_id, effective_date DESC, id DESC),
        built AS (SELECT p.* FROM renewal.parking_sites p JOIN last ON last.feature_id = p.id
                  WHERE last.to_status = 'built')
        SELECT c.code, b.code AS site, b.spaces, ST_Distance(c.geom::geography, b.geom::geography) AS d
        FROM renewal.old_compounds c CROSS JOIN built b
        """,
        {"d": day},
    )


@pytest.mark.parametrize("day", [dt.date(2022, 12, 31), dt.date(2025, 12, 31)], ids=str)
def test_parking_coverage(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.parking_coverage(db, day).set_index("code")
    assert len(got) == db.execute("SELECT count(*) FROM renewal.old_compounds").fetchone()[0]  # type: ignore[index]
    pairs = _parking_pairs(db, day)
    nearest = pairs.loc[pairs.groupby("code")["d"].idxmin()].set_index("code")
    np.testing.assert_allclose(
        got.loc[nearest.index, "nearest_distance_m"], nearest["d"].astype(float), rtol=1e-3, atol=1.0
    )
    # where the nearest two sites are not nearly tied, the same site is named
    second = pairs.sort_values("d").groupby("code")["d"].nth(1)
    clear = nearest.index[(second.reindex(nearest.index) - nearest["d"]).fillna(np.inf) > 2.0]
    assert (got.loc[clear, "nearest_site_code"] == nearest.loc[clear, "site"]).all()
    for r in (300, 500):
        # a site within 0.5 m of the radius may fall on either side (planar vs geodesic)
        lo = pairs[pairs["d"] <= r - 0.5].groupby("code")["spaces"].sum().reindex(got.index, fill_value=0)
        hi = pairs[pairs["d"] <= r + 0.5].groupby("code")["spaces"].sum().reindex(got.index, fill_value=0)
        col = got[f"spaces_{r}m"]
        assert ((col >= lo) & (col <= hi)).all(), r
        hh = got["households"].astype(float).where(got["households"] > 0)
        np.testing.assert_allclose(got[f"spaces_per_household_{r}m"], col / hh)


def test_parking_before_any_site_is_built(db: psycopg.Connection[Any]) -> None:
    first_built = db.execute(
        "SELECT min(effective_date) FROM renewal.status_history WHERE layer = 'parking_sites' AND to_status = 'built'"
    ).fetchone()[0]  # type: ignore[index]
    got = an.parking_coverage(db, first_built - dt.timedelta(days=1))
    assert got["nearest_distance_m"].isna().all()
    assert (got["spaces_500m"] == 0).all()
    by_d = an.parking_coverage_by_district(db, first_built - dt.timedelta(days=1))
    assert (by_d["compounds_covered"] == 0).all()


@pytest.mark.parametrize("radius", [300.0, 500.0, 1000.0])
def test_parking_coverage_by_district(db: psycopg.Connection[Any], radius: float) -> None:
    day = dt.date(2025, 12, 31)
    got = an.parking_coverage_by_district(db, day, radius_m=radius).set_index("district_code")
    pairs = _parking_pairs(db, day)
    nearest = pairs.groupby("code")["d"].min()
    oc = df_of(db, "SELECT code, district_code, households FROM renewal.old_compounds").set_index("code")
    oc["nearest"] = nearest.reindex(oc.index)
    # compounds within 0.5 m of the radius may count either way (planar vs geodesic)
    sure = oc["nearest"] <= radius - 0.5
    maybe = oc["nearest"] <= radius + 0.5
    lo = sure.groupby(oc["district_code"]).sum()
    hi = maybe.groupby(oc["district_code"]).sum()
    assert ((got["compounds_covered"] >= lo.loc[got.index]) & (got["compounds_covered"] <= hi.loc[got.index])).all()
    assert got["compounds"].to_dict() == oc.groupby("district_code").size().to_dict()
    hh_lo = oc["households"].where(sure, 0).groupby(oc["district_code"]).sum()
    hh_hi = oc["households"].where(maybe, 0).groupby(oc["district_code"]).sum()
    assert (
        (got["households_covered"] >= hh_lo.loc[got.index]) & (got["households_covered"] <= hh_hi.loc[got.index])
    ).all()
    np.testing.assert_allclose(got["share_compounds_covered"], got["compounds_covered"] / got["compounds"])
    np.testing.assert_allclose(
        got["median_nearest_m"], oc.groupby("district_code")["nearest"].median().loc[got.index], rtol=1e-3, atol=1.0
    )


def test_parking_gaps(db: psycopg.Connection[Any]) -> None:
    day = dt.date(2023, 12, 31)
    gaps = an.parking_gaps(db, day, limit=15)
    assert list(gaps["rank"]) == list(range(1, 16))
    full = an.parking_coverage(db, day, radii=[500]).set_index("code")
    # no compound outside the list is worse than the last one listed
    last = gaps.iloc[-1]
    rest = full.drop(index=gaps["code"])
    key = rest["spaces_per_household_500m"].fillna(np.inf)
    worse = (key < last["spaces_per_household_500m"]) | (
        (key == last["spaces_per_household_500m"]) & (rest["nearest_distance_m"] > last["nearest_distance_m"])
    )
    assert not worse.any()
    # the list itself is ordered worst first
    spp = gaps["spaces_per_household_500m"].to_numpy()
    assert (np.diff(spp) >= 0).all()
    dist = gaps["nearest_distance_m"].to_numpy()
    assert all(dist[i] >= dist[i + 1] for i in range(len(dist) - 1) if spp[i] == spp[i + 1])


@pytest.mark.parametrize("radii", [[], [0], [-5], [6000], [300, 300.0]], ids=str)
def test_parking_rejects_bad_radii(db: psycopg.Connection[Any], radii: list[float]) -> None:
    with pytest.raises(InvalidInputError):
        an.parking_coverage(db, radii=radii)


# --- vacated land and conflicts -------------------------------------------------------------


@pytest.mark.parametrize("day", [dt.date(2021, 3, 1), dt.date(2021, 12, 31), dt.date(2025, 12, 31)], ids=str)
def test_vacated_land_by_stage(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.vacated_land_by_stage(db, day).set_index("stage")
    f = features_as_of(db, "vacated_land", day, "t.area_mu")
    stages = ["listed", "reported", "acquired", "handed_over", "under_development", "built"]
    assert list(got.index) == stages
    assert got["plots"].to_dict() == f["st"].value_counts().reindex(stages, fill_value=0).to_dict()
    np.testing.assert_allclose(got["area_mu"], f.groupby("st")["area_mu"].sum().reindex(stages, fill_value=0.0))
    np.testing.assert_allclose(got["share_area"].sum(), 1.0)
    # every plot existing on the day is at or beyond the first stage
    np.testing.assert_allclose(got.loc["listed", "area_mu_at_or_beyond"], f["area_mu"].sum())
    assert got.loc["handed_over", "stage_label"] == "交割/交付"


def test_vacated_land_by_use(db: psycopg.Connection[Any]) -> None:
    day = dt.date(2022, 12, 31)
    got = an.vacated_land_by_use(db, day).set_index("planned_use")
    f = features_as_of(db, "vacated_land", day, "t.planned_use, t.area_mu")
    rows = []
    for _, r in f.iterrows():
        uses = [u.strip() for u in re.split(r"[、,，;；/／]+", r["planned_use"] or "") if u.strip()]
        for i, u in enumerate(uses):
            rows.append(
                {
                    "use": u,
                    "primary": i == 0,
                    "mu": r["area_mu"],
                    "handed": r["st"] in ("handed_over", "under_development", "built"),
                }
            )
    e = pd.DataFrame(rows)
    assert sorted(got.index) == sorted(e["use"].unique())
    np.testing.assert_allclose(got["area_mu"], e.groupby("use")["mu"].sum().loc[got.index])
    assert got["plots"].to_dict() == e.groupby("use").size().to_dict()
    np.testing.assert_allclose(
        got["primary_area_mu"], e[e["primary"]].groupby("use")["mu"].sum().reindex(got.index, fill_value=0.0)
    )
    np.testing.assert_allclose(
        got["area_mu_handed_over"], e[e["handed"]].groupby("use")["mu"].sum().reindex(got.index, fill_value=0.0)
    )
    np.testing.assert_allclose(got["primary_area_mu"].sum(), f["area_mu"].sum())


def test_vacated_land_plots(db: psycopg.Connection[Any]) -> None:
    day = dt.date(2023, 6, 30)
    got = an.vacated_land_plots(db, day).set_index("code")
    f = features_as_of(db, "vacated_land", day, "t.code").set_index("code")
    assert got["stage"].to_dict() == f["st"].to_dict()
    assert got.crs.to_epsg() == 4490
    assert (got["primary_use"] == [u[0] if len(u) else None for u in got["uses"]]).all()


def _expected_conflicts(db: psycopg.Connection[Any], tbl: str, where: str = "TRUE") -> pd.DataFrame:
    """Overlap areas (mu) per feature and category with a GEOS overlay in EPSG:4547."""
    feats = gdf_of(db, f"SELECT code, area_mu, ST_AsBinary(geom) AS wkb FROM renewal.{tbl} WHERE {where}").to_crs(4547)
    zones = gdf_of(db, "SELECT zone_type, ST_AsBinary(geom) AS wkb FROM renewal.hutuo_belt_zones").to_crs(4547)
    cats = {
        "hutuo_belt": zones.geometry.union_all(),
        "flood_channel": zones[zones["zone_type"] == "flood_channel"].geometry.union_all(),
        "water_source": zones[zones["zone_type"] == "water_source"].geometry.union_all(),
    }
    out = pd.DataFrame({"code": feats["code"]})
    for cat, g in cats.items():
        out[f"{cat}_mu"] = feats.geometry.intersection(g).area.to_numpy() * 0.0015
    keep = out[[f"{c}_mu" for c in cats]].max(axis=1) > 1e-9
    return out[keep].set_index("code")


def test_constraint_conflicts_vacated_land(db: psycopg.Connection[Any]) -> None:
    got = an.constraint_conflicts(db, "vacated_land").set_index("code")
    exp = _expected_conflicts(db, "vacated_land")
    assert len(exp) > 0
    assert sorted(got.index) == sorted(exp.index)
    for col in exp.columns:
        np.testing.assert_allclose(got.loc[exp.index, col], exp[col], rtol=LEN_RTOL, atol=1e-3, err_msg=col)
    assert all(
        c == ["hutuo_belt"] + [k for k in ("flood_channel", "water_source") if got.loc[i, f"{k}_mu"] > 0]
        for i, c in got["conflicts"].items()
    )


@pytest.mark.parametrize("layer_id", ["old_compounds", "urban_villages"])
def test_constraint_conflicts_other_layers(db: psycopg.Connection[Any], layer_id: str) -> None:
    got = an.constraint_conflicts(db, layer_id).set_index("code")
    exp = _expected_conflicts(db, layer_id)
    # features whose overlap is a sliver below the float noise are not compared
    exp = exp[exp.max(axis=1) > 1e-6]
    assert set(exp.index) <= set(got.index)
    for col in exp.columns:
        np.testing.assert_allclose(got.loc[exp.index, col], exp[col], rtol=LEN_RTOL, atol=1e-3, err_msg=col)


def test_constraint_conflicts_flood_channel_and_water_source(tx: psycopg.Connection[Any]) -> None:
    """The demo's vacated plots avoid the flood channel; add one across it and the water-source zone."""
    tx.execute(
        """
        INSERT INTO renewal.vacated_land (code, name, former_owner, status, planned_use, geom)
        SELECT 'TEST-CONFLICT', '测试地块', '测试单位', 'listed', '居住',
          ST_Multi(ST_Intersection(
            ST_SetSRID(ST_Buffer(ST_PointOnSurface(ST_Intersection(f.geom, w.geom))::geography, 600)::geometry, 4490),
            ST_Union(f.geom, w.geom)))
        FROM renewal.hutuo_belt_zones f, renewal.hutuo_belt_zones w
        WHERE f.zone_type = 'flood_channel' AND w.zone_type = 'water_source' AND ST_Intersects(f.geom, w.geom)
        LIMIT 1
        """
    )
    got = an.constraint_conflicts(tx, "vacated_land").set_index("code")
    exp = _expected_conflicts(tx, "vacated_land", "code = 'TEST-CONFLICT'")
    row = got.loc["TEST-CONFLICT"]
    assert row["conflicts"] == ["hutuo_belt", "flood_channel", "water_source"]
    for col in exp.columns:
        np.testing.assert_allclose(row[col], exp.loc["TEST-CONFLICT", col], rtol=LEN_RTOL)
    # the belt overlap is the union, not the sum, of the overlapping zones
    assert row["flood_channel_mu"] + row["water_source_mu"] > row["hutuo_belt_mu"]
    np.testing.assert_allclose(row["hutuo_belt_mu"], row["area_mu"], rtol=1e-6)


def test_constraint_conflicts_rejects_line_layer(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInputError):
        an.constraint_conflicts(db, "planned_roads")


# --- compliance -----------------------------------------------------------------------------


@pytest.mark.parametrize(("max_far", "year"), [(2.0, 2021), (1.8, 2021), (2.0, 2024)])
def test_far_violations(db: psycopg.Connection[Any], max_far: float, year: int) -> None:
    got = an.far_violations(db, max_far=max_far, min_supply_year=year)
    exp = df_of(
        db,
        "SELECT code, far FROM renewal.land_parcels WHERE land_use_code = '0701' AND supply_year >= %s "
        "AND far IS NOT NULL AND far - %s > 0 ORDER BY far DESC, code",
        (year, max_far),
    )
    assert list(got["code"]) == list(exp["code"])
    np.testing.assert_allclose(got["excess_far"], exp["far"].astype(float) - max_far)
    np.testing.assert_allclose(got["excess_floor_area_m2"], got["excess_far"] * got["area_mu"] * 10000 / 15)
    if max_far == 2.0 and year == 2021:
        assert len(got) > 0


def test_far_violations_rejects_bad_cap(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInputError):
        an.far_violations(db, max_far=-1)


# --- roads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [dt.date(2021, 12, 31), dt.date(2025, 12, 31)], ids=str)
def test_road_length_by_district(db: psycopg.Connection[Any], day: dt.date) -> None:
    got = an.road_length_by_district(db, day).set_index("district_code")
    roads = features_as_of(db, "planned_roads", day, "ST_AsBinary(t.geom) AS wkb")
    roads = gpd.GeoDataFrame(
        roads.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in roads["wkb"]]), crs=4490
    ).to_crs(4547)
    districts = gdf_of(db, "SELECT code, ST_AsBinary(geom) AS wkb FROM renewal.districts").to_crs(4547)
    exp: dict[str, dict[str, float]] = {}
    for code, g in zip(districts["code"], districts.geometry, strict=True):
        inter = roads.geometry.intersection(g).length
        if inter.sum() > 0:
            exp[code] = {
                "planned_m": inter.sum(),
                "started_m": inter[roads["st"] == "started"].sum(),
                "opened_m": inter[roads["st"] == "opened"].sum(),
            }
    e = pd.DataFrame(exp).T
    assert sorted(got.index) == sorted(e.index)
    for col in e.columns:
        np.testing.assert_allclose(got.loc[e.index, col], e[col], rtol=LEN_RTOL, atol=1.0, err_msg=col)
    total = db.execute("SELECT sum(length_m) FROM renewal.planned_roads").fetchone()[0]  # type: ignore[index]
    np.testing.assert_allclose(got["planned_m"].sum(), total, rtol=1e-3)


@pytest.mark.parametrize(
    ("day", "since"), [(dt.date(2021, 12, 31), dt.date(2021, 1, 1)), (dt.date(2025, 12, 31), dt.date(2023, 1, 1))]
)
def test_compounds_near_opened_roads(db: psycopg.Connection[Any], day: dt.date, since: dt.date) -> None:
    got = an.compounds_near_opened_roads(db, day, since=since).set_index("code")
    pairs = df_of(
        db,
        """
        WITH h AS (
          SELECT DISTINCT ON (feature_id) feature_id, to_status, effective_date FROM renewal.status_history
          WHERE layer = 'planned_roads' AND effective_date <= %(d)s ORDER BY feature_id, effective_date DESC, id DESC),
        r AS (SELECT p.code, p.geom FROM renewal.planned_roads p JOIN h ON h.feature_id = p.id
              WHERE h.to_status = 'opened' AND h.effective_date >= %(s)s)
        SELECT c.code, r.code AS road, ST_Distance(c.geom::geography, r.geom::geography) AS dist
        FROM renewal.old_compounds c CROSS JOIN r
        WHERE ST_DWithin(c.geom::geography, r.geom::geography, 501)
        """,
        {"d": day, "s": since},
    )
    sure = set(pairs.loc[pairs["dist"] <= 499.5, "code"])
    maybe = set(pairs.loc[pairs["dist"] <= 500.5, "code"])
    assert sure <= set(got.index) <= maybe
    assert len(sure) > 0
    assert (got["nearest_road_opened_on"] >= pd.Timestamp(since)).all()
    assert (got["nearest_road_opened_on"] <= pd.Timestamp(day)).all()
    clear = pairs[pairs["dist"] <= 499.5]
    n_clear = clear.groupby("code").size()
    assert (got.loc[n_clear.index, "roads_within"] >= n_clear).all()
    nearest = pairs.groupby("code")["dist"].min()
    np.testing.assert_allclose(got["nearest_road_distance_m"], nearest.loc[got.index], rtol=1e-3, atol=1.0)


def test_compounds_near_opened_roads_rejects(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInputError):
        an.compounds_near_opened_roads(db, dt.date(2021, 1, 1), since=dt.date(2022, 1, 1))
    with pytest.raises(InvalidInputError):
        an.compounds_near_opened_roads(db, distance_m=0)


# --- read_layer -----------------------------------------------------------------------------


@pytest.mark.parametrize("layer_id", ["parking_sites", "vacated_land", "districts", "ring_roads"])
def test_read_layer(db: psycopg.Connection[Any], layer_id: str) -> None:
    day = dt.date(2022, 12, 31)
    got = an.read_layer(db, layer_id, day)
    exp = gdf_of(db, f"SELECT code, ST_AsBinary(geom) AS wkb FROM renewal.{layer_id} ORDER BY code")
    assert list(got["code"]) == list(exp["code"])
    assert got.crs.to_epsg() == 4490
    assert all(a.equals_exact(b, 1e-12) for a, b in zip(got.geometry, exp.geometry, strict=True))
    assert "geom" not in got.columns
    if layer_id in FIRST:
        f = features_as_of(db, layer_id, day, "t.code").set_index("code")
        # features not there yet on the day are kept, with no status then
        expected = {code: f["st"].get(code) for code in exp["code"]}
        status = got.set_index("code")["status_as_of"]
        assert {c: (None if pd.isna(v) else v) for c, v in status.items()} == expected
        assert 0 < len(f) <= len(exp)
