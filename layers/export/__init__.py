"""Export a layer (or the features matching a query) to GIS files and ledgers.

Every format is one module here holding a :class:`~layers.export.base.Writer` (name, file
extensions, media type, CRS rules, write function), listed once in :data:`WRITERS`: to add a
format, write its module and add it to that tuple. The items endpoint (``?f=<name>``) and
``renewal export`` offer whatever is registered.

Formats: GeoPackage, zipped Shapefile with ``.cpg`` (UTF-8, or GBK for old desktop software),
GeoJSON, CSV (UTF-8 with BOM, so Excel shows Chinese), XLSX (Chinese headers from the registry
labels, status as its Chinese label, areas in mu), KML. Output CRS: any EPSG code PROJ knows,
CRS84, or GCJ-02/BD-09 for overlays on Gaode/Baidu maps.

Everything an import reads back is written (code, name, district, status, attributes, the
computed area/length for reference), so export → import gives the same features.

The exporter takes an already-parsed :class:`layers.query.FeatureQuery` (its filters, sort order
and limit), so a download holds exactly the features the items page would list.

Adding a format
---------------
1. Write ``layers/export/<name>.py`` with ``def write(job: ExportJob, out: Path) -> None``: it writes
   ``job.frame`` (the attributes, in registry types; :func:`~layers.export.base.ledger` makes the
   Chinese-headed ledger table) and ``job.geoms`` (shapely, already in ``job.crs``) to ``out``; then
   ``WRITER = Writer("<name>", (".<ext>",), "<media type>", "<label>", write)``, with
   ``default_crs=``, ``geographic_only=`` or ``takes_encoding=`` when the format needs them.
2. Add ``<name>.WRITER`` to :data:`WRITERS` below.

``renewal export <layer> out.<ext>``, ``/collections/{id}/items?f=<name>`` and the collection's
download links follow from the registry.

Public API
----------
WRITERS, writer_for(name_or_path) -> Writer
    The registry, and the writer for ``gpkg``/``shp``/... or an output file name.
select_sql(query, crs=STORAGE) -> tuple[sql.Composed, dict]
    The ``SELECT`` of the exported columns and the geometry as WKB for the query's features.
build_file(layer, rows, fmt, crs, encoding=None) -> bytes
    Turn fetched rows into the file's bytes (runs GDAL/openpyxl; call it in a worker thread from async code).
export_features(conn, query, fmt, *, crs=None, encoding=None) -> tuple[bytes, int]
    Both, on a synchronous connection.
whole_layer(layer, flt=None) -> FeatureQuery
    A query for every feature (or every match of a filter): ``limit`` is :data:`EXPORT_ALL`.
export_to_path(conninfo, query, out, *, crs=None, encoding=None) -> int
    The ``renewal export`` command: format from the file extension, feature count returned.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import psycopg
from psycopg import sql

from gis.crs import STORAGE, CrsRef, parse_crs, transform_geometry
from gis.errors import CRSError, InvalidInputError
from layers.export import csv, geojson, gpkg, kml, shp, xlsx
from layers.export.base import ExportJob, Writer, export_columns, frame_of
from layers.models import Layer
from layers.query import NO_LIMIT, FeatureQuery, Filter, build_where, order_by
from layers.registry import get_registry

__all__ = [
    "EXPORT_ALL",
    "WRITERS",
    "ExportJob",
    "Writer",
    "build_file",
    "default_crs",
    "export_columns",
    "export_features",
    "export_to_path",
    "select_sql",
    "whole_layer",
    "writer_for",
]

WRITERS: Final[dict[str, Writer]] = {w.name: w for w in (
    gpkg.WRITER, shp.WRITER, geojson.WRITER, csv.WRITER, xlsx.WRITER, kml.WRITER,
)}
"""Every export format by short name: the one place a format is registered."""

EXPORT_ALL: Final = NO_LIMIT
"""A query ``limit`` at or above this means "every match" (no LIMIT in the export statement)."""


def writer_for(name_or_path: str | Writer) -> Writer:
    """The writer for ``gpkg``/``shp``/... or for an output file name (by its extension)."""
    if isinstance(name_or_path, Writer):
        return name_or_path
    key = name_or_path.lower().lstrip(".")
    if key in WRITERS:
        return WRITERS[key]
    suffix = Path(name_or_path).suffix.lower()
    for w in WRITERS.values():
        if suffix in w.extensions:
            return w
    raise InvalidInputError(
        f"Cannot export to '{name_or_path}': use one of {', '.join(WRITERS)} ("
        + ", ".join(w.extension + (" for " + w.label if w.extension == ".zip" else "") for w in WRITERS.values())
        + ")."
    )


def default_crs(fmt: Writer | str) -> CrsRef:
    """The CRS of an export when none is asked for: the format's own, else CGCS2000 (EPSG:4490)."""
    w = writer_for(fmt)
    return w.default_crs if w.default_crs is not None else STORAGE


