"""The city profile: everything that makes this database Shijiazhuang (or any other city).

One database holds one city. Its profile (name, adcode, extent, area/length CRS, map centre
and zoom, viewer title, plan catalog, demo generator) is a single row of ``renewal.city``
(migration 0007), so ``DATABASE_URL`` alone selects the city and the API, CLI, maps and
viewer read it from there. Nothing else in the code names a city's extent, adcodes or area
CRS: they ask this module.

Shijiazhuang is the default profile (:data:`SHIJIAZHUANG`): the migration seeds it, and
code that runs without a database (the demo generator, pure tests) uses it.
:func:`create_city` turns an empty, migrated database into another city.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

import numpy as np
import psycopg
import shapely
from psycopg import sql
from pydantic import BaseModel, Field

from gis.crs import Extent, nearest_gauss_kruger_3deg, parse_crs, proj_crs
from gis.errors import ConflictError, CRSError, InvalidInputError
from layers.errors import ServiceUnavailableError

SCHEMA: Final = "renewal"
EXTENT_MARGIN_DEG: Final = 0.2
"""Margin around the districts' bounding box for the import check (about 20 km)."""
MEASURE_COLUMNS: Final = {
    "area_mu": "ST_Area(ST_Transform(geom, {srid})) * 0.0015",
    "length_m": "ST_Length(ST_Transform(geom, {srid}))",
}
"""Generated measure columns and their expression in the city's area/length CRS."""


class CityProfile(BaseModel):
    """One city's settings, as stored in ``renewal.city``."""

    name: str = Field(min_length=1, description="Name in Chinese, e.g. 石家庄")
    name_en: str = Field(min_length=1, description="Name in English (messages), e.g. Shijiazhuang")
    adcode: str = Field(pattern=r"^\d{6}$", description="The city's administrative code")
    extent: tuple[float, float, float, float] = Field(description="lon/lat box with a margin: import checks")
    area_srid: int = Field(description="Projected CRS (EPSG) of area_mu and length_m")
    centre: tuple[float, float] = Field(description="Where maps open (lon, lat)")
    zoom: float = Field(ge=0, le=22)
    title: str
    title_en: str
    catalog: str | None = Field(default=None, description="'package' (shipped), 'stored' (catalog_yaml) or None")
    catalog_yaml: str | None = None
    demo: str | None = Field(default=None, description="Demo generator, if any ('shijiazhuang')")

    @property
    def bbox(self) -> Extent:
        """The extent with the city's English name, for the import and edit checks."""
        return Extent(*self.extent, name=self.name_en)

    @property
    def district_prefix(self) -> str:
        """The adcode prefix every district of the city shares (1301 for 130100, 11 for 110000)."""
        return self.adcode[:2] if self.adcode[2:4] == "00" else self.adcode[:4]

    def is_district_code(self, code: str) -> bool:
        """Whether ``code`` looks like a district adcode of this city."""
        return len(code) == 6 and code.isdigit() and code.startswith(self.district_prefix)

    def public(self) -> dict[str, Any]:
        """What clients may see (no catalog text)."""
        return self.model_dump(exclude={"catalog_yaml"})


SHIJIAZHUANG: Final = CityProfile(
    name="石家庄",
    name_en="Shijiazhuang",
    adcode="130100",
    extent=(113.4, 37.4, 115.6, 38.8),
    area_srid=4547,
    centre=(114.50, 38.04),
    zoom=11,
    title="石家庄城市更新一张图",
    title_en="Shijiazhuang urban renewal map",
    catalog="package",
    demo="shijiazhuang",
)
"""The default profile (migration 0007 seeds the same row)."""

_COLUMNS: Final = (
    "name", "name_en", "adcode", "extent", "area_srid", "centre", "zoom", "title", "title_en",
    "catalog", "catalog_yaml", "demo",
)
_lock = threading.Lock()
_cache: dict[tuple[str, str, int], CityProfile] = {}
_active: CityProfile | None = None


