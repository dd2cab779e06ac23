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
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any, Final, Literal

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
ZONE_TOLERANCE: Final = 0.0005
"""Largest area error of the Gauss-Krüger zone over a city (0.05 %, half the 0.1 % promised) before
:func:`create_city` measures on the spheroid instead."""
Measure = Literal["zone", "geodesic"]
MEASURE_COLUMNS: Final[dict[str, dict[str, str]]] = {
    "zone": {
        "area_mu": "ST_Area(ST_Transform(geom, {srid})) * 0.0015",
        "length_m": "ST_Length(ST_Transform(geom, {srid}))",
    },
    "geodesic": {"area_mu": "ST_Area(geom::geography) * 0.0015", "length_m": "ST_Length(geom::geography)"},
}
"""Generated measure columns and their expression: planar in the city's zone, or on the CGCS2000 spheroid.

``bench/bench_area.py`` measured both: the zone is 4.4x faster to compute and within 0.05 % for a
city that fits its zone (Shijiazhuang 0.04 %, Qingdao 0.02 %), but 0.16 % off for cities four or
five degrees wide (Harbin, Chongqing); the spheroid is exact everywhere. So a city's areas are
planar in its zone when that is within :data:`ZONE_TOLERANCE`, and geodesic otherwise."""


class CityProfile(BaseModel):
    """One city's settings, as stored in ``renewal.city``."""

    name: str = Field(min_length=1, description="Name in Chinese, e.g. 石家庄")
    name_en: str = Field(min_length=1, description="Name in English (messages), e.g. Shijiazhuang")
    adcode: str = Field(pattern=r"^\d{6}$", description="The city's administrative code")
    extent: tuple[float, float, float, float] = Field(description="lon/lat box with a margin: import checks")
    area_srid: int = Field(description="Projected CRS (EPSG): the city's Gauss-Krüger zone (areas, distances)")
    measure: Measure = Field(default="zone", description="area_mu/length_m planar in area_srid, or geodesic")
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

    def area_m2_sql(self, expr: sql.Composable) -> sql.Composable:
        """SQL for the area in m² of a CGCS2000 geometry expression, as the ``area_mu`` columns measure it."""
        if self.measure == "geodesic":
            return sql.SQL("ST_Area(({})::geography)").format(expr)
        return sql.SQL("ST_Area(ST_Transform({}, {}))").format(expr, sql.Literal(int(self.area_srid)))

    def length_m_sql(self, expr: sql.Composable) -> sql.Composable:
        """SQL for the length in metres of a CGCS2000 geometry expression, as the ``length_m`` columns measure it."""
        if self.measure == "geodesic":
            return sql.SQL("ST_Length(({})::geography)").format(expr)
        return sql.SQL("ST_Length(ST_Transform({}, {}))").format(expr, sql.Literal(int(self.area_srid)))

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
    zoom=10.5,
    title="石家庄城市更新一张图",
    title_en="Shijiazhuang urban renewal map",
    catalog="package",
    demo="shijiazhuang",
)
"""The default profile (migration 0007 seeds the same row)."""

_lock = threading.Lock()
_cache: dict[tuple[str, str, int], CityProfile] = {}
_active: CityProfile | None = None
_request_city: ContextVar[CityProfile | None] = ContextVar("renewal_city", default=None)


