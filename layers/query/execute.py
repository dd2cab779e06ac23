"""Running a feature query: the page (and a count when cheap), one feature, the plan-shape decisions.

Hot-path statements run through :func:`fetch_one_serial` (no parallel workers, custom plans).
The request's WHERE condition is built once (:func:`~layers.query.builder.build_where`) and used
by the planner estimate, the page and the count.

Public API
----------
fetch_page(conn, query, *, count=True) -> Page
    The page, ``numberMatched`` (or None) and the next/prev cursors.
fetch_feature(conn, layer, feature_id, crs=CRS84) -> str
    One feature's GeoJSON text, or :class:`FeatureNotFoundError` (404).
fetch_feature_tagged(conn, layer, feature_id, crs=CRS84) -> (str, str)
    The same and the feature's ETag, in the same statement.
refresh_estimates(conn, layers) -> int
    Every layer table's row estimate and the large layers' density grids, off the request path.
fetch_one_serial(conn, stmt, params) -> row
    Run a hot-path statement the way every hot path runs (tiles use it too).
choose_filter_first(conn, query, where=None) -> bool
    Whether to collect the matches and sort them instead of walking the primary key.

Notes
-----
* ``numberMatched`` is exact and counted only when the table is small (estimated rows at or
  below :data:`COUNT_MAX_ROWS`); otherwise it is omitted (the standard allows that) so no page
  of a million-row layer pays for a ``count(*)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from psycopg import AsyncConnection, sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from gis.crs import CRS84, CrsRef
from layers.models import Layer
from layers.query.builder import Where, build_where, one_feature_sql
from layers.query.common import (
    GEOGRAPHIC_SRIDS,
    Binder,
    FeatureNotFoundError,
    parse_feature_id,
    srid_of,
    table_sql,
)
from layers.query.density import GRID_TTL_S, estimate_bbox_rows, refresh_grid
from layers.query.model import FeatureQuery
from layers.query.paging import Page, page_sql, read_page

__all__ = [
    "COUNT_MAX_ROWS",
    "ESTIMATE_TTL_S",
    "FILTER_FIRST_MAX_ROWS",
    "SERIAL_OPTIONS",
    "choose_filter_first",
    "fetch_feature",
    "fetch_feature_tagged",
    "fetch_one_serial",
    "fetch_page",
    "refresh_estimates",
]

COUNT_MAX_ROWS: Final = 100_000
"""Count ``numberMatched`` exactly only for tables with at most this many (estimated) rows."""
FILTER_FIRST_MAX_ROWS: Final = 100_000
"""Collect-then-sort when the planner expects at most this many matches (see :func:`layers.query.builder.order_by`)."""

_SERIAL: Final = sql.SQL("SET LOCAL max_parallel_workers_per_gather = 0")
SERIAL_OPTIONS: Final = "-c max_parallel_workers_per_gather=0"
"""libpq ``options`` that make a whole connection serial; the API's pools open their connections with them."""
_SERIAL_MARK: Final = SERIAL_OPTIONS.removeprefix("-c ").encode()


class _Utf8Bytes(Loader):
    """Text loaded as the UTF-8 bytes the server sent: a page's GeoJSON goes to the client unchanged.

    Decoding a 600 KB page to ``str``, joining it and encoding it back cost about 5 ms per
    1,000-feature page; bytes are joined with one copy.
    """

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


async def fetch_one_serial(conn: AsyncConnection[Any], stmt: sql.Composed | sql.SQL, params: Mapping[str, Any],
                           *, text_as_bytes: bool = False, prepare: bool = False) -> Any:
    """Run a hot-path statement without parallel workers or a cached generic plan; return its first row.

    Why: launching parallel workers costs 20-50 ms per query (far more than a 100-row page or a
    tile needs, and a concurrent server has no idle cores to give them), and psycopg prepares a
    statement after five executions, after which PostgreSQL may switch to a *generic* plan that
    ignores the bbox (measured: 3-5 s instead of 30 ms for a large-bbox page). ``prepare=False``
    keeps custom plans (planning costs about 1 ms). When the connection is idle in autocommit,
    ``SET LOCAL`` runs in a pipelined transaction (one round trip); inside a caller's transaction the
    statement just runs as is. A connection opened with :data:`SERIAL_OPTIONS` (the API's pools) is
    serial already: the statement runs alone, without the transaction around it (measured: 0.2 ms of
    client CPU less per request, and three statements less for the server). With ``text_as_bytes``
    text columns come back as UTF-8 ``bytes``. ``prepare`` is for statements whose best plan does not
    depend on their values (a tile: the spatial index whatever the tile), which then skip parsing and
    planning.
    """
    cur = conn.cursor()
    if text_as_bytes and conn.info.encoding == "utf-8":  # else text is decoded as usual (the caller encodes it)
        cur.adapters.register_loader("text", _Utf8Bytes)
    if _SERIAL_MARK in (conn.pgconn.options or b""):
        await cur.execute(stmt, params, prepare=prepare)
        return await cur.fetchone()
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(_SERIAL)
            await cur.execute(stmt, params, prepare=False)
            return await cur.fetchone()
    await cur.execute(stmt, params, prepare=False)
    return await cur.fetchone()


