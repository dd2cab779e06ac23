"""What every part of the feature query shares: the binder, the column kinds, the CRS geometry rules.

This module sits beneath :mod:`.cql2sql`, :mod:`.builder`, :mod:`.paging` and :mod:`.execute`
(and imports none of them), so the translator, the SQL builder and paging can all use the
same binder, column kinds and value coercion without an import cycle. Value conversion itself
is :mod:`layers.values` (one rule set for URLs, JSON bodies and files); :func:`coerce` only
adds the layer's names to its errors.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

from psycopg import sql

from gis.crs import CRS84, CrsRef, proj_crs
from gis.errors import InvalidInputError, NotFoundError
from layers.errors import UnknownFieldError
from layers.models import Layer
from layers.values import convert_field

SUPPORTED_CRS: Final[tuple[CrsRef, ...]] = (
    CRS84,
    CrsRef("epsg", 4326),
    CrsRef("epsg", 4490),
    CrsRef("epsg", 3857),
)
"""Output/bbox/filter CRSs of the feature API in every city; the API adds the city's own Gauss-Krüger
zone (its profile's ``area_srid``: EPSG:4547 for Shijiazhuang, see ``api.ogc.metadata.supported_crs``)."""
GEOGRAPHIC_SRIDS: Final = (4326, 4490)
GEOM_NAMES: Final = ("geom", "geometry")

KIND_OF_FIELD: Final = {"text": "text", "integer": "integer", "number": "number", "date": "date",
                        "boolean": "boolean"}
CAST_OF_KIND: Final = {"text": "text", "integer": "bigint", "number": "double precision", "date": "date",
                       "boolean": "boolean", "timestamp": "timestamptz"}
"""The SQL cast a bound value of each column kind gets (internal constants, never user text)."""


class FeatureNotFoundError(NotFoundError):
    """No feature with this id in the layer."""

    title = "Feature not found"

    def __init__(self, layer_id: str, feature_id: object) -> None:
        super().__init__(
            f"Layer '{layer_id}' has no feature with id '{feature_id}'.",
            detail={"layer": layer_id, "featureId": str(feature_id)},
        )


class Binder:
    """Collects bound parameter values and hands out named placeholders (``%(q0)s``, ...).

    One binder per statement part; pass ``binder.params`` to ``cursor.execute``. The prefix keeps
    these names apart from another binder's (a WHERE built once and reused) or a caller's own.
    """

    def __init__(self, prefix: str = "q") -> None:
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def __call__(self, value: Any, cast: str | None = None) -> sql.Composable:
        """A placeholder for ``value``, optionally with a ``::cast`` (cast names are internal constants)."""
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError("Text values cannot contain the NUL character (\\0).")
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        ph = sql.Placeholder(name)
        if cast is None:
            return ph
        return sql.SQL("{}::{}").format(ph, sql.SQL(cast))


# --------------------------------------------------------------------------- layer columns


def column_kinds(layer: Layer) -> dict[str, str]:
    """Every queryable/sortable property of the layer and its kind, in display order (``id`` first)."""
    kinds: dict[str, str] = {"id": "integer", "code": "text", "name": "text", "district_code": "text"}
    if layer.has_status:
        kinds["status"] = "text"
    for f in layer.fields:
        kinds[f.name] = KIND_OF_FIELD[f.type]
    measure = layer.measure_field
    if measure and measure not in kinds:
        kinds[measure] = "number"
    kinds["created_at"] = "timestamp"
    kinds["updated_at"] = "timestamp"
    return kinds


def output_properties(layer: Layer) -> list[str]:
    """The properties a GeoJSON feature carries by default (everything but ``id``)."""
    return [name for name in column_kinds(layer) if name != "id"]


def table_sql(layer: Layer) -> sql.Composable:
    """The qualified table name."""
    return sql.Identifier(layer.schema_name, layer.table)


def col(name: str) -> sql.Composable:
    """A column of the row alias ``t`` every query statement uses."""
    return sql.Identifier("t", name)


def unknown_field(layer: Layer, name: str) -> UnknownFieldError:
    """The 400 for a property the layer does not have, listing those it has."""
    return UnknownFieldError(layer.id, name, [n for n in column_kinds(layer)] + ["geom"])


def coerce(layer: Layer, prop: str, kind: str, value: Any) -> Any:
    """A literal (URL text or JSON value) as the property's Python value by :mod:`layers.values`' rules, or a 400."""
    return convert_field(kind, value, field=prop, layer_id=layer.id, label=layer.labels.get(prop))


def status_value(layer: Layer, value: str) -> str:
    """A status code from a code, Chinese label, English label or alias (as ledgers write it)."""
    assert layer.lifecycle is not None
    code = layer.lifecycle.by_label().get(value.strip().lower())
    return code if code is not None else value


def parse_feature_id(layer: Layer, text: str) -> int:
    """A feature id from the URL path; a non-numeric id cannot exist, so it is a 404 as the standard expects."""
    if not re.fullmatch(r"\d{1,18}", text.strip()):
        raise FeatureNotFoundError(layer.id, text)
    return int(text)


# --------------------------------------------------------------------------- CRS geometry rules


@lru_cache(maxsize=32)
def axis_swapped(ref: CrsRef) -> bool:
    """Whether the CRS's authority axis order puts north first (EPSG:4326, 4490 lat/lon; Gauss-Krüger zones N/E).

    OGC API Features Part 2 requires coordinates in the CRS's own axis order for ``crs``,
    ``bbox-crs`` and ``filter-crs`` (CRS84 and EPSG:3857 are east first).
    """
    if ref.kind != "epsg" or ref.epsg is None:
        return False
    axes = proj_crs(ref.epsg).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def srid_of(ref: CrsRef) -> int:
    """The PostGIS SRID for a supported CRS; CRS84 is lon/lat WGS84."""
    return 4326 if ref.kind == "crs84" else int(ref.epsg or 4326)


def storage_geom(geom: sql.Composable, ref: CrsRef) -> sql.Composable:
    """An expression giving ``geom`` (a geometry in ``ref``'s axis order) in EPSG:4490 lon/lat."""
    srid = srid_of(ref)
    if axis_swapped(ref):
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    if srid in GEOGRAPHIC_SRIDS:
        # CGCS2000 and WGS84 are the same to centimetres; PROJ only has a ballpark (identity) step.
        return sql.SQL("ST_SetSRID({}, 4490)").format(geom)
    return sql.SQL("ST_Transform(ST_SetSRID({}, {}), 4490)").format(geom, sql.Literal(srid))


def geometry_sql(crs: CrsRef, column: sql.Composable | None = None) -> tuple[sql.Composable, int]:
    """The output geometry expression for ``crs`` with its axis order, and the decimals to keep.

    Degrees keep 7 decimals (about 1 cm), metres 3 (1 mm).
    """
    column = column if column is not None else col("geom")
    srid = srid_of(crs)
    expr: sql.Composable = column
    if srid not in GEOGRAPHIC_SRIDS:
        expr = sql.SQL("ST_Transform({}, {})").format(column, sql.Literal(srid))
    if axis_swapped(crs):
        expr = sql.SQL("ST_FlipCoordinates({})").format(expr)
    return expr, 7 if srid in GEOGRAPHIC_SRIDS else 3
