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
   A format that can be written batch by batch gives ``write_batches=`` instead (a
   :class:`~layers.export.base.BatchJob`: record batches with WKB geometry; GeoPackage and GeoJSON
   hand them to GDAL's columnar writer, CSV makes each a ledger with :func:`~layers.export.base.frame_of_batch`):
   ``renewal export`` and the API's ``?f=<name>`` download then stream the rows from the database
   into the file in batches (:func:`stream_to_file`).
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
export_to_path(conninfo, query, out, *, crs=None, encoding=None, batch_rows=BATCH_ROWS) -> int
    The ``renewal export`` command: format from the file extension, feature count returned.
    A ``write_batches`` format (GeoPackage, GeoJSON, CSV) is streamed ``batch_rows`` rows at a time.
stream_to_file(conn, query, fmt, out, *, crs=None, encoding=None, batch_rows=BATCH_ROWS) -> int
    The streaming core of both ``renewal export`` and the API's ``?f=gpkg|geojson|csv`` downloads: a
    ``write_batches`` format written into ``out`` from a server-side cursor on ``conn``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from gis.crs import STORAGE, CrsRef, parse_crs, transform_geometry
from gis.errors import CRSError, InvalidInputError
from layers.export import csv, geojson, gpkg, kml, shp, xlsx
from layers.export.base import (
    BatchJob,
    ExportJob,
    Writer,
    arrow_schema,
    export_columns,
    frame_of,
    record_batch,
    shifted,
)
from layers.models import Layer
from layers.query import NO_LIMIT, FeatureQuery, Filter, build_where, order_by
from layers.registry import get_registry

__all__ = [
    "BATCH_ROWS",
    "EXPORT_ALL",
    "BatchJob",
    "WRITERS",
    "ExportJob",
    "Writer",
    "build_file",
    "default_crs",
    "export_columns",
    "export_features",
    "export_to_path",
    "select_sql",
    "stream_to_file",
    "whole_layer",
    "writer_for",
]

WRITERS: Final[dict[str, Writer]] = {w.name: w for w in (
    gpkg.WRITER, shp.WRITER, geojson.WRITER, csv.WRITER, xlsx.WRITER, kml.WRITER,
)}
"""Every export format by short name: the one place a format is registered."""

EXPORT_ALL: Final = NO_LIMIT
"""A query ``limit`` at or above this means "every match" (no LIMIT in the export statement)."""

BATCH_ROWS: Final = 50_000
"""Rows per database fetch and Arrow batch when a file is streamed: a few tens of MB in memory at once."""


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
    _check(w, crs, encoding)
    with tempfile.TemporaryDirectory(prefix="renewal-export-") as tmp:
        out = Path(tmp) / f"{layer.id}{w.extension}"
        if w.write_batches is not None:
            schema = arrow_schema(layer)
            batch = record_batch(schema, rows)
            batches = [shifted(batch, crs) if crs.is_offset_datum else batch]
            w.write_batches(BatchJob(layer, schema, batches, crs, encoding), out)
        else:
            assert w.write is not None
            frame, geoms = frame_of(layer, rows)
            if crs.is_offset_datum and len(geoms):
                geoms = np.asarray(transform_geometry(geoms, STORAGE, crs), dtype=object)
            w.write(ExportJob(layer, frame, geoms, crs, encoding), out)
        return out.read_bytes()


def _check(w: Writer, crs: CrsRef, encoding: str | None) -> None:
    """Refuse a CRS the format cannot hold and an encoding it does not take."""
    if w.geographic_only and crs.kind == "epsg" and crs.epsg not in (4326, 4490):
        raise CRSError(
            f"{w.label} is always longitude/latitude; export it in CRS84, EPSG:4490 or GCJ02, not {crs.label}."
        )
    if encoding and not w.takes_encoding:
        raise InvalidInputError(
            f"--encoding applies to {' and '.join(x.label for x in WRITERS.values() if x.takes_encoding)} exports "
            f"only, not {w.label}."
        )


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
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Write ``out`` (format from its extension) with the query's features; a layer id means the whole layer.

    ``query.limit`` applies (see :func:`whole_layer` for a query without one). A format with
    ``write_batches`` (GeoPackage, GeoJSON, CSV) is streamed: a server-side cursor fetches ``batch_rows`` rows at
    a time in a second thread while GDAL writes the previous batch, into a temporary file beside
    ``out`` that replaces it once complete (as the in-memory formats leave ``out`` untouched on failure).
    """
    q = query if isinstance(query, FeatureQuery) else whole_layer(query)
    w = writer_for(out.name)
    if w.write_batches is None:
        with psycopg.connect(conninfo) as conn:
            data, count = export_features(conn, q, w, crs=crs, encoding=encoding)
        out.write_bytes(data)
        return count
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=w.extension, dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with psycopg.connect(conninfo) as conn:
            count = stream_to_file(conn, q, w, tmp, crs=crs, encoding=encoding, batch_rows=batch_rows)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def stream_to_file(
    conn: psycopg.Connection[Any],
    q: FeatureQuery,
    fmt: Writer | str,
    out: Path,
    *,
    crs: CrsRef | str | None = None,
    encoding: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Write ``out`` in a streamed format (GeoPackage, GeoJSON, CSV) from the query's features; return their count.

    The one streaming path, shared by ``renewal export`` and the API download so both hold at
    most a few batches in memory whatever the layer's size: a server-side cursor on ``conn``
    (in a transaction of its own, so an autocommit connection such as the API's works too)
    fetches ``batch_rows`` rows at a time in a second thread while GDAL writes the previous
    batch. ``out`` is overwritten; on failure it is left partial (callers write to a temporary file).
    """
    w = writer_for(fmt)
    if w.write_batches is None:
        raise ValueError(f"{w.label} is not a streamed format; use export_features.")
    ref = parse_crs(crs) if isinstance(crs, str) else (crs or default_crs(w))
    _check(w, ref, encoding)
    schema = arrow_schema(q.layer)
    with _Prefetch(_fetch_batches(conn, q, ref, schema, batch_rows)) as batches:
        w.write_batches(BatchJob(q.layer, schema, batches, ref, encoding), out)
    return batches.rows


def _fetch_batches(
    conn: psycopg.Connection[Any], q: FeatureQuery, crs: CrsRef, schema: pa.Schema, batch_rows: int
) -> Generator[pa.RecordBatch]:
    """The query's features as record batches of ``batch_rows``, fetched with a server-side (named) cursor."""
    stmt, params = select_sql(q, crs)
    # a cursor without HOLD lives in a transaction: begun here when the connection is in autocommit
    with conn.transaction(), conn.cursor(name="renewal_export", binary=True) as cur:
        cur.execute(stmt, params)
        while rows := cur.fetchmany(batch_rows):
            batch = record_batch(schema, rows)
            yield shifted(batch, crs) if crs.is_offset_datum else batch


_END: Final = object()


class _Prefetch:
    """Iterate ``batches`` one step ahead in a thread, so fetching and writing overlap.

    The database round trips and Arrow building of the next batch run while GDAL writes this one
    (GDAL, libpq and Arrow release the GIL): a 1M-parcel GeoPackage takes about the time of the
    slower side instead of the sum. At most ``depth`` batches wait in memory. Leaving the ``with``
    block (done, or GDAL failed) stops the thread and closes ``batches`` before the connection closes.
    """

    def __init__(self, batches: Generator[pa.RecordBatch], depth: int = 2) -> None:
        self._batches = batches
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="export-fetch", daemon=True)
        self._error: BaseException | None = None
        self.rows = 0
        """Rows handed to the writer so far."""

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def _produce(self) -> None:
        with contextlib.closing(self._batches):
            try:
                for batch in self._batches:
                    if not self._put(batch):
                        return
            except BaseException as exc:  # handed to the writer's thread, raised there
                self._put(exc)
                return
        self._put(_END)

    def __enter__(self) -> _Prefetch:
        self._thread.start()
        return self

    def __iter__(self) -> _Prefetch:
        return self

    def __next__(self) -> pa.RecordBatch:
        item = self._queue.get()
        if item is _END or isinstance(item, BaseException):
            self._queue.put(item)  # the producer is done: a further read gets the same end or error
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            self._error = item
            raise item
        assert isinstance(item, pa.RecordBatch)
        self.rows += item.num_rows
        return item

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        if exc is not None and self._error is not None and exc is not self._error:
            # GDAL read the batches through Arrow's C stream and reports a fetch error as its own
            # ("error in stream"): the database's error is the one that says what went wrong.
            raise self._error