def _key(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> tuple[str, str, int]:
    info = conn.info
    return (info.host or "", info.dbname or "", int(info.port or 0))


def _from_row(row: tuple[Any, ...]) -> CityProfile:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["extent"] = tuple(data["extent"])
    data["centre"] = tuple(data["centre"])
    return CityProfile.model_validate(data)


SELECT_PROFILE: Final = (
    "SELECT name, name_en, adcode, extent, area_srid, centre, zoom, title, title_en, catalog, catalog_yaml, demo "
    "FROM renewal.city"
)
"""One row: the profile (for async callers that run it on their own connection)."""


def profile_from_row(row: tuple[Any, ...] | None) -> CityProfile:
    """The profile from a :data:`SELECT_PROFILE` row (the default when there is none)."""
    return SHIJIAZHUANG if row is None else _from_row(row)


def load(conn: psycopg.Connection[Any], *, fresh: bool = False) -> CityProfile:
    """The profile of the database ``conn`` is connected to (cached per database).

    A database migrated before the profile existed is Shijiazhuang (the default).
    """
    key = _key(conn)
    if not fresh and key in _cache:
        return _cache[key]
    exists = conn.execute("SELECT to_regclass('renewal.city') IS NOT NULL").fetchone()
    row = conn.execute(SELECT_PROFILE).fetchone() if exists and exists[0] else None
    profile = profile_from_row(row)
    with _lock:
        _cache[key] = profile
    return profile


async def load_async(conn: psycopg.AsyncConnection[Any], *, fresh: bool = False) -> CityProfile:
    """:func:`load` for the API's async connections (one query the first time, then cached)."""
    key = _key(conn)
    if not fresh and key in _cache:
        return _cache[key]
    cur = await conn.execute("SELECT to_regclass('renewal.city') IS NOT NULL")
    exists = await cur.fetchone()
    row = None
    if exists and exists[0]:
        cur = await conn.execute(SELECT_PROFILE)
        row = await cur.fetchone()
    profile = profile_from_row(row)
    with _lock:
        _cache[key] = profile
    return profile


def for_conninfo(conninfo: str) -> CityProfile:
    """The profile of the database named by ``conninfo`` (cached per database)."""
    try:
        with psycopg.connect(conninfo, application_name="renewal-city") as conn:
            return load(conn)
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError("The database is not reachable; try again shortly.") from exc


def activate(profile: CityProfile | None) -> CityProfile | None:
    """Make ``profile`` the process's city (the app does this from its database); returns the previous one.

    Code without a connection at hand (the plan catalog) reads :func:`current`.
    """
    global _active
    with _lock:
        previous, _active = _active, profile
    return previous


def current() -> CityProfile:
    """The process's city: the one activated from the database, else the default."""
    return _active or SHIJIAZHUANG


def forget() -> None:
    """Drop cached profiles (after :func:`create_city` rewrote one)."""
    with _lock:
        _cache.clear()


# ------------------------------------------------------------------------------- creating a city


def area_crs_for(geoms: np.ndarray[Any, np.dtype[np.object_]], crs: str | None = None) -> int:
    """The area/length CRS for districts (CGCS2000 lon/lat): ``crs`` if given, else the nearest 3° GK zone.

    Raises
    ------
    CRSError
        If ``crs`` is not a projected EPSG CRS in metres.
    """
    if crs:
        ref = parse_crs(crs)
        if ref.kind != "epsg" or ref.epsg is None:
            raise CRSError(f"The area CRS must be a projected EPSG code in metres, not {crs}.")
        pc = proj_crs(ref.epsg)
        if not pc.is_projected or pc.axis_info[0].unit_name not in ("metre", "meter"):
            raise CRSError(f"EPSG:{ref.epsg} ({pc.name}) is not a projected CRS in metres; areas need one.")
        return ref.epsg
    centroid = shapely.union_all(geoms).centroid
    return nearest_gauss_kruger_3deg(float(centroid.x))


def extent_for(geoms: np.ndarray[Any, np.dtype[np.object_]], name_en: str) -> Extent:
    """The districts' bounding box plus :data:`EXTENT_MARGIN_DEG`, rounded outwards to 0.1°."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return Extent(float(minx), float(miny), float(maxx), float(maxy), name_en).buffered(EXTENT_MARGIN_DEG)


def write_profile(conn: psycopg.Connection[Any], profile: CityProfile) -> None:
    """Store ``profile`` as the database's city and make the measure columns follow its area CRS.

    The generated ``area_mu``/``length_m`` columns of every layer table are rebuilt in the
    profile's CRS (PostgreSQL 15 cannot alter a generation expression, so each is dropped and
    added again; the table is rewritten, which is why this is for an empty database).
    """
    with conn.transaction():
        conn.execute(
            "UPDATE renewal.city SET name = %s, name_en = %s, adcode = %s, extent = %s, area_srid = %s, "
            "centre = %s, zoom = %s, title = %s, title_en = %s, catalog = %s, catalog_yaml = %s, demo = %s",
            (
                profile.name, profile.name_en, profile.adcode, list(profile.extent), profile.area_srid,
                list(profile.centre), profile.zoom, profile.title, profile.title_en, profile.catalog,
                profile.catalog_yaml, profile.demo,
            ),
        )
        set_measure_srid(conn, profile.area_srid)
    forget()


def set_measure_srid(conn: psycopg.Connection[Any], srid: int) -> list[str]:
    """Rebuild every generated measure column of the layer tables in ``srid``; return ``table.column``s."""
    rows = conn.execute(
        "SELECT table_name, column_name, generation_expression FROM information_schema.columns "
        "WHERE table_schema = %s AND is_generated = 'ALWAYS' AND column_name = ANY(%s) ORDER BY 1, 2",
        (SCHEMA, list(MEASURE_COLUMNS)),
    ).fetchall()
    changed = []
    for table, column, expression in rows:
        if f"ST_Transform(geom, {srid})" in (expression or ""):
            continue
        ident = sql.Identifier(SCHEMA, table)
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(ident, sql.Identifier(column)))
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} double precision GENERATED ALWAYS AS ({}) STORED").format(
                ident, sql.Identifier(column), sql.SQL(MEASURE_COLUMNS[column].format(srid=int(srid)))
            )
        )
        changed.append(f"{table}.{column}")
    return changed


def ensure_empty(conn: psycopg.Connection[Any]) -> None:
    """Refuse to turn a database with layer data into another city (one database = one city).

    Raises
    ------
    ConflictError
        If any layer table has rows.
    """
    from layers.registry import get_registry

    for layer in get_registry():
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{layer.table}",)).fetchone()
        if not (exists and exists[0]):
            continue
        row = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(SCHEMA, layer.table))
        ).fetchone()
        if row and row[0]:
            raise ConflictError(
                f"The database already holds data (layer '{layer.id}'); one database holds one city. "
                "Create an empty database, run `renewal db upgrade`, and create the city there."
            )


def read_catalog(path: Path) -> str:
    """The text of a plan catalog file, validated (the layers it names must exist).

    Raises
    ------
    InvalidInputError
        If the file is not a valid catalog.
    """
    import yaml

    from layers.plan import parse_catalog

    try:
        text = path.read_text(encoding="utf-8")
        parse_catalog(yaml.safe_load(text))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise InvalidInputError(f"The plan catalog '{path}' cannot be used: {exc}") from exc
    return text
