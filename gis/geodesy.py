"""Geodesic measures on the CGCS2000 (GRS80) ellipsoid, the reference for our projected areas."""

from __future__ import annotations

from functools import lru_cache

import shapely
from pyproj import Geod

from gis.crs import MU_PER_SQUARE_METRE


@lru_cache(maxsize=1)
def cgcs2000_geod() -> Geod:
    """The CGCS2000 ellipsoid (numerically GRS80)."""
    return Geod(ellps="GRS80")


def geodesic_area_m2(geom_lonlat: shapely.Geometry) -> float:
    """Geodesic area in m² of a lon/lat (multi)polygon, holes subtracted."""
    area, _ = cgcs2000_geod().geometry_area_perimeter(geom_lonlat)
    return abs(area)


def geodesic_area_mu(geom_lonlat: shapely.Geometry) -> float:
    """Geodesic area in mu."""
    return geodesic_area_m2(geom_lonlat) * MU_PER_SQUARE_METRE


def geodesic_length_m(geom_lonlat: shapely.Geometry) -> float:
    """Geodesic length in metres of a lon/lat line."""
    return float(cgcs2000_geod().geometry_length(geom_lonlat))
