"""gis.tilegrid: tile edges in degrees, and how far the degrees → tile-units affine map strays from Mercator."""

from __future__ import annotations

import math

import morecantile
import pytest
from pyproj import Transformer

from gis.tilegrid import max_affine_error_units, tile_affine, tile_bounds_lonlat

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.mark.parametrize("z", [0, 5, 13, 16, 20])
def test_bounds_match_morecantile(z: int) -> None:
    t = TMS.tile(114.5, 38.04, z)
    ref = TMS.bounds(t)
    b = tile_bounds_lonlat(z, t.x, t.y)
    assert (b.west, b.south, b.east, b.north) == pytest.approx((ref.left, ref.bottom, ref.right, ref.top), abs=1e-9)


@pytest.mark.parametrize("z", [13, 15, 16, 18])
def test_affine_map_within_its_bound_of_mercator(z: int) -> None:
    """Every point of a tile maps within max_affine_error_units of its projected position; edges exactly."""
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    t = TMS.tile(114.5, 38.04, z)
    a = tile_affine(z, t.x, t.y, 4096, 64)
    xy = TMS.xy_bounds(t)
    worst = 0.0
    for i in range(11):
        for j in range(11):
            lon = a.box.west + (a.box.east - a.box.west) * i / 10
            lat = a.box.south + (a.box.north - a.box.south) * j / 10
            mx, my = to_merc.transform(lon, lat)
            ux = (mx - xy.left) / (xy.right - xy.left) * 4096
            uy = (xy.top - my) / (xy.top - xy.bottom) * 4096
            assert a.sx * lon + a.tx == pytest.approx(ux, abs=1e-6)
            worst = max(worst, abs(a.sy * lat + a.ty - uy))
    bound = max_affine_error_units(z, 38.04, 4096)
    assert 0.3 * bound < worst <= bound * 1.1  # the buffer goes slightly beyond the tile the bound is for
    assert bound < 0.25  # from z13 well below the half unit of rounding every tile applies
    corner = tile_bounds_lonlat(z, t.x, t.y)
    assert a.sy * corner.north + a.ty == pytest.approx(0, abs=1e-6)
    assert a.sy * corner.south + a.ty == pytest.approx(4096, abs=1e-6)
    assert math.isclose(a.sx * corner.east + a.tx, 4096, abs_tol=1e-6)