MIN_ROW_BYTES: Final = 64
"""A lower bound of a layer row's size on disk (tuple header 24 + line pointer 4 + id, code, geometry ...)."""
_ESTIMATE: Final = (
    "CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE greatest(1, pg_relation_size(c.oid) / %s) END"
)
"""A table's rows: the planner's count, else (never analyzed) the bound of :func:`_table_estimate`."""
ESTIMATE_TTL_S: Final = 30.0
"""How long a table's row estimate is reused (it changes only with ANALYZE/VACUUM, and only the
side of :data:`COUNT_MAX_ROWS` it falls on matters), so big-table pages skip that round trip."""
_estimates: dict[str, tuple[float, int]] = {}
PLAN_CACHE_MAX: Final = 4096
_plan_rows: dict[tuple[str, str], tuple[float, float]] = {}
"""The planner's row estimate per WHERE (statement and bound values), reused for :data:`ESTIMATE_TTL_S`:
every further page of the same query (the keyset condition is not part of it) and repeated map views
skip the planning round trip; estimates change only with ANALYZE."""


async def _table_estimate(conn: AsyncConnection[Any], layer: Layer) -> int:
    """``pg_class.reltuples`` of the layer's table, cached per process for :data:`ESTIMATE_TTL_S`.

    A table never analyzed (``reltuples`` -1: autovacuum off or not yet come, a layer filled by
    edits alone) is bounded by its size instead: no row of a layer takes less than
    :data:`MIN_ROW_BYTES` on disk, so a small table is known to be small without asking the planner.
    """
    name = f"{layer.schema_name}.{layer.table}"
    now = time.monotonic()
    hit = _estimates.get(name)
    if hit is not None and now - hit[0] < ESTIMATE_TTL_S:
        return hit[1]
    cur = await conn.execute(f"SELECT {_ESTIMATE} FROM pg_class AS c WHERE c.oid = to_regclass(%s)",
                             (MIN_ROW_BYTES, name))
    row = await cur.fetchone()
    estimate = int(row[0]) if row and row[0] is not None else -1
    _estimates[name] = (now, estimate)
    return estimate


_ESTIMATES_SQL: Final = (
    f"SELECT n.nspname || '.' || c.relname, {_ESTIMATE} FROM pg_class AS c "
    "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)"
)


async def refresh_estimates(conn: AsyncConnection[Any], layers: Sequence[Layer]) -> int:
    """Read every layer table's row estimate at once and renew the density grids of the large layers.

    Estimates as :func:`_table_estimate` reads them; grids by :func:`layers.query.density.refresh_grid`,
    for the layers large enough to consult one. The API's listener
    (:meth:`api.versions.LayerVersions.every`) calls it every few seconds, well within
    :data:`ESTIMATE_TTL_S` and the grids' TTL, so no request waits for either; a request reads
    them itself only before the first refresh or while the listener is down. Returns the number
    of tables read.
    """
    cur = await conn.execute(_ESTIMATES_SQL, (MIN_ROW_BYTES, sorted({layer.schema_name for layer in layers})))
    rows = await cur.fetchall()
    now = time.monotonic()
    for name, estimate in rows:
        _estimates[str(name)] = (now, int(estimate))
    for layer in layers:
        table_rows = _estimates.get(f"{layer.schema_name}.{layer.table}", (now, 0))[1]
        if table_rows > FILTER_FIRST_MAX_ROWS:  # else choose_filter_first never asks the grid
            await refresh_grid(conn, layer, table_rows, GRID_TTL_S / 2)
    return len(rows)