def _key(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> tuple[str, str, int]:
    info = conn.info
    return (info.host or "", info.dbname or "", int(info.port or 0))


def _from_row(row: tuple[Any, ...]) -> CityProfile:
    data = {k: v for k, v in dict(row[0]).items() if k in CityProfile.model_fields}
    data["extent"] = tuple(data["extent"])
    data["centre"] = tuple(data["centre"])
    return CityProfile.model_validate(data)


SELECT_PROFILE: Final = "SELECT to_jsonb(c) FROM renewal.city AS c"
"""One row: the profile as JSON (columns added by later migrations are optional: their defaults apply)."""


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


def for_conninfo(conninfo: str, connect_timeout: int | None = None) -> CityProfile:
    """The profile of the database named by ``conninfo`` (cached per database)."""
    if connect_timeout:
        conninfo = psycopg.conninfo.make_conninfo(conninfo, connect_timeout=connect_timeout)
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


def use(profile: CityProfile | None) -> Token[CityProfile | None]:
    """Make ``profile`` the city of the current context (one HTTP request); undo with :func:`release`."""
    return _request_city.set(profile)


def release(token: Token[CityProfile | None]) -> None:
    """Undo :func:`use`."""
    _request_city.reset(token)


def current() -> CityProfile:
    """The city of this request (:func:`use`), else the process's (:func:`activate`), else the default."""
    return _request_city.get() or _active or SHIJIAZHUANG


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


def zone_error(geoms: np.ndarray[Any, np.dtype[np.object_]], srid: int) -> float:
    """Worst relative area error of planar areas in ``srid`` against the geodesic area, over the districts.

    Checked on each district and on 0.01° squares at the corners of their bounding box (where a
    future parcel is farthest from the central meridian).
    """
    from gis.crs import MU_PER_SQUARE_METRE, area_mu
    from gis.geodesy import geodesic_area_m2

    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    corners = [shapely.box(x, y, x + 0.01, y + 0.01) for x in (minx, maxx - 0.01) for y in (miny, maxy - 0.01)]
    worst = 0.0
    for g in [*geoms, *corners]:
        reference = geodesic_area_m2(g)
        if reference > 0:
            worst = max(worst, abs(area_mu(g, srid) / MU_PER_SQUARE_METRE - reference) / reference)
    return worst


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
            "measure = %s, centre = %s, zoom = %s, title = %s, title_en = %s, catalog = %s, catalog_yaml = %s, "
            "demo = %s",
            (
                profile.name, profile.name_en, profile.adcode, list(profile.extent), profile.area_srid,
                profile.measure, list(profile.centre), profile.zoom, profile.title, profile.title_en,
                profile.catalog, profile.catalog_yaml, profile.demo,
            ),
        )
        set_measures(conn, profile)
    forget()


def _normalised(expression: str) -> str:
    return "".join(ch for ch in expression.lower() if ch.isalnum())


def set_measures(conn: psycopg.Connection[Any], profile: CityProfile) -> list[str]:
    """Rebuild every generated measure column of the layer tables as ``profile`` measures; return those changed."""
    wanted = {c: e.format(srid=int(profile.area_srid)) for c, e in MEASURE_COLUMNS[profile.measure].items()}
    rows = conn.execute(
        "SELECT table_name, column_name, generation_expression FROM information_schema.columns "
        "WHERE table_schema = %s AND is_generated = 'ALWAYS' AND column_name = ANY(%s) ORDER BY 1, 2",
        (SCHEMA, list(wanted)),
    ).fetchall()
    changed = []
    for table, column, expression in rows:
        current_text = _normalised(expression or "")
        if profile.measure == "zone" and "geography" not in current_text \
                and f"sttransformgeom{int(profile.area_srid)}" in current_text:
            continue
        if profile.measure == "geodesic" and "geography" in current_text:
            continue
        ident = sql.Identifier(SCHEMA, table)
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(ident, sql.Identifier(column)))
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} double precision GENERATED ALWAYS AS ({}) STORED").format(
                ident, sql.Identifier(column), sql.SQL(wanted[column])
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


# ----------------------------------------------------------------------------- renewal city create


def _zoom_for(extent: Extent) -> float:
    """A zoom that shows the whole box on a ~700-pixel map (MapLibre zoom levels, 512-px tiles)."""
    import math

    span = max(extent.maxx - extent.minx, (extent.maxy - extent.miny) / math.cos(math.radians(extent.centre[1])))
    return float(max(3, min(14, math.floor(math.log2(360.0 * 2 / max(span, 1e-6))))))  # MapLibre: 512-px tiles


