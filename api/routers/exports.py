"""Downloads: ``/collections/{id}/items?f=gpkg|shp|csv|xlsx|kml`` (and ``geojson`` as a file).

Registers the exporter's formats with the OGC items endpoint (:mod:`api.ogc.formats`), which
validates every items parameter (bbox, datetime, CQL2 ``filter``, property equality, sortby,
limit, crs) into a :class:`layers.query.FeatureQuery`; the export selects with the same
``where_clause`` and ``order_by``, so a download holds exactly the features the items page
would list. Without ``crs`` the files are in CGCS2000 (EPSG:4490); KML is always longitude/latitude.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.ogc.formats import EXPORT_ALL, register_items_format
from gis.crs import STORAGE
from gis.io import EXPORT_FORMATS, ExportFormat
from layers.exporter import DEFAULT_CRS, build_file, select_sql
from layers.query import Binder, order_by, where_clause

ORDER = 61


def _handler(fmt: ExportFormat) -> Any:
    async def handler(request: Request, layer: Any, query: Any, pool: Any, settings: Any) -> Response:
        binder = Binder()
        where = where_clause(query, binder)
        crs = query.crs if "crs" in request.query_params else DEFAULT_CRS.get(fmt.name, STORAGE)
        limit = None if query.limit >= EXPORT_ALL else int(query.limit)
        stmt = select_sql(layer, where, crs, order=order_by(query), limit=limit)
        async with pool.connection() as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(stmt, binder.params)
            rows = await cur.fetchall()
        data = await run_in_threadpool(build_file, layer, rows, fmt, crs)
        filename = f"{layer.id}{fmt.extension}"
        return Response(
            data,
            media_type=fmt.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Feature-Count": str(len(rows)),
            },
        )

    return handler


for _fmt in EXPORT_FORMATS.values():
    register_items_format(_fmt.name, _fmt.media_type.split(";")[0], _handler(_fmt), title=_fmt.label)
