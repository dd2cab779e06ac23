"""Load the synthetic demo city into a migrated database (SYNTHETIC, NOT OFFICIAL DATA).

Each layer is replaced in its own transaction: ``TRUNCATE … RESTART IDENTITY``, its
rows deleted from ``renewal.status_history``, features copied in with ``COPY`` (EWKB
hex, SRID 4490), ``district_code`` filled by a point-on-surface join with
``renewal.districts``, and the status histories copied into a temporary table and
inserted set-based, joined to the layer for ``feature_id``. ``renewal.history_mode``
is ``manual`` throughout so the trigger writes nothing itself, and
``renewal.audit_mode`` is ``off``: synthetic rows are not changes anyone made. Land parcels are
generated in SQL (``parcels.sql``).

``created_at`` is synthetic too, so the history rule of :mod:`layers.history` (a feature
without history on a date is in its first status if it was created by then, absent
otherwise) gives plausible answers: a feature was entered on the date of its first status
change, and a feature without history (reference layers, existing parcels) on
:data:`BASELINE_DATE`, the survey before the plan.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from importlib import resources
from typing import Any

import psycopg
import shapely
from psycopg import sql
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon

from layers.demo import synth
from layers.registry import get_registry

Progress = Callable[[str, int, int], None]

LOAD_ORDER = [
    "districts", "ring_zones", "ring_roads", "hutuo_river", "hutuo_belt_zones", "land_parcels",
    "urban_villages", "old_compounds", "vacated_land", "planned_roads", "parking_sites",
]
"""Districts first: every other layer's ``district_code`` is joined from them."""

PARCEL_CELL_M = 100.0
"""Parcel grid cell at ``scale=1``, in metres; it shrinks with ``sqrt(scale)``."""
PARCEL_JITTER = 0.3
"""Node displacement as a fraction of a cell (must stay below 0.5)."""
ROAD_EVERY_M = 1000.0
"""Spacing of the rows/columns of road parcels (1207) in the grid, in metres."""

# Land-use shares (inside the 2nd ring, outside it) among non-road parcels.
LAND_USE_SHARES: list[tuple[str, float, float]] = [
    ("0701", 0.40, 0.36),
    ("0702", 0.05, 0.03),
    ("0801", 0.06, 0.03),
    ("0802", 0.02, 0.02),
    ("0804", 0.06, 0.04),
    ("0806", 0.03, 0.02),
    ("0901", 0.12, 0.07),
    ("0902", 0.06, 0.02),
    ("1001", 0.02, 0.16),
    ("1101", 0.01, 0.06),
    ("1401", 0.09, 0.08),
    ("1402", 0.04, 0.06),
    ("1403", 0.04, 0.05),
]

BASELINE_DATE = dt.date(2019, 12, 31)
"""The demo's base survey (国土空间现状底数): ``created_at`` of features without a status history."""
ENTRY_TIME = dt.time(9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
"""Synthetic features are entered at 09:00 Beijing time on their date."""


def created_at(first_change: dt.date | None) -> dt.datetime:
    """The synthetic ``created_at`` of a feature whose first status change is dated ``first_change``."""
    return dt.datetime.combine(first_change or BASELINE_DATE, ENTRY_TIME)


_NODE_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.demo_node(g float8[], i int, j int) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ST_MakePoint(
    g[1] + (i + CASE WHEN i = 0 OR i = g[5] THEN 0.0::float8 ELSE g[7] * (('x' || substr(md5('n' || i::text
      || ',' || j::text), 1, 7))::bit(28)::int::float8 / 134217728.0::float8 - 1.0::float8) END) * g[3],
    g[2] + (j + CASE WHEN j = 0 OR j = g[6] THEN 0.0::float8 ELSE g[7] * (('x' || substr(md5('n' || i::text
      || ',' || j::text), 8, 7))::bit(28)::int::float8 / 134217728.0::float8 - 1.0::float8) END) * g[4])
$$
"""

_PARCEL_HISTORY = """
INSERT INTO renewal.status_history
  (layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by)
SELECT 'land_parcels', p.id, p.code, s.from_status, s.to_status, s.d, s.doc, s.note, 'demo'
FROM renewal.land_parcels AS p
CROSS JOIN LATERAL (
  SELECT CASE p.status WHEN 'reserved' THEN 1 WHEN 'supplied' THEN 2 WHEN 'built' THEN 3 END AS rank,
         ('x' || substr(md5('h' || p.code), 1, 7))::bit(28)::int / 268435456.0::float8 AS v1,
         ('x' || substr(md5('h' || p.code), 8, 7))::bit(28)::int / 268435456.0::float8 AS v2,
         ('x' || substr(md5('h' || p.code), 15, 7))::bit(28)::int / 268435456.0::float8 AS v3
) AS r
CROSS JOIN LATERAL (
  SELECT CASE WHEN p.status = 'reserved' THEN date '2021-02-01' + floor(r.v1 * 1750)::int
              ELSE make_date(p.supply_year, 1, 1) + floor(r.v1 * 330)::int END AS d_main
) AS m
CROSS JOIN LATERAL (
  SELECT CASE WHEN p.status = 'reserved' THEN m.d_main ELSE m.d_main - (60 + floor(r.v2 * 300)::int) END AS d_res,
         m.d_main AS d_sup,
         least(m.d_main + (420 + floor(r.v3 * 500)::int), date '2025-12-20') AS d_built
) AS dd
CROSS JOIN LATERAL (
  VALUES (0, NULL::text, 'existing', date '2019-12-31', %(doc0)s, %(note0)s),
         (1, 'existing', 'reserved', dd.d_res, %(doc1)s, %(note1)s),
         (2, 'reserved', 'supplied', dd.d_sup, %(doc2)s, %(note2)s),
         (3, 'supplied', 'built', dd.d_built, %(doc3)s, %(note3)s)
) AS s(seq, from_status, to_status, d, doc, note)
WHERE p.status <> 'existing' AND s.seq <= r.rank
ORDER BY p.id, s.seq
"""


def _geom_ewkb(geom: shapely.Geometry, geometry_type: str) -> str:
    if geometry_type == "MultiPolygon" and isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    elif geometry_type == "MultiLineString" and isinstance(geom, LineString):
        geom = MultiLineString([geom])
    if geom.geom_type != geometry_type:
        raise ValueError(f"expected {geometry_type}, got {geom.geom_type}")
    return str(shapely.to_wkb(shapely.set_srid(geom, 4490), hex=True, include_srid=True))


def begin_layer(cur: psycopg.Cursor[Any], table: str) -> None:
    """Empty a demo layer and its history inside the caller's transaction, triggers bypassed."""
    # we write the histories ourselves; synthetic rows are not changes anyone made (no audit)
    cur.execute("SELECT set_config('renewal.history_mode', 'manual', true)")
    cur.execute("SELECT set_config('renewal.audit_mode', 'off', true)")
    cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.Identifier("renewal", table)))
    cur.execute("DELETE FROM renewal.status_history WHERE layer = %s", (table,))


