"""Where a layer's features lie: a sampled density grid that estimates a bbox's matches with no round trip.

Why: the page statement's shape depends on how many features a query matches (few: collect them
through the spatial index and sort; many: walk the primary key, see
:func:`layers.query.builder.order_by`). Asking the planner (``EXPLAIN``) costs a round trip on
every new bbox, and a map or QGIS sends a new bbox with nearly every request. A bbox is the
common case, so for it the estimate comes from memory: a grid of feature counts built once per
process from a block sample of the table (``TABLESAMPLE SYSTEM``, about :data:`SAMPLE_ROWS`
rows, a few milliseconds), scaled to the table's row estimate and rebuilt after
:data:`GRID_TTL_S`. The estimate only picks a plan; any estimate gives the same rows.

Public API
----------
estimate_bbox_rows(conn, layer, table_rows, bbox) -> float
    The expected number of features whose box meets ``bbox`` (lon/lat, EPSG:4490 axis order).
refresh_grid(conn, layer, table_rows, max_age_s) -> None
    Rebuild a grid before it expires (so requests never build one while the API's listener runs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from psycopg import AsyncConnection, sql

from layers.models import Layer
from layers.query.common import table_sql

SAMPLE_ROWS: Final = 20_000
"""Rows the grid is built from: enough for a stable estimate of boxes down to a few blocks of a city."""
GRID_CELLS: Final = 64
"""Cells per side."""
GRID_TTL_S: Final = 300.0
"""How long a grid is reused: densities change slowly, and a stale grid only risks a slower plan."""


@dataclass(frozen=True)
class DensityGrid:
    """Feature counts (scaled to the whole table) per cell of a regular lon/lat grid over the sampled extent."""

    x0: float
    y0: float
    dx: float
    dy: float
    counts: np.ndarray

    def estimate(self, bbox: tuple[float, float, float, float]) -> float:
        """Features whose centre falls in ``bbox``, counting partly covered cells by their covered share."""
        nx, ny = self.counts.shape
        fx = np.clip((np.array([bbox[0], bbox[2]]) - self.x0) / self.dx, 0, nx)
        fy = np.clip((np.array([bbox[1], bbox[3]]) - self.y0) / self.dy, 0, ny)
        wx = np.clip(np.minimum(np.arange(1, nx + 1), fx[1]) - np.maximum(np.arange(nx), fx[0]), 0, 1)
        wy = np.clip(np.minimum(np.arange(1, ny + 1), fy[1]) - np.maximum(np.arange(ny), fy[0]), 0, 1)
        return float(wx @ self.counts @ wy)


_grids: dict[str, tuple[float, DensityGrid | None]] = {}


async def _build(conn: AsyncConnection[Any], layer: Layer, table_rows: int) -> DensityGrid | None:
    percent = min(100.0, 100.0 * SAMPLE_ROWS / max(table_rows, 1))
    stmt = sql.SQL(
        "SELECT (ST_XMin(t.geom) + ST_XMax(t.geom)) / 2, (ST_YMin(t.geom) + ST_YMax(t.geom)) / 2 "
        "FROM {} AS t TABLESAMPLE SYSTEM (%s) REPEATABLE (0) WHERE t.geom IS NOT NULL"
    ).format(table_sql(layer))
    cur = await conn.execute(stmt, (percent,))
    pts = np.array(await cur.fetchall(), dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=GRID_CELLS, range=[[lo[0], hi[0] + span[0] * 1e-9],
                                                                                    [lo[1], hi[1] + span[1] * 1e-9]])
    scale = max(table_rows, len(pts)) / len(pts)
    return DensityGrid(float(lo[0]), float(lo[1]), float(span[0]) / GRID_CELLS, float(span[1]) / GRID_CELLS,
                       counts * scale)


async def refresh_grid(conn: AsyncConnection[Any], layer: Layer, table_rows: int, max_age_s: float) -> None:
    """Rebuild the layer's grid if it is older than ``max_age_s`` (the API's listener, off the request path)."""
    key = f"{layer.schema_name}.{layer.table}"
    hit = _grids.get(key)
    now = time.monotonic()
    if hit is None or now - hit[0] >= max_age_s:
        _grids[key] = (now, await _build(conn, layer, table_rows))


async def estimate_bbox_rows(conn: AsyncConnection[Any], layer: Layer, table_rows: int,
                             bbox: tuple[float, float, float, float]) -> float:
    """Expected features in ``bbox`` (lon/lat) from the layer's grid, built on first use and after the TTL."""
    await refresh_grid(conn, layer, table_rows, GRID_TTL_S)
    grid = _grids[f"{layer.schema_name}.{layer.table}"][1]
    return grid.estimate(bbox) if grid is not None else 0.0
