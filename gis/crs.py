"""Coordinate reference systems used by the toolkit, and transforms between them.

Storage is CGCS2000 geographic (EPSG:4490). Areas and lengths come from a projected
CRS the caller names (a city's CGCS2000 3-degree Gauss-Krüger zone, see
:func:`nearest_gauss_kruger_3deg`), whose scale error within 1.5° of the central meridian
stays below 0.07 % in area. Nothing here knows a city: the city's extent is an
:class:`Extent` handed in by the caller. GeoJSON output is CRS84 (RFC 7946). GCJ-02 and
BD-09 are not EPSG systems; they are accepted as the
pseudo-codes ``GCJ02`` and ``BD09`` and routed through :mod:`gis.chinacrs`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as ProjCRSError

from gis import chinacrs
from gis.errors import CRSError

STORAGE_SRID: Final = 4490
"""CGCS2000 geographic: authoritative storage."""
WGS84_SRID: Final = 4326
WEB_MERCATOR_SRID: Final = 3857
MU_PER_SQUARE_METRE: Final = 15.0 / 10000.0
"""1 mu (亩) = 10000/15 m² ≈ 666.667 m²."""

CRS84_URI: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GCJ02: Final = "GCJ02"
BD09: Final = "BD09"



@dataclass(frozen=True)
class Extent:
    """A lon/lat box in CGCS2000 degrees with the name messages give it (a city with a margin).

    Used to catch swapped axes, wrong Gauss-Krüger zones and projected coordinates declared
    as degrees: a point outside it is almost always a CRS mistake, not a real feature.
    """

    minx: float
    miny: float
    maxx: float
    maxy: float
    name: str = "the area"

    def contains(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Which lon/lat points lie inside (NaN is outside)."""
        ax, ay = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (ax >= self.minx) & (ax <= self.maxx) & (ay >= self.miny) & (ay <= self.maxy)

    @property
    def centre(self) -> tuple[float, float]:
        """The middle of the box (lon, lat)."""
        return ((self.minx + self.maxx) / 2, (self.miny + self.maxy) / 2)

    def describe(self) -> str:
        """``about 113.4–115.6°E, 37.4–38.8°N`` for messages."""
        return f"about {self.minx:g}–{self.maxx:g}°E, {self.miny:g}–{self.maxy:g}°N"

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy)."""
        return (self.minx, self.miny, self.maxx, self.maxy)

    def buffered(self, margin: float) -> Extent:
        """The box grown by ``margin`` degrees on every side, rounded outwards to 0.1°."""
        eps = 1e-6  # so that 119.9 - 0.2 = 119.69999... stays 119.7
        return Extent(
            math.floor((self.minx - margin) * 10 + eps) / 10,
            math.floor((self.miny - margin) * 10 + eps) / 10,
            math.ceil((self.maxx + margin) * 10 - eps) / 10,
            math.ceil((self.maxy + margin) * 10 - eps) / 10,
            self.name,
        )


@dataclass(frozen=True)
class CrsRef:
    """A parsed CRS reference: an EPSG code, CRS84, or a Chinese offset datum."""

    kind: str  # "epsg", "crs84", "gcj02" or "bd09"
    epsg: int | None = None

    @property
    def uri(self) -> str:
        """The OGC URI used in ``Content-Crs`` headers and ``storageCrs``."""
        if self.kind == "crs84":
            return CRS84_URI
        if self.kind == "epsg":
            return f"http://www.opengis.net/def/crs/EPSG/0/{self.epsg}"
        return self.kind.upper()

    @property
    def is_offset_datum(self) -> bool:
        """True for GCJ-02 and BD-09, which PROJ cannot handle."""
        return self.kind in ("gcj02", "bd09")

    @property
    def axis_lat_first(self) -> bool:
        """Whether the authority axis order is latitude first (EPSG:4326, EPSG:4490)."""
        return self.kind == "epsg" and self.epsg in (4326, 4490)

    @property
    def label(self) -> str:
        """Short human label, e.g. ``EPSG:4547`` or ``CRS84``."""
        if self.kind == "epsg":
            return f"EPSG:{self.epsg}"
        return {"crs84": "CRS84", "gcj02": GCJ02, "bd09": BD09}[self.kind]


CRS84: Final = CrsRef("crs84")
STORAGE: Final = CrsRef("epsg", STORAGE_SRID)

_URI_EPSG = re.compile(
    r"^(?:https?://www\.opengis\.net/def/crs/EPSG/0/|urn:ogc:def:crs:EPSG:[^:]*:|EPSG:)?(\d{4,6})$", re.I
)
_CRS84_NAMES = {"crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84", CRS84_URI.lower(), "wgs84lonlat"}
_GCJ_NAMES = {"gcj02", "gcj-02", "gcj", "mars", "gaode", "amap"}
_BD_NAMES = {"bd09", "bd-09", "baidu"}


def parse_crs(text: str) -> CrsRef:
    """Parse a user-given CRS: ``EPSG:4547``, ``4547``, an OGC URI/URN, ``CRS84``, ``gcj02``, ``bd09``.

    Raises
    ------
    CRSError
        If the text names no CRS PROJ knows.
    """
    value = text.strip().strip("[]<>")
    low = value.lower()
    if low in _CRS84_NAMES:
        return CRS84
    if low in _GCJ_NAMES:
        return CrsRef("gcj02")
    if low in _BD_NAMES:
        return CrsRef("bd09")
    match = _URI_EPSG.match(value)
    if not match:
        raise CRSError(
            f"'{text}' is not a CRS this toolkit understands. Use an EPSG code such as EPSG:4490 "
            "(CGCS2000), EPSG:4547 (CGCS2000 Gauss-Krüger 114°E), EPSG:4326, CRS84, or GCJ02/BD09."
        )
    code = int(match.group(1))
    try:
        proj_crs(code)
    except ProjCRSError as exc:
        raise CRSError(f"EPSG:{code} is not a known coordinate reference system.") from exc
    return CrsRef("epsg", code)


@lru_cache(maxsize=256)
def proj_crs(epsg: int) -> CRS:
    """A cached ``pyproj.CRS`` for an EPSG code."""
    return CRS.from_epsg(epsg)


@lru_cache(maxsize=256)
def transformer(src: int | str, dst: int | str) -> Transformer:
    """A cached always-xy transformer between two CRSs (EPSG codes or PROJ strings)."""
    return Transformer.from_crs(
        proj_crs(src) if isinstance(src, int) else CRS.from_user_input(src),
        proj_crs(dst) if isinstance(dst, int) else CRS.from_user_input(dst),
        always_xy=True,
    )


def gauss_kruger_3deg_epsg(lon: float, *, with_zone_prefix: bool = False) -> int:
    """The CGCS2000 3-degree Gauss-Krüger EPSG code whose zone contains ``lon``.

    ``EPSG:4534``–``4554`` are the "CM" variants (no zone number in the easting);
    ``EPSG:4513``–``4533`` carry the zone number (zones 25–45).
    """
    zone = int(round(lon / 3.0))
    if not 25 <= zone <= 45:
        raise CRSError(f"Longitude {lon} is outside China's 3-degree Gauss-Krüger zones.")
    return (4513 if with_zone_prefix else 4534) + zone - 25


def gauss_kruger_6deg_epsg(lon: float, *, with_zone_prefix: bool = False) -> int:
    """The CGCS2000 6-degree Gauss-Krüger EPSG code whose zone contains ``lon``.

    ``EPSG:4502``–``4512`` are "CM" variants; ``EPSG:4491``–``4501`` carry the zone
    number (zones 13–23).
    """
    zone = int(lon // 6.0) + 1
    if not 13 <= zone <= 23:
        raise CRSError(f"Longitude {lon} is outside China's 6-degree Gauss-Krüger zones.")
    return (4491 if with_zone_prefix else 4502) + zone - 13


def nearest_gauss_kruger_3deg(lon: float) -> int:
    """The zoned CGCS2000 3-degree Gauss-Krüger CRS (EPSG:4513–4533) whose central meridian is nearest ``lon``.

    Within 1.5° of the central meridian the area scale error stays below about 0.07 % at
    China's latitudes, so a city's areas in its own zone are within 0.1 % of the geodesic area.
    """
    return gauss_kruger_3deg_epsg(lon, with_zone_prefix=True)


def gauss_kruger_candidates(lon: float) -> tuple[int, ...]:
    """Gauss-Krüger systems data near ``lon`` arrives in, most likely first.

    CGCS2000, Xi'an 80 and Beijing 54; 3° and 6° zones; "CM" (no zone number in the easting)
    and zoned variants. Used to explain coordinates that fall outside a city.
    """
    z3 = int(round(lon / 3.0))
    z6 = int(lon // 6.0) + 1
    if not (25 <= z3 <= 45 and 13 <= z6 <= 23):
        return ()
    d3, d6 = z3 - 25, z6 - 13
    return (
        4534 + d3, 4513 + d3,  # CGCS2000 3°: CM, zoned
        4502 + d6, 4491 + d6,  # CGCS2000 6°
        2370 + d3, 2349 + d3,  # Xi'an 1980 3°
        2422 + d3, 2401 + d3,  # Beijing 1954 3°
        2338 + d6, 2327 + d6,  # Xi'an 1980 6°
        21453 + d6, 21413 + d6,  # Beijing 1954 6°
    )


def _to_lonlat_4490(ref: CrsRef, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    if ref.kind == "gcj02":
        return chinacrs.gcj02_to_wgs84(x, y)
    if ref.kind == "bd09":
        return chinacrs.bd09_to_wgs84(x, y)
    if ref.kind == "crs84" or ref.epsg == STORAGE_SRID:
        return x, y
    assert ref.epsg is not None
    tx, ty = transformer(ref.epsg, STORAGE_SRID).transform(x, y)
    return np.asarray(tx), np.asarray(ty)


def _from_lonlat_4490(ref: CrsRef, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    if ref.kind == "gcj02":
        return chinacrs.wgs84_to_gcj02(x, y)
    if ref.kind == "bd09":
        return chinacrs.wgs84_to_bd09(x, y)
    if ref.kind == "crs84" or ref.epsg == STORAGE_SRID:
        return x, y
    assert ref.epsg is not None
    tx, ty = transformer(STORAGE_SRID, ref.epsg).transform(x, y)
    return np.asarray(tx), np.asarray(ty)


def transform_coords(
    src: CrsRef, dst: CrsRef, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Transform x/y (longitude/latitude order for geographic CRSs) between any two CrsRefs."""
    ax = np.asarray(x, dtype=np.float64)
    ay = np.asarray(y, dtype=np.float64)
    if src == dst:
        return ax, ay
    lon, lat = _to_lonlat_4490(src, ax, ay)
    return _from_lonlat_4490(dst, lon, lat)


