"""The generalised overview of a layer at zooms below its ``min_zoom`` (land parcels at 10-12).

A zoom-10 tile of the city holds about a million parcels: far too many to draw and to read.
The overview is a grid of 64 x 64 cells per tile, each drawn as a square in the land-use class
that most of its parcels have (by centroid), with the parcel count and the class's share.
It reads as a land-use map at city scale and costs a few thousand rows per tile.

The counts live in ``renewal.<table>_overview`` (migration 0012), maintained by triggers in the
same transaction as every write, so the overview is exactly as fresh as the parcels and shares
their layer version (tile ETags and caches need nothing more).
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import sql

from layers.models import Layer

CELLS_PER_TILE: Final = 64
CLASS_FIELD: Final = "land_use_code"
"""The field whose dominant value each cell carries (migration 0012 counts parcels by it)."""
HALF_WORLD_M: Final = 20037508.342789244
WORLD_M: Final = 2 * HALF_WORLD_M


def shows_overview(layer: Layer, z: int) -> bool:
    """Whether tiles of ``layer`` at zoom ``z`` carry the overview instead of features."""
    return layer.overview_min_zoom is not None and layer.overview_min_zoom <= z < layer.min_zoom


def overview_tile_sql(layer: Layer, extent: int, params: dict[str, Any]) -> sql.Composable:
    """``ST_AsMVT`` of the overview cells in tile ``%(z)s/%(x)s/%(y)s`` (bytea, possibly empty).

    Attributes: ``land_use_code`` (the dominant class, so the layer's usual colours apply),
    ``parcels`` (parcels in the cell), ``share`` (the dominant class's share) and ``overview``.
    """
    params["ov_cell"] = WORLD_M / (2 ** params["z"] * CELLS_PER_TILE)
    params["ov_x0"] = params["x"] * CELLS_PER_TILE
    params["ov_y0"] = params["y"] * CELLS_PER_TILE
    params["ov_n"] = CELLS_PER_TILE - 1
    params["ov_half"] = HALF_WORLD_M
    return sql.SQL(
        "(SELECT coalesce(ST_AsMVT(m, {name}, {extent}, 'geom'), ''::bytea) FROM ("
        "SELECT land_use_code, n AS parcels, round(n::numeric / total, 2)::float8 AS share, true AS overview, "
        "ST_AsMVTGeom(ST_MakeEnvelope("
        "cx * %(ov_cell)s - %(ov_half)s, %(ov_half)s - (cy + 1) * %(ov_cell)s, "
        "(cx + 1) * %(ov_cell)s - %(ov_half)s, %(ov_half)s - cy * %(ov_cell)s, 3857), "
        "ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {extent}, 0, true) AS geom "
        "FROM (SELECT DISTINCT ON (cx, cy) cx, cy, land_use_code, n, total FROM ("
        "SELECT cx, cy, land_use_code, n, sum(n) OVER (PARTITION BY cx, cy) AS total FROM {table} "
        "WHERE z = %(z)s AND cx BETWEEN %(ov_x0)s AND %(ov_x0)s + %(ov_n)s "
        "AND cy BETWEEN %(ov_y0)s AND %(ov_y0)s + %(ov_n)s) AS s "
        "ORDER BY cx, cy, n DESC, land_use_code) AS d) AS m)"
    ).format(name=sql.Literal(layer.id), extent=sql.Literal(extent),
             table=sql.Identifier(layer.schema_name, f"{layer.table}_overview"))
