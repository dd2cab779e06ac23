import numpy as np
import pytest
import shapely
from pyproj import Transformer

from gis import crs
from gis.errors import CRSError


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("EPSG:4490", "EPSG:4490"),
        ("4547", "EPSG:4547"),
        ("http://www.opengis.net/def/crs/EPSG/0/3857", "EPSG:3857"),
        ("urn:ogc:def:crs:EPSG::4326", "EPSG:4326"),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "CRS84"),
        ("CRS84", "CRS84"),
        ("gcj02", "GCJ02"),
        ("GCJ-02", "GCJ02"),
        ("bd09", "BD09"),
        ("EPSG:2383", "EPSG:2383"),  # Xian 1980 / 3-degree GK CM 114E
        ("EPSG:2435", "EPSG:2435"),  # Beijing 1954 / 3-degree GK CM 114E
    ],
)
def test_parse_crs_accepts_codes_uris_and_chinese_datums(text: str, label: str) -> None:
    assert crs.parse_crs(text).label == label


@pytest.mark.parametrize("text", ["EPSG:999999", "WGS85", "", "EPSG:abc", "4490; DROP TABLE x"])
def test_parse_crs_rejects_unknown(text: str) -> None:
    with pytest.raises(CRSError):
        crs.parse_crs(text)


def test_gauss_kruger_zone_codes() -> None:
    assert crs.gauss_kruger_3deg_epsg(114.5) == 4547
    assert crs.gauss_kruger_3deg_epsg(114.5, with_zone_prefix=True) == 4526
    assert crs.gauss_kruger_6deg_epsg(114.5) == 4509  # CM 117E, zone 20
    assert crs.gauss_kruger_6deg_epsg(114.5, with_zone_prefix=True) == 4498
    with pytest.raises(CRSError):
        crs.gauss_kruger_3deg_epsg(10.0)


def test_transform_matches_pyproj_for_every_output_crs() -> None:
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(114.3, 114.7, 50), rng.uniform(37.9, 38.2, 50)
    for code in (4326, 4547, 3857, 4509):
        x, y = crs.transform_coords(crs.STORAGE, crs.CrsRef("epsg", code), lon, lat)
        ex, ey = Transformer.from_crs(4490, code, always_xy=True).transform(lon, lat)
        assert np.allclose(x, ex, atol=1e-6) and np.allclose(y, ey, atol=1e-6)


def test_area_in_mu_of_a_known_square() -> None:
    # a 1 km x 1 km square in EPSG:4547 is 1500 mu
    square = shapely.box(500000, 4200000, 501000, 4201000)
    lonlat = crs.transform_geometry(square, crs.CrsRef("epsg", 4547), crs.STORAGE)
    assert crs.area_mu(lonlat, 4547) == pytest.approx(1500.0, rel=1e-9)


def test_outside_city_catches_swapped_axes() -> None:
    box = crs.Extent(113.4, 37.4, 115.6, 38.8, "Shijiazhuang")
    assert not crs.outside_city([114.5], [38.0], box)[0]
    assert crs.outside_city([38.0], [114.5], box)[0]
