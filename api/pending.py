"""The ``include_pending`` switch of progress, the folium maps and the ledgers, in one place.

By default every output counts approved changes only. ``include_pending=true`` (signed-in
callers only: it shows unreviewed data) reads the layers as if every pending submission were
approved (:func:`layers.submissions.counted_changes`) and the output says so
(:data:`layers.submissions.PENDING_NOTICE`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Query, Request
from psycopg import AsyncConnection

from api.auth import require_authenticated
from layers.submissions import PENDING_NOTICE, counted_changes

__all__ = ["PENDING_NOTICE", "IncludePending", "counted_picture", "pending_notice"]

IncludePending = Annotated[bool, Query(description="Also count pending submissions (signed-in callers; marked "
                                                  "in the answer). Default: approved changes only.")]


@asynccontextmanager
async def counted_picture(request: Request, conn: AsyncConnection[Any], include_pending: bool,
                          layers: Collection[str] | None = None) -> AsyncIterator[int | None]:
    """:func:`layers.submissions.counted_changes` for a request: 401 for anonymous callers asking for pending.

    Yields None (approved only) or the number of pending submissions applied; keep the block
    to the reads of one answer (the preview is a rolled-back write transaction), and name the
    ``layers`` it reads when that is fewer than all.
    """
    if include_pending:
        require_authenticated(request)  # a preview of unreviewed data
    async with counted_changes(conn, request.app.state.registry, include_pending, layers) as applied:
        yield applied


def pending_notice(applied: int | None) -> str | None:
    """What an output counting pending submissions says (None: approved changes only, nothing to say)."""
    return None if applied is None else f"{PENDING_NOTICE}（{applied} 项待审核填报 pending submissions applied）"
