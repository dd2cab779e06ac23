"""Folium maps as HTML pages: ``/maps/progress`` and ``/maps/{layer}``.

They load Leaflet and folium's other libraries from ``/vendor/`` (this app), so they render
with no internet; ``basemap`` adds an online basemap as an option.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.access import ReadableLayer, ReadAccessDep
from api.deps import PoolDep, SettingsDep
from api.params import AsOf
from api.pending import IncludePending, counted_picture, pending_notice
from gis.errors import InvalidInputError
from layers.errors import UnknownStatusError
from layers.maps import BASEMAPS, layer_map, progress_map, render
from layers.plan import get_catalog, get_target
from layers.progress import parse_as_of

ORDER = 41
router = APIRouter(tags=["maps"])

Basemap = Annotated[str, Query(description=f"Basemap: {', '.join(BASEMAPS)} (default none: offline)")]


def _basemap(value: str) -> str:
    if value not in BASEMAPS:
        raise InvalidInputError(f"basemap must be one of {', '.join(BASEMAPS)}; got {value!r}.")
    return value


@router.get("/maps/progress", response_class=HTMLResponse, summary="Progress map as of a date (one target or all)")
async def map_progress(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    access: ReadAccessDep,
    as_of: AsOf = None,
    target: Annotated[str | None, Query(description="Target id (default: the whole plan)")] = None,
    basemap: Basemap = "none",
    include_pending: IncludePending = False,
) -> HTMLResponse:
    """District choropleth of percent complete plus the target layers coloured by status.

    The map draws the features of the target layers (one target's, or every target's), so each
    of them must be readable by the caller.
    """
    drawn = {get_target(target).layer} if target else {t.layer for t in get_catalog().targets}
    for layer_id in sorted(drawn):
        access.layer(layer_id)
    date = parse_as_of(as_of)
    async with pool.connection() as conn, counted_picture(request, conn, include_pending) as pending:
        m = await progress_map(conn, date, target, basemap=_basemap(basemap), tianditu_key=settings.tianditu_key,
                               pending_notice=pending_notice(pending))
    return HTMLResponse(render(m))


@router.get("/maps/{collection_id}", response_class=HTMLResponse, summary="One layer coloured by status")
async def map_layer(
    request: Request,
    layer: ReadableLayer,
    pool: PoolDep,
    settings: SettingsDep,
    as_of: AsOf = None,
    status: Annotated[list[str] | None, Query(description="Only these statuses (repeat or comma-separate)")] = None,
    basemap: Basemap = "none",
    include_pending: IncludePending = False,
) -> HTMLResponse:
    """The layer's features with their status as of the date."""
    date = parse_as_of(as_of)
    statuses = [s.strip() for v in (status or []) for s in v.split(",") if s.strip()]
    if statuses:
        if layer.lifecycle is None:
            raise InvalidInputError(f"Layer '{layer.id}' has no status to filter on.")
        labels = layer.lifecycle.by_label()
        resolved = []
        for s in statuses:
            code = labels.get(s.lower())
            if code is None:
                raise UnknownStatusError(layer.id, s, layer.lifecycle.codes)
            resolved.append(code)
        statuses = resolved
    async with pool.connection() as conn, counted_picture(request, conn, include_pending, [layer.id]) as pending:
        m = await layer_map(conn, layer, date, statuses or None, basemap=_basemap(basemap),
                            tianditu_key=settings.tianditu_key, pending_notice=pending_notice(pending))
    return HTMLResponse(render(m))
