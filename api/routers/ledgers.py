"""XLSX ledgers (台账) over HTTP, as ``renewal ledger target|layer`` writes them.

* ``GET /progress/{target}/ledger``: a target's ledger: the summary by district (quota,
  actual, percent, status) and, per district, the features that count or are listed.
* ``GET /collections/{id}/ledger``: a layer's ledger: every feature that exists on the date
  with its attributes and status as of the date, one sheet per district.

Both count approved changes only; ``include_pending=true`` (signed in) counts pending
submissions too, by the one switch of ``/progress`` and the maps (:mod:`api.pending`), and
every sheet then says so (【含待审核】 and the notice under the title).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import ReadableLayer, ReadAccessDep
from api.deps import PoolDep
from api.params import AsOf
from api.pending import IncludePending, counted_picture, pending_notice
from layers.export import writer_for
from layers.ledger import alayer_ledger_xlsx, atarget_ledger_xlsx
from layers.progress import parse_as_of, select_targets

ORDER = 42
router = APIRouter(tags=["ledgers"])

XLSX: Final = writer_for("xlsx").media_type


def _download(body: bytes, name: str, pending: int | None) -> Response:
    suffix = "-with-pending" if pending is not None else ""
    disposition = f'attachment; filename="{name}{suffix}.xlsx"'
    return Response(body, media_type=XLSX, headers={"Content-Disposition": disposition})


@router.get("/progress/{target}/ledger", response_class=Response,
            summary="A target's ledger (台账) as XLSX: each district's share and the features that count",
            responses={200: {"content": {XLSX: {}}}})
async def target_ledger(
    request: Request, target: str, pool: PoolDep, access: ReadAccessDep, as_of: AsOf = None,
    include_pending: IncludePending = False,
) -> Response:
    """The ledger lists the features of the target's layer, so that layer must be readable."""
    chosen = select_targets(target=target)[0]
    access.layer(chosen.layer)
    date = parse_as_of(as_of)
    async with pool.connection() as conn, counted_picture(request, conn, include_pending, [chosen.layer]) as pending:
        body = await atarget_ledger_xlsx(conn, chosen, date, pending_notice=pending_notice(pending))
    return _download(body, f"ledger-{chosen.id}-{date.isoformat()}", pending)


@router.get("/collections/{collection_id}/ledger", response_class=Response,
            summary="A layer's ledger (台账) as XLSX: every feature with its status as of the date, per district",
            responses={200: {"content": {XLSX: {}}}})
async def layer_ledger(
    request: Request, layer: ReadableLayer, pool: PoolDep, as_of: AsOf = None,
    include_pending: IncludePending = False,
) -> Response:
    """Features that exist on the date (status as of the date), one sheet per district."""
    date = parse_as_of(as_of)
    async with pool.connection() as conn, counted_picture(request, conn, include_pending, [layer.id]) as pending:
        body = await alayer_ledger_xlsx(conn, layer, date, pending_notice=pending_notice(pending))
    return _download(body, f"ledger-{layer.id}-{date.isoformat()}", pending)