def _srid(crs: CrsRef) -> int:
    if crs.kind == "epsg":
        assert crs.epsg is not None
        return crs.epsg
    return 4326 if crs.kind == "crs84" else STORAGE.epsg or 4490


def select_sql(q: FeatureQuery, crs: CrsRef = STORAGE) -> tuple[sql.Composed, dict[str, Any]]:
    """``SELECT <columns>, ST_AsBinary(geom in crs) FROM <table> AS t WHERE <query> ORDER BY <query> [LIMIT]``.

    The condition and order are the query's (:func:`layers.query.build_where`, ``order_by``);
    ``q.limit`` applies unless it is :data:`EXPORT_ALL`; ``q.offset`` skips as on the items page.
    GCJ-02/BD-09 cannot be computed by PostGIS; for them the geometry stays in EPSG:4490 and
    :func:`build_file` shifts it.
    """
    layer = q.layer
    where = build_where(q)
    srid = _srid(crs)
    geom = (
        sql.SQL("t.geom")
        if srid in (4490, 4326) or crs.is_offset_datum
        else sql.SQL("ST_Transform(t.geom, {})").format(sql.Literal(srid))
    )
    cols = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in export_columns(layer))
    limit = None if q.limit >= EXPORT_ALL else int(q.limit)
    stmt = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {} AS t WHERE {} ORDER BY {}{}").format(
        cols,
        geom,
        sql.Identifier(layer.schema_name, layer.table),
        where.cond,
        order_by(q),
        sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit is not None else sql.SQL(""),
    )
    if q.offset:
        stmt = sql.SQL("{} OFFSET {}").format(stmt, sql.Literal(int(q.offset)))
    return stmt, dict(where.params)


def build_file(
    layer: Layer, rows: Sequence[Sequence[Any]], fmt: Writer | str, crs: CrsRef, encoding: str | None = None
) -> bytes:
    """The bytes of an export file built from rows fetched with :func:`select_sql`."""
    w = writer_for(fmt)
    if w.geographic_only and crs.kind == "epsg" and crs.epsg not in (4326, 4490):
        raise CRSError(
            f"{w.label} is always longitude/latitude; export it in CRS84, EPSG:4490 or GCJ02, not {crs.label}."
        )
    if encoding and not w.takes_encoding:
        raise InvalidInputError(
            f"--encoding applies to {' and '.join(x.label for x in WRITERS.values() if x.takes_encoding)} exports "
            f"only, not {w.label}."
        )
    frame, geoms = frame_of(layer, rows)
    if crs.is_offset_datum and len(geoms):
        geoms = np.asarray(transform_geometry(geoms, STORAGE, crs), dtype=object)
    with tempfile.TemporaryDirectory(prefix="renewal-export-") as tmp:
        out = Path(tmp) / f"{layer.id}{w.extension}"
        w.write(ExportJob(layer, frame, geoms, crs, encoding), out)
        return out.read_bytes()


def whole_layer(layer: Layer | str, flt: Filter | None = None) -> FeatureQuery:
    """A query for every feature of a layer (or every match of a parsed CQL2 filter), for the CLI and notebooks.

    A :class:`FeatureQuery` built by hand has a page-sized ``limit`` (100); an export of a whole
    layer wants :data:`EXPORT_ALL`, which this sets.
    """
    lyr = layer if isinstance(layer, Layer) else get_registry().get(layer)
    return FeatureQuery(layer=lyr, filter=flt, limit=EXPORT_ALL)


def export_features(
    conn: psycopg.Connection[Any],
    q: FeatureQuery,
    fmt: Writer | str,
    *,
    crs: CrsRef | str | None = None,
    encoding: str | None = None,
) -> tuple[bytes, int]:
    """Export the features of query ``q``; return (file bytes, feature count)."""
    w = writer_for(fmt)
    ref = parse_crs(crs) if isinstance(crs, str) else (crs or default_crs(w))
    stmt, params = select_sql(q, ref)
    with conn.cursor(binary=True) as cur:
        cur.execute(stmt, params)
        rows = cur.fetchall()
    return build_file(q.layer, rows, w, ref, encoding), len(rows)


def export_to_path(
    conninfo: str,
    query: FeatureQuery | str,
    out: Path,
    *,
    crs: CrsRef | str | None = None,
    encoding: str | None = None,
) -> int:
    """Write ``out`` (format from its extension) with the query's features; a layer id means the whole layer.

    ``query.limit`` applies (see :func:`whole_layer` for a query without one).
    """
    q = query if isinstance(query, FeatureQuery) else whole_layer(query)
    w = writer_for(out.name)
    with psycopg.connect(conninfo) as conn:
        data, count = export_features(conn, q, w, crs=crs, encoding=encoding)
    out.write_bytes(data)
    return count
