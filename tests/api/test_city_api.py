"""The API of a second city: same code, another database, another profile.

The app serves whatever city its database holds: the viewer opens on it, OGC API Features and
vector tiles serve its layers, queries refuse Shijiazhuang's coordinates as outside it, and
without a plan catalog progress says there are no targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import morecantile
import pytest

from layers import city
from layers.importer import ImportOptions, run_import
from tests.api.test_tiles import decode
from tests.conftest import api_settings
from tests.fixtures import second_city as sc

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def city_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app

    tmp = tmp_path_factory.mktemp("city_api")
    with sc.second_city_database(tmp) as url:
        report = run_import(url, "land_parcels", sc.parcels_geojson(tmp / "parcels.geojson"), ImportOptions())
        assert report.status == "applied"
        with TestClient(create_app(api_settings(url))) as c:
            yield c


def test_viewer_opens_on_the_city(city_client: Any) -> None:
    cfg = city_client.get("/viewer/config").json()
    assert cfg["title"] == "青岛城市更新一张图" and cfg["title_en"] == "Qingdao urban renewal map"
    lon, lat = cfg["center"]
    assert 120.2 < lon < 120.4 and 36.0 < lat < 36.2
    assert cfg["city"]["adcode"] == sc.ADCODE and cfg["city"]["area_srid"] == 4528
    assert cfg["city"]["catalog"] is False
    assert [d["code"] for d in cfg["districts"]] == [c for c, _ in sc.DISTRICTS]
    x0, y0, x1, y1 = cfg["city_bbox"]
    assert x0 <= lon <= x1 and y0 <= lat <= y1


def test_shijiazhuang_viewer_unchanged(client: Any) -> None:
    cfg = client.get("/viewer/config").json()
    assert cfg["title"] == "石家庄城市更新一张图" and cfg["center"] == [114.5, 38.04] and cfg["zoom"] == 10.5


def test_ogc_features(city_client: Any) -> None:
    body = city_client.get("/collections/districts/items", params={"limit": 10}).json()
    assert sorted(f["properties"]["name"] for f in body["features"]) == sorted(n for _, n in sc.DISTRICTS)
    parcels = city_client.get("/collections/land_parcels/items", params={"bbox": "120.3,36.0,120.5,36.2"}).json()
    assert sorted(f["properties"]["code"] for f in parcels["features"]) == ["QD-001", "QD-002"]
    assert all(f["properties"]["area_mu"] > 0 for f in parcels["features"])
    landing = city_client.get("/ogc", params={"f": "json"}).json()
    assert "青岛" in landing["title"] and "Qingdao" in landing["title"]


def test_tiles(city_client: Any, tmp_path: Path) -> None:
    tj = city_client.get("/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["bounds"] == list(sc_extent()) and tj["center"][:2] == city_client.get("/viewer/config").json()["center"]
    t = TMS.tile(120.352, 36.071, 14)
    r = city_client.get(f"/collections/land_parcels/tiles/WebMercatorQuad/14/{t.x}/{t.y}")
    assert r.status_code == 200 and len(r.content) > 0
    assert decode(tmp_path, r.content, 14, t.x, t.y)["land_parcels"]["count"] == 1
    t = TMS.tile(120.3, 36.1, 8)
    r = city_client.get(f"/tiles/WebMercatorQuad/8/{t.x}/{t.y}", params={"layers": "districts"})
    assert r.status_code == 200
    assert decode(tmp_path, r.content, 8, t.x, t.y)["districts"]["count"] == 4


def sc_extent() -> tuple[float, float, float, float]:
    return (119.7, 35.6, 120.9, 36.6)


def test_query_refuses_shijiazhuang(city_client: Any) -> None:
    r = city_client.get("/query/point", params={"lon": 114.5, "lat": 38.04})
    assert r.status_code == 400
    assert "outside Qingdao (about 119.7–120.9°E, 35.6–36.6°N)" in r.json()["detail"]
    ok = city_client.get("/query/point", params={"lon": 120.352, "lat": 36.0715})
    assert ok.status_code == 200


def test_edit_refuses_shijiazhuang_geometry(city_client: Any) -> None:
    from layers.editing import parse_geometry
    from layers.registry import get_registry

    layer = get_registry().get("land_parcels")
    profile = city_client.app.state.city
    from gis.errors import GeometryError

    with pytest.raises(GeometryError, match="outside Qingdao"):
        parse_geometry(layer, {"type": "Point", "coordinates": [114.5, 38.04]} if layer.geometry_type == "Point"
                       else {"type": "Polygon", "coordinates": [[[114.5, 38.0], [114.51, 38.0], [114.51, 38.01],
                                                                 [114.5, 38.0]]]}, profile.bbox)


def test_progress_without_catalog(city_client: Any) -> None:
    body = city_client.get("/progress").json()
    assert body["targets"] == [] and body["count"] == 0
    assert "no plan targets" in body["message"]
    ranking = city_client.get("/progress/ranking", params={"quarter": "2022Q3"})
    assert ranking.status_code == 200 and ranking.json()["ranking"] == []
    assert city.current().name_en == "Shijiazhuang"  # the request's city did not leak into the process


def test_the_citys_own_zone_is_an_output_crs(city_client: Any) -> None:
    uri = "http://www.opengis.net/def/crs/EPSG/0/4528"
    coll = city_client.get("/collections/land_parcels", params={"f": "json"}).json()
    assert uri in coll["crs"]
    assert "http://www.opengis.net/def/crs/EPSG/0/4547" not in coll["crs"]  # Shijiazhuang's zone is not offered here
    r = city_client.get("/collections/land_parcels/items", params={"crs": uri, "limit": 5})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{uri}>"
    northing, easting = r.json()["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 40_000_000 < easting < 41_000_000 and 3_900_000 < northing < 4_100_000  # zone 40, N/E axis order