def transform_geometry(geom: shapely.Geometry, src: CrsRef, dst: CrsRef) -> shapely.Geometry:
    """Transform a shapely geometry (x = easting/longitude) between two CrsRefs."""
    if src == dst:
        return geom

    def _apply(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        tx, ty = transform_coords(src, dst, coords[:, 0], coords[:, 1])
        return np.column_stack([tx, ty])

    return shapely.transform(geom, _apply)


def to_storage(geom: shapely.Geometry, src: CrsRef) -> shapely.Geometry:
    """Transform a geometry into CGCS2000 lon/lat (EPSG:4490)."""
    return transform_geometry(geom, src, STORAGE)


def area_mu(geom_4490: shapely.Geometry, metric_srid: int) -> float:
    """Area in mu of a CGCS2000 lon/lat geometry, measured in ``metric_srid`` as the database does."""
    projected = transform_geometry(geom_4490, STORAGE, CrsRef("epsg", metric_srid))
    return float(shapely.area(projected)) * MU_PER_SQUARE_METRE


def length_m(geom_4490: shapely.Geometry, metric_srid: int) -> float:
    """Length in metres of a CGCS2000 lon/lat geometry, measured in ``metric_srid``."""
    projected = transform_geometry(geom_4490, STORAGE, CrsRef("epsg", metric_srid))
    return float(shapely.length(projected))


def outside_city(x: npt.ArrayLike, y: npt.ArrayLike, extent: Extent) -> npt.NDArray[np.bool_]:
    """Which lon/lat points fall outside ``extent`` (a city with a margin)."""
    return ~extent.contains(x, y)
