"""Downloads: ``/collections/{id}/items?f=gpkg|shp|csv|xlsx|kml`` (and ``geojson`` as a file).

Registers every writer of :data:`layers.export.WRITERS` with the OGC items endpoint
(:mod:`api.ogc.formats`). The endpoint's parameters (bbox, datetime, CQL2 ``filter``, property
equality, sortby, limit, crs) are parsed by :func:`api.params.items_request` into a
:class:`layers.query.FeatureQuery`; the export selects with that query's condition and order, so a
download holds exactly the features the items page would list. Without ``crs`` the files are in
the format's default CRS (CGCS2000, EPSG:4490, except GeoJSON and KML: CRS84).

A streamed format (``write_batches``: GeoPackage, GeoJSON, CSV) goes through :func:`layers.export.stream_to_file`,
the same path as ``renewal export``: a worker thread with its own synchronous connection (to the
database the read pool would pick) writes a temporary file batch by batch, so a million parcels
never sit in the server's memory; the response then streams that file, which is already unlinked
from disk (its open handle keeps it readable), so nothing stays behind even if the client hangs up.
The other formats are built in memory from rows fetched on the read pool. Both kinds take a slot of
:func:`_export_slot` first, so a burst of whole-layer downloads cannot hold more than
``RENEWAL_EXPORT_CONCURRENCY`` connections, temporary files or in-memory tables per worker at once.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.db import connect_sync
from api.ogc.formats import register_items_format
from api.settings import Settings
from gis.crs import CrsRef
from layers.export import BATCH_ROWS, WRITERS, Writer, build_file, default_crs, select_sql, stream_to_file
from layers.query import FeatureQuery

ORDER = 61

STREAM_BATCH_ROWS: Final = BATCH_ROWS
"""Rows per fetch of a streamed download (the CLI's batch: a few tens of MB in memory at once)."""

CHUNK_BYTES: Final = 1 << 20
"""Bytes per read of the finished file while it is sent."""


def _write_temp(settings: Settings, url: str, query: FeatureQuery, writer: Writer, crs: CrsRef) -> tuple[BinaryIO, int]:
    """Stream the query's features into a temporary file; return it opened (already unlinked) and the count."""
    fd, name = tempfile.mkstemp(prefix="renewal-export-", suffix=writer.extension)
    os.close(fd)
    path = Path(name)
    try:
        with connect_sync(settings, url, application_name="renewal-api-export") as conn:
            count = stream_to_file(conn, query, writer, path, crs=crs, batch_rows=STREAM_BATCH_ROWS)
        f = path.open("rb")
    finally:
        path.unlink(missing_ok=True)  # an open handle keeps the data until it is closed
    return f, count


def _export_slot(request: Request, settings: Settings) -> asyncio.Semaphore:
    """The worker's limit of downloads written at once (``RENEWAL_EXPORT_CONCURRENCY``), streamed or in memory.

    Why: a streamed one holds a database connection outside the pool and writes a temporary file; one
    built in memory holds every row of its result (a million parcels as CSV: gigabytes). Without a
    limit a burst of downloads could use up the server's connections, disk or memory.
    """
    slots: asyncio.Semaphore | None = getattr(request.app.state, "export_slots", None)
    if slots is None:
        slots = asyncio.Semaphore(settings.export_concurrency)
        request.app.state.export_slots = slots
    return slots


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def _handler(writer: Writer) -> Any:
    def headers(layer: Any, count: int) -> dict[str, str]:
        return {
            "Content-Disposition": f'attachment; filename="{layer.id}{writer.extension}"',
            "X-Feature-Count": str(count),
        }

    async def streamed(request: Request, layer: Any, query: FeatureQuery, pool: Any, settings: Any) -> Response:
        crs = query.crs if query.crs is not None else default_crs(writer)
        async with _export_slot(request, settings):
            with pool.sync_url() as url:
                f, count = await run_in_threadpool(_write_temp, settings, url, query, writer, crs)
        size = os.fstat(f.fileno()).st_size
        return StreamingResponse(
            _chunks(f), media_type=writer.media_type,
            headers={**headers(layer, count), "Content-Length": str(size)},
        )

    async def in_memory(request: Request, layer: Any, query: FeatureQuery, pool: Any, settings: Any) -> Response:
        crs = query.crs if query.crs is not None else default_crs(writer)
        stmt, params = select_sql(query, crs)
        async with _export_slot(request, settings):
            async with pool.connection() as conn:
                cur = conn.cursor(binary=True)
                await cur.execute(stmt, params)
                rows = await cur.fetchall()
            data = await run_in_threadpool(build_file, layer, rows, writer, crs)
        return Response(data, media_type=writer.media_type, headers=headers(layer, len(rows)))

    return streamed if writer.write_batches is not None else in_memory


for _writer in WRITERS.values():
    register_items_format(_writer.name, _writer.media_type.split(";")[0], _handler(_writer), title=_writer.label)