def _district_join(cur: psycopg.Cursor[Any], table: str) -> None:
    cur.execute(
        sql.SQL(
            """
            UPDATE {t} AS t SET district_code = (
              SELECT d.code FROM renewal.districts AS d
              WHERE ST_Intersects(d.geom, ST_PointOnSurface(t.geom))
              ORDER BY d.code LIMIT 1)
            """
        ).format(t=sql.Identifier("renewal", table))
    )


def _load_history(cur: psycopg.Cursor[Any], table: str, history: list[tuple[Any, ...]]) -> None:
    cur.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS demo_history (
          code text, seq int, from_status text, to_status text, effective_date date,
          source_doc text, note text) ON COMMIT DELETE ROWS
        """
    )
    with cur.copy(
        "COPY demo_history (code, seq, from_status, to_status, effective_date, source_doc, note) FROM STDIN"
    ) as copy:
        for row in history:
            copy.write_row(row)
    cur.execute(
        sql.SQL(
            """
            INSERT INTO renewal.status_history
              (layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by)
            SELECT %s, t.id, h.code, h.from_status, h.to_status, h.effective_date, h.source_doc, h.note, 'demo'
            FROM demo_history AS h JOIN {t} AS t ON t.code = h.code
            ORDER BY t.id, h.seq
            """
        ).format(t=sql.Identifier("renewal", table)),
        (table,),
    )
    cur.execute("TRUNCATE demo_history")


def load_python_layer(cur: psycopg.Cursor[Any], data: synth.LayerData, geometry_type: str) -> None:
    """COPY generated features and their dated histories into a layer (shared with the plan layers)."""
    table = data.table
    cols = [*data.columns, "created_at", "geom"]
    first: dict[str, dt.date] = {}
    for code, _seq, _src, _dst, date, *_ in data.history:
        first[code] = min(first.get(code, date), date)
    code_at = data.columns.index("code")
    stmt = sql.SQL("COPY {t} ({cols}) FROM STDIN").format(
        t=sql.Identifier("renewal", table), cols=sql.SQL(", ").join(map(sql.Identifier, cols))
    )
    with cur.copy(stmt) as copy:
        for row, geom in zip(data.rows, data.geoms, strict=True):
            copy.write_row((*row, created_at(first.get(row[code_at])), _geom_ewkb(geom, geometry_type)))
    if data.district_join:
        _district_join(cur, table)
    if data.history:
        _load_history(cur, table, data.history)


def parcel_grid(scale: int) -> dict[str, Any]:
    """Grid parameters of the parcel layer for ``scale`` (≈ 25,000 × scale parcels)."""
    x0, y0, x1, y1 = synth.RING3_BOX
    lat = math.radians((y0 + y1) / 2)
    cell = PARCEL_CELL_M / math.sqrt(scale)
    nx = max(1, round((x1 - x0) * 111_320.0 * math.cos(lat) / cell))
    ny = max(1, round((y1 - y0) * 110_950.0 / cell))
    dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
    road_k = max(2, round(ROAD_EVERY_M / cell))
    _, ring3 = synth.rings()
    codes = [c for c, _, _ in LAND_USE_SHARES]
    choices = get_registry().get("land_parcels").field("land_use_code").choices or []
    bounds = {}
    for k, col in ((1, "lu_inner"), (2, "lu_outer")):
        shares = [float(row[k]) for row in LAND_USE_SHARES]
        total = sum(shares)
        lows, acc = [], 0.0
        for share in shares:
            lows.append(acc / total)
            acc += share
        bounds[col] = lows
    r2x0, r2y0, r2x1, r2y1 = synth.RING2_BOX
    return {
        "x0": x0, "y0": y0, "dx": dx, "dy": dy, "nx": nx, "ny": ny, "road_k": road_k,
        "grid": [x0, y0, dx, dy, float(nx), float(ny), PARCEL_JITTER],
        "ring3": str(shapely.to_wkb(shapely.set_srid(ring3, 4490), hex=True, include_srid=True)),
        "r2x0": r2x0, "r2y0": r2y0, "r2x1": r2x1, "r2y1": r2y1,
        "lu_codes": codes, **bounds,
        "all_codes": [c.code for c in choices], "all_labels": [c.label for c in choices],
        "created_at": created_at(None),
    }


def _load_parcels(cur: psycopg.Cursor[Any], scale: int) -> None:
    params = parcel_grid(scale)
    cur.execute("SET LOCAL jit = off")  # JIT compiling the big expression costs more than it saves
    cur.execute("SET LOCAL work_mem = '256MB'")
    cur.execute(_NODE_FUNCTION)
    query = (resources.files("layers.demo") / "parcels.sql").read_text(encoding="utf-8")
    # Bulk load: drop the plain indexes (not those backing constraints) and rebuild them
    # afterwards from their catalogued definitions, which is much faster than inserting
    # a million rows into a GiST index.
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index AS i
        WHERE i.indrelid = 'renewal.land_parcels'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """
    )
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))  # regclass text: already quoted
    cur.execute(query.encode(), params)
    for _, definition in indexes:
        cur.execute(definition)
    cur.execute(
        _PARCEL_HISTORY.encode(),
        {
            "doc0": f"石家庄市国土空间现状底数{synth.DEMO}", "note0": f"现状用地{synth.DEMO}",
            "doc1": f"石自然资〔2021〕5号{synth.DEMO}", "note1": f"纳入土地储备{synth.DEMO}",
            "doc2": f"国有建设用地使用权出让公告{synth.DEMO}", "note2": f"土地供应{synth.DEMO}",
            "doc3": f"竣工验收备案{synth.DEMO}", "note3": f"项目建成{synth.DEMO}",
        },
    )


