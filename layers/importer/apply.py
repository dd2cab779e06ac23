"""Step 5, **apply**: append, upsert by code or replace, in the transaction that staged and validated.

Large loads into an empty (or small) layer drop the secondary indexes and rebuild them after the insert.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from layers.importer.mapping import ColumnMap, MappingConfig
from layers.importer.options import BULK_LOAD_ROWS, SAME_GEOMETRY_DEG, ImportOptions, ImportReport
from layers.importer.trail import bulk_trail, end_bulk_trail
from layers.importer.validate import ready_with_geometry
from layers.models import FieldDef, Layer


def _final_expr(layer: Layer, col: str) -> sql.Composable:
    v = sql.SQL("r.{}").format(sql.Identifier(col))
    if col in ("code", "name", "district_code", "status"):
        return v
    fdef: FieldDef = layer.field(col)
    if fdef.type == "integer":
        return sql.SQL("{}::integer").format(v)
    if fdef.type == "number":
        return sql.SQL("{}::double precision").format(v)
    return v


def apply(
    cur: psycopg.Cursor[Any],
    layer: Layer,
    target: sql.Composable,
    cols: list[str],
    cmap: ColumnMap,
    cfg: MappingConfig,
    opts: ImportOptions,
    report: ImportReport,
) -> None:
    """Write ``import_ready`` into the layer as ``opts.mode`` says; count added, updated, unchanged, deleted.

    The layer's statement triggers write the audit log and status history of every statement (:mod:`.trail`).
    """
    mapped = [c for c in cols if c in cmap.fields or c in cfg.defaults or c == "code"]
    if "code" not in cmap.fields and "code" not in cfg.defaults and opts.mode != "append":
        mapped.remove("code")
    if opts.mode == "replace":
        delete = sql.SQL(
            "DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM import_ready AS r WHERE r.code = t.code)"
        ).format(target)
        cur.execute(delete)
        report.counts["deleted"] = cur.rowcount
    matched = 0
    if opts.mode in ("upsert", "replace"):
        upd_cols = [c for c in mapped if c != "code"]
        sets: list[sql.Composable] = []
        news: list[sql.Composable] = []
        olds: list[sql.Composable] = []
        for c in upd_cols:
            expr = _final_expr(layer, c)
            if c == "status" or (c not in ("name", "district_code") and layer.field(c).required):
                expr = sql.SQL("coalesce({}, t.{})").format(expr, sql.Identifier(c))
            if c == "district_code" and layer.id == "districts":
                expr = sql.SQL("coalesce({}, t.district_code)").format(expr)
            sets.append(sql.SQL("{} = {}").format(sql.Identifier(c), expr))
            news.append(expr)
            olds.append(sql.SQL("t.{}").format(sql.Identifier(c)))
        sets.append(sql.SQL("geom = r.geom"))
        # Same shape with another vertex order (shapefiles store rings clockwise) or coordinates rounded below
        # 1e-9° (0.1 mm; KML keeps 12 decimals, Excel 15 digits) is no change.
        geom_changed = sql.SQL(
            "NOT (t.geom = r.geom OR ST_Equals(t.geom, r.geom) OR "
            "(ST_NPoints(t.geom) = ST_NPoints(r.geom) AND "
            "ST_HausdorffDistance(t.geom, r.geom) < {}))"
        ).format(sql.Literal(SAME_GEOMETRY_DEG))
        changed = (
            sql.SQL("({}) IS DISTINCT FROM ({}) OR {}").format(
                sql.SQL(", ").join(olds), sql.SQL(", ").join(news), geom_changed
            )
            if olds
            else geom_changed
        )
        update = sql.SQL(
            "UPDATE {} AS t SET {} FROM {} AS r WHERE t.code = r.code AND NOT r.is_new AND ({})"
        ).format(target, sql.SQL(", ").join(sets), ready_with_geometry(layer), changed)
        cur.execute(update)
        report.counts["updated"] = cur.rowcount
        cur.execute("SELECT count(*) FROM import_ready WHERE NOT is_new")
        row = cur.fetchone()
        matched = int(row[0]) if row else 0
    report.counts["unchanged"] = matched - report.counts["updated"]
    ins_cols = list(mapped)
    exprs = [_final_expr(layer, c) for c in ins_cols]
    if layer.lifecycle is not None:
        first = sql.Literal(layer.lifecycle.codes[0])
        if "status" in ins_cols:
            exprs[ins_cols.index("status")] = sql.SQL("coalesce(r.status, {})").format(first)
        else:
            ins_cols.append("status")
            exprs.append(first)
    if layer.id == "districts":
        if "district_code" in ins_cols:
            exprs[ins_cols.index("district_code")] = sql.SQL("coalesce(r.district_code, r.code)")
        else:
            ins_cols.append("district_code")
            exprs.append(sql.SQL("r.code"))
    ins_cols.append("geom")
    exprs.append(sql.SQL("r.geom"))
    cur.execute("SELECT count(*) FROM import_ready WHERE is_new")
    row = cur.fetchone()
    new = int(row[0]) if row else 0
    rebuild = drop_indexes_for_bulk_load(cur, layer, report, new)
    summary = bulk_trail(cur, opts, new, report)
    insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} AS r WHERE r.is_new ORDER BY r.rn").format(
        target,
        sql.SQL(", ").join(sql.Identifier(c) for c in ins_cols),
        sql.SQL(", ").join(exprs),
        ready_with_geometry(layer),
    )
    # The ready table is in file order with an index on rn: the insert reads it in that order through
    # the index, where a sort would copy the wide rows (geometries) again, on disk for a large file.
    # The layer's statement triggers read the inserted rows (geometries included) from a transition
    # table held in work_mem (about 400 bytes of data a parcel). A million parcels still spill part of it
    # (284 MB under 454 MB: each tuple takes a power-of-two chunk); more room measured no faster.
    cur.execute(
        "SELECT set_config('enable_sort', 'off', true), set_config('work_mem', %s, true)", (insert_work_mem(new),)
    )
    t0 = time.perf_counter()
    cur.execute(insert)
    report.counts["added"] = cur.rowcount
    cur.execute("SELECT set_config('enable_sort', 'on', true)")
    if summary:
        end_bulk_trail(cur)
    report.timings_s["insert_with_triggers"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    for stmt in rebuild:
        cur.execute(stmt)
    if rebuild:
        report.timings_s["rebuild_indexes"] = round(time.perf_counter() - t0, 3)
    elif not report.dry_run:
        _refresh_statistics(cur, layer, sum(report.counts.get(k, 0) for k in ("added", "updated", "deleted")))


def insert_work_mem(new_rows: int) -> str:
    """``work_mem`` for an insert of ``new_rows`` features: room for the triggers' transition table, at most 1.5 GB."""
    return f"{min(1536, 64 + new_rows // 2500)}MB"


