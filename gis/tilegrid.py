"""Web Mercator tiles (WebMercatorQuad, XYZ) in longitude/latitude, and the affine map to tile units.

Why an affine map from degrees: drawing a vector tile usually projects every vertex to Web
Mercator (``ST_Transform``) and then scales it into the tile's 0..extent grid. Within one tile,
Mercator's northing is so close to linear in latitude that mapping degrees straight to tile units
with one affine transform (exact at the tile's edges) lands every vertex within
:func:`max_affine_error_units` of the projected position: 0.03 units of 4,096 at zoom 16 and
0.24 at zoom 13 at Shijiazhuang's latitude (the error halves with each zoom), below the rounding
to whole units that every tile applies anyway. It saves the projection of every vertex of every feature drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TileBounds:
    """A tile's edges in degrees (CGCS2000/WGS 84 longitude and latitude)."""

    west: float
    south: float
    east: float
    north: float


def tile_bounds_lonlat(z: int, x: int, y: int) -> TileBounds:
    """Edges of XYZ tile ``z/x/y`` of WebMercatorQuad in degrees."""
    n = 2.0**z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * row / n))))

    return TileBounds(west=x / n * 360.0 - 180.0, south=lat(y + 1), east=(x + 1) / n * 360.0 - 180.0, north=lat(y))


@dataclass(frozen=True, slots=True)
class TileAffine:
    """``ST_Affine`` coefficients taking degrees to tile units (x right, y down), the tile and the buffered box.

    ``unit_x = sx * lon + tx``; ``unit_y = sy * lat + ty`` (``sy`` is negative: tile rows run
    south). ``tile`` is the tile's edges in degrees; ``box`` is the tile plus ``buffer`` units on
    each side, in degrees: a feature whose bounding box lies inside it needs no clipping.
    """

    sx: float
    tx: float
    sy: float
    ty: float
    tile: TileBounds
    box: TileBounds


def tile_affine(z: int, x: int, y: int, extent: int, buffer: int) -> TileAffine:
    """The degrees → tile units map of tile ``z/x/y`` drawn on an ``extent`` grid with ``buffer`` units around."""
    b = tile_bounds_lonlat(z, x, y)
    sx = extent / (b.east - b.west)
    sy = -extent / (b.north - b.south)
    dx = buffer / sx
    dy = -buffer / sy
    return TileAffine(
        sx=sx,
        tx=-b.west * sx,
        sy=sy,
        ty=-b.north * sy,
        tile=b,
        box=TileBounds(b.west - dx, b.south - dy, b.east + dx, b.north + dy),
    )


def max_affine_error_units(z: int, lat_deg: float, extent: int) -> float:
    """The largest distance (in tile units) between the affine map and the true Mercator position.

    Linear interpolation of northing ``ln tan(π/4 + φ/2)`` between a tile's edges errs by at most
    ``h² / 8 · max |d²y/dφ²|`` for a tile ``h`` radians high, with ``d²y/dφ² = sec φ · tan φ``.
    Longitude is linear in Mercator, so x is exact.
    """
    phi = math.radians(abs(lat_deg))
    height_merc = 2.0 * math.pi / 2.0**z
    h = height_merc * math.cos(phi)  # the tile's height in latitude (radians), to first order
    curvature = (1.0 / math.cos(phi)) * math.tan(phi)
    return h * h / 8.0 * curvature / height_merc * extent


WEB_MAP_SCALE_Z0 = 279_541_132.014_358_76
"""Scale denominator of a web map (MapLibre, Leaflet with 512-pixel tiles) at zoom 0 and the equator.

A 512-pixel world (40,075,016.69 m) at the OGC standard pixel of 0.28 mm: 40,075,016.69 / (512 × 0.00028).
"""


def web_map_scale_denominator(zoom: float) -> float:
    """The map scale (1 : this) a web map shows at ``zoom``, for desktop programs that hide by scale (QGIS, SLD).

    One rule for "from this zoom" in a MapLibre style and "from this scale" in QML and SLD, so a
    label appears at the same view in the browser and in QGIS. The equatorial value, as QGIS and
    OGC tile matrix sets state scales.
    """
    return float(WEB_MAP_SCALE_Z0 / 2.0**zoom)