def load_demo(
    conninfo: str, *, scale: int = 1, progress: Progress | None = None
) -> dict[str, int]:
    """(Re)load every foundation layer of the synthetic demo city into the database at ``conninfo``.

    The foundation layers are those of :data:`LOAD_ORDER`; layers added later are
    left untouched.

    Every layer is replaced in its own transaction (existing rows and their status
    history are removed first). The data are generated deterministically, so two
    loads give identical features and histories. The data are SYNTHETIC and
    APPROXIMATE, not official.

    Parameters
    ----------
    conninfo
        libpq connection string or URL of a database migrated to the foundation schema.
    scale
        Multiplies the number of land parcels (1: ≈ 25,000; 40: ≈ 1,000,000).
    progress
        Called as ``progress(step, done, total)`` before and after each layer.

    Returns
    -------
    dict[str, int]
        Number of features loaded per layer id.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    registry = get_registry()
    layers = {d.table: d for d in synth.build_all_python_layers()}
    unknown = [layer_id for layer_id in LOAD_ORDER if layer_id not in registry]
    missing = set(LOAD_ORDER) - set(layers) - {"land_parcels"}
    if unknown or missing:
        raise RuntimeError(f"demo and registry disagree: unknown {unknown}, not generated {sorted(missing)}")
    counts: dict[str, int] = {}
    total = len(LOAD_ORDER)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for n, layer_id in enumerate(LOAD_ORDER):
            layer = registry.get(layer_id)
            step = f"{layer.title} {layer_id}"
            if progress:
                progress(step, 0, 1)
                progress("demo", n, total)
            with conn.transaction(), conn.cursor() as cur:
                begin_layer(cur, layer.table)
                if layer_id == "land_parcels":
                    _load_parcels(cur, scale)
                else:
                    load_python_layer(cur, layers[layer.table], layer.geometry_type)
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("renewal", layer.table)))
                row = cur.fetchone()
                counts[layer_id] = int(row[0]) if row else 0
            # statistics now, not whenever autovacuum comes by (it may be off): the API sizes its
            # queries by them without a round trip (layers.query.execute, pg_class.reltuples)
            with conn.cursor() as cur:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("renewal", layer.table)))
            if progress:
                progress(step, 1, 1)
        if progress:
            progress("demo", total, total)
        conn.execute("ANALYZE renewal.status_history")
    return counts
