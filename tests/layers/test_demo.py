"""The synthetic demo city: counts and targets of the plan, geometry, histories, determinism.

Every assertion is re-derived with independent SQL from the loaded database (the
``demo_loaded`` session fixture calls :func:`layers.demo.load_demo` once).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import shapely
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from shapely.geometry import shape

from layers.demo.loader import LOAD_ORDER
from layers.registry import get_registry

FOUNDATION = [get_registry().get(layer_id) for layer_id in LOAD_ORDER]
"""The layers the demo loads (layers added later are not part of it)."""
ROOT = Path(__file__).resolve().parents[2]
DISTRICTS_FILE = ROOT / "layers" / "demo" / "data" / "districts_approx.geojson"

NAMED_PLOTS = {
    "华药集团": "华药集团老厂区",
    "石钢集团": "石钢集团老厂区",
    "河北师范大学": "河北师范大学老校区",
    "河北科技大学": "河北科技大学老校区",
    "河北地质大学": "河北地质大学老校区",
    "煤矿机械厂": "煤矿机械厂南厂区",
}


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> Iterator[psycopg.Connection]:
    """A connection to the session database with the demo loaded."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def scalar(conn: psycopg.Connection, query: str, params: tuple = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------- the committed derivative


def test_district_derivative_file() -> None:
    fc = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection"
    assert "DataV.GeoAtlas" in fc["credit"]
    assert "approximate" in fc["note"].lower()
    assert len(fc["features"]) == 22
    geoms = [shape(f["geometry"]) for f in fc["features"]]
    assert all(g.geom_type == "MultiPolygon" and g.is_valid for g in geoms)
    assert {f["properties"]["adcode"] for f in fc["features"]} >= {"130102", "130104", "130105", "130108"}
    # gap-free, non-overlapping coverage
    assert shapely.coverage_is_valid(geoms)
    union = shapely.union_all(geoms)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0


# --------------------------------------------------------------------------- counts


def test_counts_returned_match_tables(db: psycopg.Connection, demo_loaded: dict[str, int]) -> None:
    assert set(LOAD_ORDER) <= set(demo_loaded)
    assert set(get_registry().ids) <= set(demo_loaded)  # every registered layer is part of the demo
    for layer in FOUNDATION:
        n = scalar(db, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("renewal", layer.table)))
        assert n == demo_loaded[layer.id], layer.id
    assert demo_loaded["districts"] == 22
    assert demo_loaded["ring_zones"] == 3
    assert demo_loaded["ring_roads"] == 2
    assert 20_000 <= demo_loaded["land_parcels"] <= 30_000
    assert 1_900 <= demo_loaded["old_compounds"] <= 2_100


