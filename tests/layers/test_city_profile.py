"""City profiles: a second city far from Shijiazhuang, created from a boundary file the test writes.

The second city (synthetic districts around 120.3°E 36.1°N, DataV-style GCJ-02 bare array) gets
its own extent, its own Gauss-Krüger zone (EPSG:4528, zone 40), areas within 0.1 % of the
geodesic value, imports and exports in its own extent, and refuses Shijiazhuang's coordinates
with the usual diagnosis. Shijiazhuang's database keeps the default profile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyogrio
import pytest
import shapely

from gis.crs import Extent, nearest_gauss_kruger_3deg, proj_crs
from gis.geodesy import geodesic_area_mu, geodesic_length_m
from layers import city
from layers.city import SHIJIAZHUANG
from layers.export import export_to_path
from layers.importer import ImportOptions, run_import
from tests.fixtures import second_city as sc


@pytest.fixture(scope="module")
def city_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sc.second_city_database(tmp_path_factory.mktemp("city")) as url:
        yield url


def test_shijiazhuang_is_the_default(conn: psycopg.Connection) -> None:
    profile = city.load(conn, fresh=True)
    assert profile == SHIJIAZHUANG
    assert profile.area_srid == 4547 and profile.bbox.as_tuple() == (113.4, 37.4, 115.6, 38.8)
    expr = conn.execute(
        "SELECT generation_expression FROM information_schema.columns "
        "WHERE table_schema = 'renewal' AND table_name = 'districts' AND column_name = 'area_mu'"
    ).fetchone()
    assert expr is not None and "4547" in expr[0]


def test_nearest_zone() -> None:
    assert nearest_gauss_kruger_3deg(114.5) == 4526  # zone 38 (the zoned twin of 4547)
    assert nearest_gauss_kruger_3deg(120.3) == 4528  # zone 40
    for lon, zone in ((87.6, 29), (126.6, 42), (73.6, 25), (134.7, 45)):  # Urumqi, Harbin, China's ends
        code = nearest_gauss_kruger_3deg(lon)
        assert proj_crs(code).name == f"CGCS2000 / 3-degree Gauss-Kruger zone {zone}"


def test_profile_of_the_second_city(city_url: str) -> None:
    with psycopg.connect(city_url) as conn:
        profile = city.load(conn, fresh=True)
        n = conn.execute("SELECT count(*) FROM renewal.districts").fetchone()
    assert (profile.name, profile.name_en, profile.adcode) == (sc.NAME, sc.NAME_EN, sc.ADCODE)
    assert profile.area_srid == 4528
    assert profile.extent == (119.7, 35.6, 120.9, 36.6)  # districts' box plus 0.2°, rounded outwards
    assert 120.2 < profile.centre[0] < 120.4 and 36.0 < profile.centre[1] < 36.2
    assert profile.zoom == 9  # the whole city on a 1280 x 800 screen (MapLibre zoom)
    assert profile.catalog is None and profile.demo is None and profile.measure == "zone"
    assert profile.is_district_code("370202") and not profile.is_district_code("130102")
    assert n == (4,)


def test_district_areas_within_0_1_percent_of_geodesic(city_url: str) -> None:
    with psycopg.connect(city_url) as conn:
        rows = conn.execute(
            "SELECT code, area_mu, ST_AsGeoJSON(geom), ST_Area(ST_Transform(geom, 4547)) * 0.0015 "
            "FROM renewal.districts ORDER BY code"
        ).fetchall()
        expr = conn.execute(
            "SELECT generation_expression FROM information_schema.columns "
            "WHERE table_schema = 'renewal' AND table_name = 'land_parcels' AND column_name = 'area_mu'"
        ).fetchone()
    assert [r[0] for r in rows] == [c for c, _ in sc.DISTRICTS]
    assert expr is not None and "4528" in expr[0]
    for code, mu, geojson, mu_4547 in rows:
        reference = geodesic_area_mu(shapely.geometry.shape(json.loads(geojson)))
        assert abs(mu - reference) / reference < 0.001, code
        assert abs(mu_4547 - reference) / reference > 0.005, code  # Shijiazhuang's zone would be 0.8 % off


def test_length_within_0_1_percent_of_geodesic(city_url: str) -> None:
    line = shapely.LineString([(120.1, 36.0), (120.6, 36.3)])
    with psycopg.connect(city_url) as conn:
        row = conn.execute(
            "SELECT ST_Length(ST_Transform(ST_GeomFromText(%s, 4490), (SELECT area_srid FROM renewal.city)))",
            (line.wkt,),
        ).fetchone()
    assert row is not None
    assert abs(row[0] - geodesic_length_m(line)) / geodesic_length_m(line) < 0.001


def test_import_and_export_parcels(city_url: str, tmp_path: Path) -> None:
    report = run_import(city_url, "land_parcels", sc.parcels_geojson(tmp_path / "parcels.geojson"),
                        ImportOptions(mode="append"))
    assert report.status == "applied", report.as_dict()
    assert report.counts["added"] == 3
    with psycopg.connect(city_url) as conn:
        rows = conn.execute("SELECT code, district_code, area_mu, ST_AsGeoJSON(geom) FROM renewal.land_parcels "
                            "ORDER BY code").fetchall()
    assert [r[0] for r in rows] == ["QD-001", "QD-002", "QD-003"]
    assert [r[1] for r in rows] == [c for c, _ in sc.DISTRICTS[:3]]  # district names → the new city's adcodes
    for _, _, mu, geojson in rows:
        reference = geodesic_area_mu(shapely.geometry.shape(json.loads(geojson)))
        assert abs(mu - reference) / reference < 0.001
    out = tmp_path / "parcels_out.gpkg"
    assert export_to_path(city_url, "land_parcels", out) == 3
    frame = pyogrio.read_dataframe(out)
    assert sorted(frame["code"]) == ["QD-001", "QD-002", "QD-003"]
    assert frame.total_bounds[0] > 120.1 and frame.total_bounds[2] < 120.5


def test_point_in_shijiazhuang_is_outside_the_city(city_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sjz.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"code": "SJZ-1", "name": "石家庄的宗地", "land_use_code": "0701",
                                          "status": "existing"},
        "geometry": shapely.geometry.mapping(shapely.box(114.50, 38.04, 114.504, 38.043))}]}), encoding="utf-8")
    report = run_import(city_url, "land_parcels", path, ImportOptions(mode="append"))
    assert report.status == "rejected"
    assert [e["kind"] for e in report.errors] == ["outside_city"]
    assert "fall outside Qingdao" in report.errors[0]["message"]
    note = " ".join(report.notes)
    assert "outside Qingdao (about 119.7–120.9°E, 35.6–36.6°N)" in note
    with psycopg.connect(city_url) as conn:
        assert conn.execute("SELECT count(*) FROM renewal.land_parcels WHERE code = 'SJZ-1'").fetchone() == (0,)


def test_swapped_axes_diagnosed_in_the_second_city(city_url: str, tmp_path: Path) -> None:
    path = tmp_path / "swapped.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"code": "SW-1", "name": "轴序颠倒", "land_use_code": "0701",
                                          "status": "existing"},
        "geometry": {"type": "Polygon", "coordinates": [[[36.1, 120.3], [36.1, 120.31], [36.11, 120.31],
                                                         [36.11, 120.3], [36.1, 120.3]]]}}]}), encoding="utf-8")
    report = run_import(city_url, "land_parcels", path, ImportOptions(mode="append"))
    assert report.status == "rejected"
    assert "swapped order" in " ".join(report.notes)


def test_projected_file_in_the_wrong_zone_is_explained(city_url: str) -> None:
    from gis.crs import parse_crs, transform_coords
    from gis.validate import explain_outside

    box = Extent(119.7, 35.6, 120.9, 36.6, "Qingdao")
    e, n = transform_coords(parse_crs("EPSG:4490"), parse_crs("EPSG:4528"), [120.3], [36.1])
    text = explain_outside(float(e[0]), float(n[0]), parse_crs("EPSG:4490"), box)
    assert "EPSG:4528" in text  # projected metres declared as degrees: the city's own zone fits


def test_city_create_refuses_a_database_with_data(city_url: str, tmp_path: Path) -> None:
    from gis.errors import ConflictError

    with pytest.raises(ConflictError, match="one database holds one city"):
        city.create_city(city_url, "又一城", sc.write_boundary_file(tmp_path / "d.json"), crs="gcj02")


def test_no_catalog_means_no_targets(city_url: str) -> None:
    from layers.plan import get_catalog
    from layers.progress import select_targets

    with psycopg.connect(city_url) as conn:
        profile = city.load(conn)
    previous = city.activate(profile)
    try:
        assert get_catalog().targets == [] and select_targets() == []
    finally:
        city.activate(previous)
    assert len(get_catalog().targets) > 0  # Shijiazhuang's catalog again


def test_wide_city_is_measured_on_the_spheroid(tmp_path: Path) -> None:
    """A city four and a half degrees wide (Harbin-like) does not fit one zone: areas become geodesic.

    Created through the CLI (``renewal city create`` / ``show``) on a fresh database.
    """
    from typer.testing import CliRunner

    from api.cli import app
    from tests.conftest import create_database, drop_database

    features = []
    for k, (x0, x1) in enumerate([(125.7, 128.0), (128.0, 130.2)]):
        poly = shapely.segmentize(shapely.box(x0, 44.1, x1, 46.3), 0.05)
        features.append({"type": "Feature", "properties": {"adcode": 230102 + k, "name": f"宽区{k + 1}"},
                         "geometry": shapely.geometry.mapping(shapely.MultiPolygon([poly]))})
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(features, ensure_ascii=False), encoding="utf-8")
    url = create_database("renewal_city_wide")
    try:
        runner = CliRunner()
        env = {"DATABASE_URL": url}
        result = runner.invoke(app, ["city", "create", "哈尔滨", "--districts", str(path), "--crs", "EPSG:4490",
                                     "--name-en", "Harbin"], env=env)
        assert result.exit_code == 0, result.output
        assert "2 districts" in result.output and "EPSG:4531" in result.output
        shown = runner.invoke(app, ["city", "show", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        profile = json.loads(shown.output)
        assert profile["measure"] == "geodesic" and profile["adcode"] == "230100" and profile["area_srid"] == 4531
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT area_mu, ST_AsGeoJSON(geom), ST_Area(ST_Transform(geom, 4531)) * 0.0015 "
                                "FROM renewal.districts").fetchall()
        zone_worst = 0.0
        for mu, geojson, mu_zone in rows:
            reference = geodesic_area_mu(shapely.geometry.shape(json.loads(geojson)))
            assert abs(mu - reference) / reference < 1e-6
            zone_worst = max(zone_worst, abs(mu_zone - reference) / reference)
        assert zone_worst > 0.0005  # the zone alone would have been off by more than the tolerance
    finally:
        drop_database(url)


def test_city_show_default(db_url: str) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    result = CliRunner().invoke(app, ["city", "show"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert "石家庄 Shijiazhuang (130100)" in result.output and "EPSG:4547" in result.output


def test_cli_progress_follows_the_citys_catalog(city_url: str, db_url: str) -> None:
    """``renewal progress`` in a city without a plan lists no targets; Shijiazhuang's lists its own."""
    from typer.testing import CliRunner

    from api.cli import app
    from layers.plan import get_catalog

    runner = CliRunner()
    other = runner.invoke(app, ["progress", "--as-of", "2022-12-31"], env={"DATABASE_URL": city_url})
    assert other.exit_code == 0, other.output
    assert "2025-12" not in other.output  # no target rows (their deadlines would show)
    assert len(get_catalog().targets) > 0  # the CLI's city did not leak into this process
    home = runner.invoke(app, ["progress", "--as-of", "2022-12-31"], env={"DATABASE_URL": db_url})
    assert home.exit_code == 0, home.output
    assert "2025-12" in home.output


def test_demo_refuses_another_city(city_url: str) -> None:
    from gis.errors import ConflictError
    from layers.demo import load_demo

    with pytest.raises(ConflictError, match="holds 青岛 \\(Qingdao\\), which has no demo data"):
        load_demo(city_url)