def _adcode_from(frame: Any) -> str | None:
    """The city adcode the districts' adcodes share (370202, 370203 → 370200), if a code column exists."""
    for column in ("adcode", "code", "行政区划代码", "district_code"):
        if column in frame.columns:
            codes = {str(v).strip()[:4] for v in frame[column] if str(v).strip().isdigit() and len(str(v).strip()) == 6}
            if len(codes) == 1:
                return codes.pop() + "00"
            prefixes = {c[:2] for c in codes}
            if len(prefixes) == 1 and codes:
                return prefixes.pop() + "0000"
    return None


def create_city(
    conninfo: str,
    name: str,
    districts: Path,
    *,
    crs: str | None = None,
    area_crs: str | None = None,
    catalog: Path | None = None,
    name_en: str | None = None,
    adcode: str | None = None,
    actor: str | None = None,
    measure: Measure | None = None,
) -> tuple[CityProfile, Any]:
    """Turn an empty, migrated database into ``name``: profile, measure columns, districts.

    The extent is the districts' box plus a margin; the area/length CRS is ``area_crs`` or the
    CGCS2000 3° Gauss-Krüger zone whose central meridian is nearest the districts' centroid;
    areas and lengths are planar in that CRS if it is within :data:`ZONE_TOLERANCE` of the geodesic
    area over the districts, else geodesic (``measure`` forces one); the map opens on the centroid.
    ``crs`` is the CRS of the boundary file when it declares none
    (DataV downloads are GCJ-02: ``gcj02``). Returns the profile and the districts' import report.

    Raises
    ------
    ConflictError
        If the database already holds layer data.
    InvalidInputError
        If the boundary file cannot be read or its districts are rejected (nothing is kept).
    """
    from gis.crs import to_storage
    from gis.io import read_source
    from layers.importer import ImportOptions, run_import

    source = read_source(districts, prefer=("districts",))
    if len(source) == 0:
        raise InvalidInputError(f"'{districts.name}' holds no district boundaries.")
    src = parse_crs(crs) if crs else source.crs
    if src is None:
        raise CRSError(f"'{districts.name}' declares no CRS; pass --crs (gcj02 for DataV downloads, EPSG:4490 ...).")
    geoms = np.array([to_storage(g, src) for g in source.geometry if g is not None and not g.is_empty], dtype=object)
    if len(geoms) == 0:
        raise InvalidInputError(f"'{districts.name}' has no district geometries.")
    english = name_en or name
    extent = extent_for(geoms, english)
    code = adcode or _adcode_from(source.frame)
    if code is None:
        raise InvalidInputError("The districts carry no 6-digit adcodes; pass --adcode with the city's code.")
    centroid = shapely.union_all(geoms).centroid
    srid = area_crs_for(geoms, area_crs)
    if measure is None:
        measure = "zone" if zone_error(geoms, srid) <= ZONE_TOLERANCE else "geodesic"
    profile = CityProfile(
        name=name, name_en=english, adcode=code, extent=extent.as_tuple(), area_srid=srid, measure=measure,
        centre=(round(float(centroid.x), 5), round(float(centroid.y), 5)), zoom=_zoom_for(extent),
        title=f"{name}城市更新一张图", title_en=f"{english} urban renewal map",
        catalog="stored" if catalog else None, catalog_yaml=read_catalog(catalog) if catalog else None, demo=None,
    )
    with psycopg.connect(conninfo, application_name="renewal-city") as conn:
        ensure_empty(conn)
        previous = load(conn, fresh=True)
        write_profile(conn, profile)
    options = ImportOptions(mode="replace", crs=crs, actor=actor, source_doc=f"renewal city create {name}")
    try:
        report = run_import(conninfo, "districts", districts, options)
    except Exception:
        with psycopg.connect(conninfo, application_name="renewal-city") as conn:
            write_profile(conn, previous)
        raise
    if report.status != "applied":
        with psycopg.connect(conninfo, application_name="renewal-city") as conn:
            write_profile(conn, previous)
        first = "; ".join(str(e.get("message")) for e in report.errors[:3])
        raise InvalidInputError(
            f"The districts were rejected ({report.status}): {report.message or first}. Nothing was kept.",
            detail={"report": report.as_dict()},
        )
    return profile, report