def test_reference_layers(db: psycopg.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM renewal.districts WHERE code = district_code") == 22
    zones = dict(db.execute("SELECT zone, code FROM renewal.ring_zones").fetchall())
    assert set(zones) == {"inside_2nd", "between_2nd_3rd", "outside_3rd"}
    assert db.execute("SELECT ring FROM renewal.ring_roads ORDER BY ring").fetchall() == [(2,), (3,)]
    # the three zones tile the union of the districts
    diff = scalar(
        db,
        "SELECT abs((SELECT sum(area_mu) FROM renewal.ring_zones) - (SELECT sum(area_mu) FROM renewal.districts))"
        " / (SELECT sum(area_mu) FROM renewal.districts)",
    )
    assert diff < 1e-4
    km = scalar(db, "SELECT sum(length_m) / 1000 FROM renewal.hutuo_river")
    assert 45 <= km <= 65
    types = {r[0] for r in db.execute("SELECT DISTINCT zone_type FROM renewal.hutuo_belt_zones")}
    assert types == {"ecological", "emerging_industry", "digital_economy", "modern_services",
                     "urban_agriculture", "flood_channel", "water_source"}


# --------------------------------------------------------------------------- targets of the plan


def test_urban_villages_all_started_2021(db: psycopg.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM renewal.urban_villages") == 73
    started_2021 = scalar(
        db,
        """
        SELECT count(DISTINCT v.id) FROM renewal.urban_villages v
        JOIN renewal.status_history h ON h.layer = 'urban_villages' AND h.feature_id = v.id
        WHERE h.to_status = 'started' AND h.effective_date BETWEEN '2021-01-01' AND '2021-12-31'
        """,
    )
    assert started_2021 == 73
    row = db.execute(
        "SELECT min(area_mu), max(area_mu), min(start_year), max(start_year), min(target_year), max(target_year),"
        " count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'planned'),"
        " min(households) FROM renewal.urban_villages"
    ).fetchone()
    assert row is not None
    assert row[0] >= 49.9 and row[1] <= 600.1
    assert row[2] == row[3] == 2021
    assert 2023 <= row[4] and row[5] <= 2026
    assert 0 < row[6] < 73 and row[7] == 0
    assert row[8] > 0
    main = scalar(
        db, "SELECT count(*) FROM renewal.urban_villages WHERE district_code IN ('130102','130104','130105','130108')"
    )
    assert main >= 55


def test_vacated_land_total_and_named_plots(db: psycopg.Connection) -> None:
    total = scalar(db, "SELECT sum(ST_Area(ST_Transform(geom, 4547)) * 0.0015) FROM renewal.vacated_land")
    assert abs(total - 2992) <= 2992 * 0.005
    assert abs(scalar(db, "SELECT sum(area_mu) FROM renewal.vacated_land") - 2992) <= 2992 * 0.001
    for owner, name in NAMED_PLOTS.items():
        n = scalar(
            db, "SELECT count(*) FROM renewal.vacated_land WHERE former_owner = %s AND name LIKE %s",
            (owner, name + "%"),
        )
        assert n == 1, owner
    # handed over: partly by the end of 2021, mostly by the end of 2023
    handed = dict(
        db.execute(
            """
            SELECT y, sum(v.area_mu) FROM renewal.vacated_land v
            JOIN renewal.status_history h ON h.layer = 'vacated_land' AND h.feature_id = v.id
            CROSS JOIN LATERAL (SELECT extract(year FROM h.effective_date)::int AS y) AS yy
            WHERE h.to_status = 'handed_over' GROUP BY y
            """
        ).fetchall()
    )
    by_2021 = sum(v for y, v in handed.items() if y <= 2021)
    by_2023 = sum(v for y, v in handed.items() if y <= 2023)
    assert 0.15 * 2992 < by_2021 < 0.6 * 2992
    assert 0.75 * 2992 < by_2023 < 2992
    assert scalar(db, "SELECT count(DISTINCT status) FROM renewal.vacated_land") >= 4


def test_planned_roads_batches(db: psycopg.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM renewal.planned_roads") == 56
    batches = dict(db.execute("SELECT batch, count(*) FROM renewal.planned_roads GROUP BY batch").fetchall())
    assert batches == {"2021_open": 10, "2021_start": 10, "2022_start": 36}
    rows = db.execute(
        """
        SELECT r.batch,
               extract(year FROM max(h.effective_date) FILTER (WHERE h.to_status = 'started'))::int AS started,
               extract(year FROM max(h.effective_date) FILTER (WHERE h.to_status = 'opened'))::int AS opened
        FROM renewal.planned_roads r
        JOIN renewal.status_history h ON h.layer = 'planned_roads' AND h.feature_id = r.id
        GROUP BY r.id, r.batch
        """
    ).fetchall()
    open21 = [r for r in rows if r[0] == "2021_open"]
    assert all(r[1] == 2021 and r[2] == 2021 for r in open21)
    start21 = [r for r in rows if r[0] == "2021_start"]
    assert all(r[1] == 2021 and r[2] is not None and 2022 <= r[2] <= 2024 for r in start21)
    start22 = [r[1] for r in rows if r[0] == "2022_start"]
    assert start22.count(2022) == 34 and start22.count(2023) == 2
    lengths = db.execute("SELECT min(length_m), max(length_m) FROM renewal.planned_roads").fetchone()
    assert lengths is not None and lengths[0] >= 450 and lengths[1] <= 3100


def test_parking_spaces_built_per_year(db: psycopg.Connection) -> None:
    built = dict(
        db.execute(
            """
            SELECT extract(year FROM h.effective_date)::int, sum(p.spaces)
            FROM renewal.parking_sites p
            JOIN renewal.status_history h ON h.layer = 'parking_sites' AND h.feature_id = p.id
            WHERE h.to_status = 'built' GROUP BY 1
            """
        ).fetchall()
    )
    for year in (2022, 2023, 2024, 2025):
        assert built.get(year, 0) >= 10_000, year
    assert min(built[y] for y in (2022, 2023, 2024, 2025)) < 10_100  # some years only just
    assert built.get(2021, 0) > 0
    assert scalar(db, "SELECT count(*) FROM renewal.parking_sites WHERE status = 'planned' AND year = 2026") > 0
    row = db.execute("SELECT min(spaces), max(spaces) FROM renewal.parking_sites").fetchone()
    assert row is not None and row[0] >= 50 and row[1] <= 800


def test_old_compounds_renovation(db: psycopg.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM renewal.old_compounds WHERE renovation_year BETWEEN 2021 AND 2025") == 1559
    done_2021 = scalar(
        db,
        """
        SELECT count(DISTINCT c.id) FROM renewal.old_compounds c
        JOIN renewal.status_history h ON h.layer = 'old_compounds' AND h.feature_id = c.id
        WHERE h.to_status = 'completed' AND h.effective_date BETWEEN '2021-01-01' AND '2021-12-31'
        """,
    )
    assert 645 <= done_2021 <= 660
    not_done = scalar(
        db,
        """
        SELECT count(*) FROM renewal.old_compounds c
        WHERE c.renovation_year BETWEEN 2021 AND 2025 AND NOT EXISTS (
          SELECT 1 FROM renewal.status_history h
          WHERE h.layer = 'old_compounds' AND h.feature_id = c.id AND h.to_status = 'completed'
            AND h.effective_date <= '2025-12-31')
        """,
    )
    assert 10 <= not_done <= 25
    early = scalar(
        db,
        "SELECT count(*) FROM renewal.old_compounds WHERE renovation_year < 2021 AND status = 'completed'",
    )
    assert early > 0
    row = db.execute(
        "SELECT min(area_mu), max(area_mu), min(built_year), max(built_year) FROM renewal.old_compounds"
    ).fetchone()
    assert row is not None
    assert row[0] >= 9.5 and row[1] <= 81
    assert 1970 <= row[2] and row[3] <= 2000


def test_land_parcels_attributes(db: psycopg.Connection) -> None:
    labels = {c.code: c.label for c in get_registry().get("land_parcels").field("land_use_code").choices or []}
    rows = db.execute(
        "SELECT land_use_code, land_use_label, count(*) FROM renewal.land_parcels GROUP BY 1, 2 ORDER BY 3 DESC"
    ).fetchall()
    assert rows[0][0] == "0701"
    assert all(labels[code] == label for code, label, _ in rows)
    assert {"1207", "0901", "1001", "1401"} <= {r[0] for r in rows}
    industry_share = db.execute(
        """
        SELECT avg((land_use_code = '1001')::int) FILTER (WHERE z.zone = 'inside_2nd'),
               avg((land_use_code = '1001')::int) FILTER (WHERE z.zone <> 'inside_2nd')
        FROM renewal.land_parcels p
        JOIN renewal.ring_zones z ON ST_Intersects(z.geom, ST_PointOnSurface(p.geom))
        """
    ).fetchone()
    assert industry_share is not None and industry_share[0] < industry_share[1]
    new_res = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE far > 2.0) FROM renewal.land_parcels"
        " WHERE land_use_code = '0701' AND supply_year >= 2021"
    ).fetchone()
    assert new_res is not None and new_res[0] > 0 and 0 < new_res[1] < 0.2 * new_res[0]
    far = db.execute("SELECT min(far), max(far) FROM renewal.land_parcels").fetchone()
    assert far is not None and far[0] >= 0.5 and far[1] <= 4.0
    statuses = dict(db.execute("SELECT status, count(*) FROM renewal.land_parcels GROUP BY 1").fetchall())
    assert set(statuses) == {"existing", "reserved", "supplied", "built"}
    assert statuses["existing"] > 0.8 * sum(statuses.values())
    assert scalar(db, "SELECT count(*) FROM renewal.land_parcels WHERE district_code IS NULL") == 0


def test_land_parcels_tessellate(db: psycopg.Connection) -> None:
    """Neighbouring parcels share edges: no overlaps, and the union has no holes."""
    overlaps = scalar(
        db,
        """
        SELECT count(*) FROM renewal.land_parcels a
        JOIN renewal.land_parcels b ON a.id < b.id AND a.geom && b.geom
        WHERE ST_Relate(a.geom, b.geom, '2********')
          AND a.code LIKE 'ZD-005%%' AND b.code LIKE 'ZD-00%%'
        """,
    )
    assert overlaps == 0
    holes = scalar(
        db,
        """
        SELECT sum(ST_NumInteriorRings(g)) FROM (
          SELECT (ST_Dump(ST_Union(geom))).geom AS g FROM renewal.land_parcels
          WHERE code LIKE 'ZD-004%%' OR code LIKE 'ZD-005%%') AS u
        """,
    )
    assert holes == 0


# --------------------------------------------------------------------------- geometry


def test_geometries_valid_srid_inside_city(db: psycopg.Connection) -> None:
    for layer in FOUNDATION:
        t = sql.Identifier("renewal", layer.table)
        tol = 0.002 if layer.table in ("land_parcels", "hutuo_belt_zones") else 1e-6
        row = db.execute(
            sql.SQL(
                """
                WITH city AS (SELECT ST_Buffer(ST_Union(geom), %s) AS g FROM renewal.districts)
                SELECT count(*) FILTER (WHERE NOT ST_IsValid(t.geom) OR ST_IsEmpty(t.geom)),
                       count(*) FILTER (WHERE ST_SRID(t.geom) <> 4490),
                       count(*) FILTER (WHERE NOT ST_CoveredBy(t.geom, city.g)),
                       count(*)
                FROM {} AS t, city
                """
            ).format(t),
            (tol,),
        ).fetchone()
        assert row is not None
        assert row[:3] == (0, 0, 0), layer.id
        assert row[3] > 0, layer.id


def test_named_plots_near_readme_positions(db: psycopg.Connection) -> None:
    positions = {"华药集团": (114.535, 38.055), "石钢集团": (114.59, 38.06), "河北师范大学": (114.515, 38.035),
                 "河北科技大学": (114.55, 38.03), "河北地质大学": (114.56, 38.00)}
    for owner, (lon, lat) in positions.items():
        d = scalar(
            db,
            "SELECT ST_Distance(ST_Transform(geom, 4547), ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4490), 4547))"
            " FROM renewal.vacated_land WHERE former_owner = %s",
            (lon, lat, owner),
        )
        assert d < 1000, owner


def test_synthetic_names(db: psycopg.Connection) -> None:
    for table in ("urban_villages", "old_compounds", "vacated_land", "planned_roads", "parking_sites", "land_parcels"):
        n = scalar(
            db,
            sql.SQL("SELECT count(*) FROM {} WHERE name NOT LIKE '%%（演示）%%'").format(
                sql.Identifier("renewal", table)
            ),
        )
        assert n == 0, table


# --------------------------------------------------------------------------- status histories


@pytest.mark.parametrize("layer_id", [layer.id for layer in FOUNDATION if layer.has_status])
def test_history_consistent(db: psycopg.Connection, layer_id: str) -> None:
    layer = get_registry().get(layer_id)
    assert layer.lifecycle is not None
    codes = layer.lifecycle.codes
    t = sql.Identifier("renewal", layer.table)
    rows = db.execute(
        sql.SQL(
            """
            SELECT f.id, f.code, f.status,
                   coalesce(array_agg(h.from_status ORDER BY h.id) FILTER (WHERE h.id IS NOT NULL),
                            '{{}}'),
                   coalesce(array_agg(h.to_status ORDER BY h.id) FILTER (WHERE h.id IS NOT NULL),
                            '{{}}'),
                   coalesce(array_agg(h.effective_date ORDER BY h.id) FILTER (WHERE h.id IS NOT NULL), '{{}}'),
                   bool_and(h.code = f.code), bool_and(h.recorded_by = 'demo')
            FROM {} AS f
            LEFT JOIN renewal.status_history AS h ON h.layer = %s AND h.feature_id = f.id
            GROUP BY f.id, f.code, f.status
            """
        ).format(t),
        (layer.table,),
    ).fetchall()
    assert rows
    for _fid, code, status, froms, tos, dates, same_code, by_demo in rows:
        if not tos:
            # only parcels may lack history, and then they are in the first status
            assert layer.table == "land_parcels" and status == codes[0], code
            continue
        assert same_code and by_demo, code
        assert tos[-1] == status, code
        assert froms[0] is None and tos[0] == codes[0], code
        for src, dst in zip(froms[1:], tos[1:], strict=True):
            assert codes.index(dst) == codes.index(src) + 1, (code, src, dst)
        assert list(froms[1:]) == list(tos[:-1]), code
        assert all(a <= b for a, b in zip(dates, dates[1:], strict=False)), (code, dates)
    # nothing else of this layer in the history
    orphans = scalar(
        db,
        sql.SQL(
            "SELECT count(*) FROM renewal.status_history h WHERE h.layer = %s"
            " AND NOT EXISTS (SELECT 1 FROM {} f WHERE f.id = h.feature_id)"
        ).format(t),
        (layer.table,),
    )
    assert orphans == 0


def test_history_source_docs(db: psycopg.Connection) -> None:
    n = scalar(db, "SELECT count(*) FROM renewal.status_history WHERE source_doc NOT LIKE '%%（演示）'")
    assert n == 0


# --------------------------------------------------------------------------- determinism


def _fingerprints(url: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(url) as conn:
        for layer in FOUNDATION:
            status = sql.SQL("status") if layer.has_status else sql.SQL("''")
            out[layer.id] = str(
                scalar(
                    conn,
                    sql.SQL(
                        "SELECT md5(string_agg(id || '|' || code || '|' || {s} || '|' || coalesce(district_code, '')"
                        " || '|' || encode(ST_AsEWKB(geom), 'hex'), ',' ORDER BY code)) FROM {t}"
                    ).format(s=status, t=sql.Identifier("renewal", layer.table)),
                )
            )
        out["status_history"] = str(
            scalar(
                conn,
                "SELECT md5(string_agg(concat_ws('|', layer, feature_id, code, from_status, to_status,"
                " effective_date, source_doc, note), ',' ORDER BY layer, feature_id, effective_date, id))"
                " FROM renewal.status_history WHERE layer = ANY(%s)",
                (LOAD_ORDER,),
            )
        )
    return out


def _other_database(db_url: str) -> str:
    name = f"renewal_demo_det_{uuid.uuid4().hex[:8]}"
    params = conninfo_to_dict(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if "://" in db_url:
        base, _, query = db_url.partition("?")
        url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    else:
        params["dbname"] = name
        url = make_conninfo("", **params)  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def test_deterministic_across_databases(db: psycopg.Connection, db_url: str) -> None:
    from api.cli.db import upgrade
    from layers.demo import load_demo

    other = _other_database(db_url)
    try:
        upgrade(other)
        load_demo(other)
        # and a reload replaces rather than appends
        counts = load_demo(other)
        assert counts["urban_villages"] == 73
        assert _fingerprints(other) == _fingerprints(db_url)
    finally:
        name = conninfo_to_dict(other)["dbname"]
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