def _bbox_only(q: FeatureQuery) -> bool:
    """Whether a lon/lat bbox is the query's only condition (then the density grid estimates it)."""
    return (q.bbox is not None and srid_of(q.bbox_crs) in GEOGRAPHIC_SRIDS and q.datetime is None
            and not q.equals and q.filter is None and q.ids is None)


async def choose_filter_first(conn: AsyncConnection[Any], q: FeatureQuery, where: Where | None = None) -> bool:
    """Whether to collect matches first and sort them (see :func:`order_by`).

    Only for narrowed queries in key order; few matches are cheaper to sort than to find by walking
    the primary key. The estimate of the matching rows needs no round trip in the common cases: a
    table of at most :data:`FILTER_FIRST_MAX_ROWS` rows always filters first, and a bbox alone is
    estimated from the layer's in-memory density grid (:mod:`layers.query.density`). Any other
    condition asks the planner (one planning round trip, no execution, remembered per WHERE for
    :data:`ESTIMATE_TTL_S`).
    """
    if not q.has_conditions or q.sortby:
        return False
    table_rows = await _table_estimate(conn, q.layer)
    if 0 < table_rows <= FILTER_FIRST_MAX_ROWS:
        return True  # no condition matches more rows than the table holds: no need to ask
    if table_rows > 0 and _bbox_only(q):
        assert q.bbox is not None
        return await estimate_bbox_rows(conn, q.layer, table_rows, q.bbox) <= FILTER_FIRST_MAX_ROWS
    where = where if where is not None else build_where(q)
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} AS t WHERE {}").format(table_sql(q.layer), where.cond)
    key = (stmt.as_string(conn), repr(sorted(where.params.items())))
    now = time.monotonic()
    hit = _plan_rows.get(key)
    if hit is not None and now - hit[0] < ESTIMATE_TTL_S:
        return hit[1] <= FILTER_FIRST_MAX_ROWS
    cur = await conn.execute(stmt, where.params, prepare=False)
    row = await cur.fetchone()
    try:
        plan = row[0] if row else None
        plan = json.loads(plan) if isinstance(plan, str) else plan
        rows = float(plan[0]["Plan"]["Plan Rows"]) if plan else 0.0
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    if len(_plan_rows) >= PLAN_CACHE_MAX:
        _plan_rows.pop(next(iter(_plan_rows)))
    _plan_rows[key] = (now, rows)
    return rows <= FILTER_FIRST_MAX_ROWS


async def fetch_page(conn: AsyncConnection[Any], q: FeatureQuery, *, count: bool = True) -> Page:
    """Run the page query (with the count in the same statement when cheap) and return the page with its cursors.

    One round trip: the table's row estimate (kept by the API's listener, :func:`refresh_estimates`)
    and the plan choice come from memory, except for a filter the planner must estimate the first time.
    """
    where = build_where(q)
    filter_first = await choose_filter_first(conn, q, where)
    with_count = count and await _table_estimate(conn, q.layer) <= COUNT_MAX_ROWS
    b = Binder()
    row = await fetch_one_serial(conn, page_sql(q, b, where=where, filter_first=filter_first, count=with_count),
                                 where.with_params(b.params), text_as_bytes=True)
    assert row is not None
    return read_page(q, row, int(row[4]) if with_count else None)


async def fetch_feature_tagged(conn: AsyncConnection[Any], layer: Layer, feature_id: int | str,
                               crs: CrsRef = CRS84) -> tuple[str, str]:
    """One feature's GeoJSON text and its ETag, in one round trip; :class:`FeatureNotFoundError` (404) when absent."""
    fid = parse_feature_id(layer, str(feature_id)) if not isinstance(feature_id, int) else feature_id
    stmt, params = one_feature_sql(layer, fid, crs)
    cur = await conn.execute(stmt, params)
    row = await cur.fetchone()
    if row is None:
        raise FeatureNotFoundError(layer.id, feature_id)
    return str(row[0]), str(row[1])


async def fetch_feature(conn: AsyncConnection[Any], layer: Layer, feature_id: int | str,
                        crs: CrsRef = CRS84) -> str:
    """One feature's GeoJSON text; :class:`FeatureNotFoundError` (404) when absent."""
    return (await fetch_feature_tagged(conn, layer, feature_id, crs))[0]