def _refresh_statistics(cur: psycopg.Cursor[Any], layer: Layer, changed: int) -> None:
    """ANALYZE the layer when the import changed enough of it, by autovacuum's own rule (50 rows + 10 %).

    The API sizes its queries by ``pg_class.reltuples`` (no round trip); a table never analyzed
    reads -1 and every bbox query then asks the planner first. Autovacuum may be off or slow to
    come, so the import refreshes the statistics itself; a small change to a large layer does not.
    """
    cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (f"{layer.schema_name}.{layer.table}",))
    row = cur.fetchone()
    reltuples = float(row[0]) if row else -1.0
    if changed and (reltuples < 0 or changed > 50 + 0.1 * reltuples):
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(layer.schema_name, layer.table)))



def drop_indexes_for_bulk_load(
    cur: psycopg.Cursor[Any], layer: Layer, report: ImportReport, new: int
) -> list[sql.Composed]:
    """Drop the layer's secondary indexes before a large insert; return the statements rebuilding them.

    Building an index once after the load is several times faster than maintaining it row by row
    (the conventions' "indexes built after large loads"). This is done when at least
    ``BULK_LOAD_ROWS`` features are added and they are at least as many as the layer already holds
    (else maintaining the index is cheaper than rebuilding it over the existing rows). Into an
    empty layer the unique code constraint is dropped and re-added too: the staging checks have
    already rejected duplicate codes, and re-adding it checks again. All of it is transactional, so
    a failed or killed import leaves the indexes as they were.
    """
    target = sql.Identifier(layer.schema_name, layer.table)
    if new < BULK_LOAD_ROWS:
        return []
    cur.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) AS x").format(target), (new + 1,))
    row = cur.fetchone()
    existing = int(row[0]) if row else 0
    if new < existing:
        return []
    regclass = f"{layer.schema_name}.{layer.table}"
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT i.indisunique",
        (regclass,),
    )
    rebuild: list[sql.Composed] = []
    for name, definition in cur.fetchall():
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(layer.schema_name, name)))
        rebuild.append(sql.Composed([sql.SQL(definition)]))  # DDL from the catalog (pg_get_indexdef), not from input
    if existing == 0:
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u'",
            (regclass,),
        )
        for name, definition in cur.fetchall():
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(target, sql.Identifier(name)))
            # DDL from the catalog (pg_get_constraintdef), not from input
            rebuild.append(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(target, sql.Identifier(name), sql.SQL(definition))
            )
    report.notes.append(f"Large load: {len(rebuild)} indexes/constraints rebuilt after the insert, then ANALYZE.")
    if not report.dry_run:  # ANALYZE writes the row count in place: a rolled-back dry run must not leave it
        rebuild.append(sql.SQL("ANALYZE {}").format(target))  # fresh planner statistics for the new rows
    return rebuild
