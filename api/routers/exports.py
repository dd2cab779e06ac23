"""Downloads: ``/collections/{id}/items?f=gpkg|shp|csv|xlsx|kml`` (and ``geojson`` as a file).

Registers every writer of :data:`layers.export.WRITERS` with the OGC items endpoint
(:mod:`api.ogc.formats`). The endpoint's parameters (bbox, datetime, CQL2 ``filter``, property
equality, sortby, limit, crs) are parsed by :func:`api.params.items_request` into a
:class:`layers.query.FeatureQuery`; the export selects with that query's condition and order, so a
download holds exactly the features the items page would list. Without ``crs`` the files are in
the format's default CRS (CGCS2000, EPSG:4490, except GeoJSON and KML: CRS84).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.ogc.formats import register_items_format
from layers.export import WRITERS, Writer, build_file, default_crs, select_sql
from layers.query import FeatureQuery

ORDER = 61


def _handler(writer: Writer) -> Any:
    async def handler(request: Request, layer: Any, query: FeatureQuery, pool: Any, settings: Any) -> Response:
        crs = query.crs if query.crs is not None else default_crs(writer)
        stmt, params = select_sql(query, crs)
        async with pool.connection() as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(stmt, params)
            rows = await cur.fetchall()
        data = await run_in_threadpool(build_file, layer, rows, writer, crs)
        filename = f"{layer.id}{writer.extension}"
        return Response(
            data,
            media_type=writer.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Feature-Count": str(len(rows)),
            },
        )

    return handler


for _writer in WRITERS.values():
    register_items_format(_writer.name, _writer.media_type.split(";")[0], _handler(_writer), title=_writer.label)
