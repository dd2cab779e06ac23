"""Step 4b, **validate** in SQL, set-based: the staged text normalised into ``import_ready`` and checked.

Types and ranges, required values, choice and status vocabularies (Chinese labels → codes),
district names → adcodes, duplicate and (for ``append``) existing codes, district scope; every
problem becomes a row of ``import_errors`` and an entry of the report.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from gis.validate import GeometryIssue
from layers.importer.job import ImportJob, Staged
from layers.importer.mapping import ColumnMap, MappingConfig
from layers.importer.options import (
    CODE_MAX,
    MAX_REPORTED_ERRORS,
    NAME_MAX,
    TEXT_MAX,
    ImportOptions,
    ImportReport,
)
from layers.models import Layer
from layers.values import EXPECTED, sql_convert, sql_convert_numeric_text


def create_lookups(cur: psycopg.Cursor[Any], layer: Layer, cfg: MappingConfig) -> None:
    """TEMP lookup tables: every accepted spelling (lower-case) → stored code."""
    cur.execute(
        "CREATE TEMP TABLE import_lookup (col text, key text, code text, PRIMARY KEY (col, key)) ON COMMIT DROP"
    )
    rows: dict[tuple[str, str], str] = {}
    if layer.lifecycle is not None:
        for key, code in layer.lifecycle.by_label().items():
            rows[("status", key)] = code
    for f in layer.fields:
        for ch in f.choices or []:
            for key in (ch.code, ch.label, ch.label_en or ""):
                if key:
                    rows[(f.name, key.strip().lower())] = ch.code
    for col, values in cfg.values.items():
        for src, code in values.items():
            rows[(col, src.strip().lower())] = code
    with cur.copy("COPY import_lookup (col, key, code) FROM STDIN") as copy:
        for (col, key), code in rows.items():
            copy.write_row((col, key, code))
    cur.execute(
        """
        INSERT INTO import_lookup (col, key, code)
        SELECT DISTINCT ON (k) 'district_code', k, code FROM renewal.districts AS d,
          LATERAL (VALUES (lower(d.code)), (lower(d.name)), (lower(regexp_replace(d.name, '(区|县|市)$', ''))))
            AS v(k)
        WHERE k <> ''
        ORDER BY k, code
        ON CONFLICT DO NOTHING
        """
    )


def _coded(layer: Layer, col: str) -> bool:
    if col in ("status", "district_code"):
        return True
    if col in ("code", "name"):
        return False
    return bool(layer.field(col).choices)


def _lookup_alias(col: str) -> sql.Identifier:
    return sql.Identifier("lk_" + col)


def trimmed(raw: sql.Composable) -> sql.Composable:
    """The text rule of :mod:`layers.values` over a staged text cell, blank as NULL (a cell "has a value")."""
    return sql.SQL("nullif({}, '')").format(sql_convert("text", raw))


def _value_expr(layer: Layer, col: str, numeric: bool = False) -> sql.Composable:
    """The value of ``s.<col>`` by :mod:`layers.values`' rules (NULL where it does not convert; raw text in r_<col>).

    ``numeric``: the cells were written from a number column (:func:`layers.values.numeric_text`).
    """
    raw = trimmed(sql.SQL("s.{}").format(sql.Identifier(col)))
    if _coded(layer, col):
        lk = sql.SQL("{}.code").format(_lookup_alias(col))
        if col == "district_code":
            return sql.SQL(
                "coalesce({}, CASE WHEN {} ~ '^\\d{{6}}$' AND NOT EXISTS (SELECT 1 FROM renewal.districts) THEN {} END)"
            ).format(lk, raw, raw)
        return lk
    if col in ("code", "name"):
        return raw
    kind = layer.field(col).type
    if numeric and kind in NUMERIC_KINDS:
        return sql_convert_numeric_text(kind, sql.SQL("s.{}").format(sql.Identifier(col)))
    return raw if kind == "text" else sql_convert(kind, raw)


NUMERIC_KINDS = ("integer", "number")
"""Field kinds whose cells written from a number column convert by :func:`layers.values.sql_convert_numeric_text`."""


def numeric_columns(layer: Layer, cols: list[str]) -> list[str]:
    """The columns of ``cols`` whose values :func:`_value_expr` may convert the cheap way, if the file's cells allow."""
    plain = [c for c in cols if c not in ("code", "name") and not _coded(layer, c)]
    return [c for c in plain if layer.field(c).type in NUMERIC_KINDS]


def geom_expr(layer: Layer) -> sql.Composable:
    """The staged ``s.geom`` as the layer stores it: singles promoted to multi, a one-point MultiPoint a Point."""
    if layer.geometry_type.startswith("Multi"):
        return sql.SQL("ST_Multi(s.geom)")
    if layer.geometry_type == "Point":
        return sql.SQL("CASE WHEN GeometryType(s.geom) = 'MULTIPOINT' THEN ST_GeometryN(s.geom, 1) ELSE s.geom END")
    return sql.SQL("s.geom")


def ready_with_geometry(layer: Layer) -> sql.Composable:
    """``import_ready`` with the geometry as the layer stores it (:func:`geom_expr`, computed when it was built).

    The ready table carries the geometry, so the apply step reads one table in file order; joining
    it back from ``import_stage`` by ``rn`` cost a merge join of two million-row tables.
    """
    return sql.SQL("import_ready")


def repair(cur: psycopg.Cursor[Any], layer: Layer, repair_rns: list[int]) -> None:
    """Repair the invalid geometries the check found, in the staging table (polygonal/linear parts kept)."""
    if not repair_rns:
        return
    dim = {"Point": 1, "MultiPoint": 1, "LineString": 2, "MultiLineString": 2}.get(layer.geometry_type, 3)
    cur.execute(
        "UPDATE import_stage SET geom = ST_CollectionExtract(ST_MakeValid(geom), %s) WHERE rn = ANY(%s)",
        (dim, repair_rns),
    )
    cur.execute(
        "INSERT INTO import_repair_failed SELECT rn FROM import_stage "
        "WHERE rn = ANY(%s) AND geom IS NOT NULL AND ST_IsEmpty(geom)",
        (repair_rns,),
    )


def ready_select(
    layer: Layer, target: sql.Composable, cols: list[str], numeric: frozenset[str] = frozenset()
) -> sql.Composed:
    """The rows of ``import_stage`` normalised: raw text (``r_<col>``), value, ``is_new`` and the geometry.

    ``numeric``: columns (of :func:`numeric_columns`) whose staged text was written from a number column.
    """
    parts: list[sql.Composable] = [sql.SQL("s.rn")]
    for col in cols:
        parts.append(sql.SQL("s.{} AS {}").format(sql.Identifier(col), sql.Identifier("r_" + col)))
        parts.append(sql.SQL("{} AS {}").format(_value_expr(layer, col, col in numeric), sql.Identifier(col)))
    parts.append(
        sql.SQL("NOT EXISTS (SELECT 1 FROM {} AS t WHERE t.code = {}) AS is_new").format(
            target, trimmed(sql.SQL("s.code"))
        )
    )
    parts.append(sql.SQL("{} AS geom").format(geom_expr(layer)))
    # Each coded column is looked up once per distinct cell of the batch (a few dozen), then joined on
    # the cell as sent: the text rule and lower() run per distinct value, not per row.
    joins = [
        sql.SQL(
            "LEFT JOIN (SELECT d.raw, lk.code FROM (SELECT DISTINCT {col} AS raw FROM import_stage) AS d "
            "JOIN import_lookup AS lk ON lk.col = {c} AND lk.key = lower({v})) AS {a} ON {a}.raw = s.{col}"
        ).format(
            a=_lookup_alias(col), c=sql.Literal(col), col=sql.Identifier(col), v=trimmed(sql.SQL("d.raw"))
        )
        for col in cols
        if _coded(layer, col)
    ]
    return sql.SQL("SELECT {} FROM import_stage AS s {}").format(sql.SQL(", ").join(parts), sql.SQL(" ").join(joins))


def error_rows(
    layer: Layer, cols: list[str], cmap: ColumnMap, cfg: MappingConfig, opts: ImportOptions, ready: sql.Composable
) -> sql.Composed:
    """A query of (rn, col, kind, value), one row per attribute problem of the rows of ``ready`` (but duplicates).

    Staging runs it on each batch as it enters ``import_ready`` (:mod:`.staging`), so the check
    is done while the next batch is read; :func:`validate` adds the duplicate codes of the file.
    """
    checks: list[sql.Composable] = []

    conds: list[sql.Composable] = []
    """The same conditions, OR-ed to pick the rows with a problem first (most rows have none)."""

    def add(cond: sql.Composable, col: str, kind: str, value: sql.Composable | None = None) -> None:
        conds.append(cond)
        checks.append(
            sql.SQL("({}, {}, {}, {})").format(
                cond, sql.Literal(col), sql.Literal(kind), value if value is not None else sql.SQL("NULL::text")
            )
        )

    mapped = set(cmap.fields) | set(cfg.defaults)
    raw = {c: sql.SQL("r.{}").format(sql.Identifier("r_" + c)) for c in cols}
    val = {c: sql.SQL("r.{}").format(sql.Identifier(c)) for c in cols}
    present = {c: sql.SQL("{} IS NOT NULL").format(trimmed(raw[c])) for c in cols}
    # A value implies a present cell (every value is converted from the trimmed cell), so each check
    # tests "no value" first: PostgreSQL stops an AND at its first false, and the text rule's trim of
    # the raw cell then runs only for the few rows without a value, not for every row of a batch.
    add(sql.SQL("r.code IS NULL"), "code", "required")
    add(sql.SQL("length(r.code) > {}").format(sql.Literal(CODE_MAX)), "code", "too_long", sql.SQL("r.code"))
    add(sql.SQL("r.name IS NULL AND (r.is_new OR {})").format(sql.Literal("name" in mapped)), "name", "required")
    add(sql.SQL("length(r.name) > {}").format(sql.Literal(NAME_MAX)), "name", "too_long", sql.SQL("r.name"))
    for col in cols:
        if col in ("code", "name"):
            continue
        if col not in ("status", "district_code") and layer.field(col).required:
            add(
                sql.SQL("{} IS NULL AND NOT {} AND (r.is_new OR {})").format(
                    val[col], present[col], sql.Literal(col in mapped)
                ),
                col,
                "required",
            )
        if _coded(layer, col):
            add(sql.SQL("{} IS NULL AND {}").format(val[col], present[col]), col, "unknown_value", raw[col])
            continue
        fdef = layer.field(col)
        if fdef.type in ("integer", "number", "boolean", "date"):
            add(sql.SQL("{} IS NULL AND {}").format(val[col], present[col]), col, "not_" + fdef.type, raw[col])
        if fdef.type in ("integer", "number"):
            lo = fdef.min if fdef.min is not None else (-2147483648 if fdef.type == "integer" else None)
            hi = fdef.max if fdef.max is not None else (2147483647 if fdef.type == "integer" else None)
            if lo is not None:
                add(sql.SQL("{} < {}").format(val[col], sql.Literal(lo)), col, "out_of_range", raw[col])
            if hi is not None:
                add(sql.SQL("{} > {}").format(val[col], sql.Literal(hi)), col, "out_of_range", raw[col])
        if fdef.type == "text":
            limit = fdef.max_length or TEXT_MAX
            add(
                sql.SQL("length({}) > {}").format(val[col], sql.Literal(limit)),
                col,
                "too_long",
                sql.SQL("left({}, 40)").format(raw[col]),
            )
    add(sql.SQL("r.rn IN (SELECT rn FROM import_repair_failed)"), "geometry", "repair_failed")
    if opts.mode == "append":
        add(sql.SQL("r.code IS NOT NULL AND NOT r.is_new"), "code", "code_exists", sql.SQL("r.code"))
    if opts.districts is not None:
        scope = sql.Literal(sorted(opts.districts))
        add(
            sql.SQL("r.district_code IS NULL OR NOT (r.district_code = ANY({}::text[]))").format(scope),
            "district_code",
            "out_of_scope",
            sql.SQL("r.r_district_code"),
        )
        add(
            sql.SQL(
                "NOT r.is_new AND EXISTS (SELECT 1 FROM {} AS t WHERE t.code = r.code AND "
                "(t.district_code IS NULL OR NOT (t.district_code = ANY({}::text[]))))"
            ).format(sql.Identifier(layer.schema_name, layer.table), scope),
            "code",
            "out_of_scope",
            sql.SQL("r.code"),
        )
    return sql.SQL(
        "SELECT r.rn, e.col, e.kind, e.value FROM (SELECT * FROM {} AS r WHERE {}) AS r "
        "CROSS JOIN LATERAL (VALUES {}) AS e(bad, col, kind, value) WHERE e.bad"
    ).format(ready, sql.SQL(" OR ").join(sql.SQL("({})").format(c) for c in conds), sql.SQL(", ").join(checks))


def _sql_errors(cur: psycopg.Cursor[Any]) -> list[tuple[int, str, str, str | None]]:
    """(rn, column, kind, raw value) of the problems listed in the report: staging's plus duplicate codes."""
    cur.execute(
        "INSERT INTO import_errors (rn, col, kind, value) "
        "SELECT r.rn, 'code', 'duplicate_code', r.code FROM import_ready AS r "
        "JOIN (SELECT code FROM import_ready WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1) AS d "
        "USING (code)"
    )
    cur.execute("SELECT rn, col, kind, value FROM import_errors ORDER BY rn, col LIMIT %s", (MAX_REPORTED_ERRORS * 4,))
    rows = [(int(a), str(b), str(c), d) for a, b, c, d in cur.fetchall()]
    cur.execute("SELECT count(*) FROM import_errors")
    total = cur.fetchone()
    if total and total[0] > len(rows):
        rows.append((-1, "", "__more__", str(total[0] - len(rows))))
    return rows


def _message(layer: Layer, col: str, kind: str, value: str | None) -> str:
    label = layer.labels.get(col, col) if col != "geometry" else "geometry"
    what = f"{label} ({col})"
    shown = f"'{value}'" if value is not None else ""
    if kind == "required":
        return f"{what} is empty; it is required"
    if kind == "too_long":
        return f"{what} is too long ({shown}...); shorten it"
    if kind == "unknown_value":
        if col == "status" and layer.lifecycle is not None:
            allowed = ", ".join(f"{s.label} ({s.code})" for s in layer.lifecycle.statuses)
            return f"{shown} is not a status of layer '{layer.id}'. Allowed: {allowed}"
        if col == "district_code":
            return f"{shown} is not a district in the districts layer (use its name, e.g. 长安区, or adcode)"
        fdef = layer.field(col)
        allowed = ", ".join(f"{c.label} ({c.code})" for c in fdef.choices or [])
        return f"{shown} is not a known {what}. Allowed: {allowed}"
    if kind.startswith("not_") and kind[4:] in EXPECTED:
        return f"{what} {shown} is not {EXPECTED[kind[4:]]}"
    if kind == "out_of_range":
        fdef = layer.field(col)
        return (
            f"{what} {shown} is out of range ({fdef.min if fdef.min is not None else '…'} to "
            f"{fdef.max if fdef.max is not None else '…'})"
        )
    if kind == "duplicate_code":
        return f"the code {shown} appears more than once in the file"
    if kind == "code_exists":
        return f"the code {shown} already exists in layer '{layer.id}'; use --mode upsert to update it"
    if kind == "out_of_scope":
        return f"{shown} lies outside the districts you may edit"
    if kind == "repair_failed":
        return "the geometry could not be repaired into a valid one"
    return f"{what}: {kind} {shown}"


def _collect_report(
    cur: psycopg.Cursor[Any],
    layer: Layer,
    codes: pd.Series | None,
    issues: list[GeometryIssue],
    sql_errors: list[tuple[int, str, str, str | None]],
    warnings: list[GeometryIssue],
    report: ImportReport,
) -> None:
    def code_of(row: int) -> str | None:
        if codes is None or row < 0 or row >= len(codes):
            return None
        v = codes.iloc[row]
        return None if pd.isna(v) else str(v)

    entries: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for iss in issues:
        counts[iss.kind] = counts.get(iss.kind, 0) + 1
        entries.append(
            {
                "row": iss.row + 1 if iss.row >= 0 else None,
                "code": code_of(iss.row),
                "field": "geometry",
                "kind": iss.kind,
                "message": iss.message,
                "location": list(iss.location) if iss.location else None,
            }
        )
    unknown: dict[str, dict[str, int]] = {}
    for rn, col, kind, value in sql_errors:
        if kind == "__more__":
            counts["more_not_listed"] = int(value or 0)
            continue
        counts[kind] = counts.get(kind, 0) + 1
        entries.append(
            {
                "row": rn,
                "code": code_of(rn - 1),
                "field": col,
                "kind": kind,
                "value": value,
                "message": _message(layer, col, kind, value),
            }
        )
    cur.execute(
        "SELECT col, value, count(*) FROM import_errors WHERE kind = 'unknown_value' "
        "GROUP BY col, value ORDER BY col, count(*) DESC"
    )
    for col, value, cnt in cur.fetchall():
        unknown.setdefault(str(col), {})[str(value)] = int(cnt)
    cur.execute("SELECT kind, count(*) FROM import_errors GROUP BY kind")
    for kind, cnt in cur.fetchall():
        counts[str(kind)] = int(cnt)
    counts.pop("more_not_listed", None)
    entries.sort(key=lambda e: e["row"] if e["row"] is not None else 0)
    report.errors = entries[:MAX_REPORTED_ERRORS]
    report.error_counts = counts
    report.unknown_values = unknown
    report.warnings = [
        {
            "row": w.row + 1,
            "code": code_of(w.row),
            "kind": w.kind,
            "message": w.message,
            "location": list(w.location) if w.location else None,
        }
        for w in warnings
    ][:MAX_REPORTED_ERRORS]


def _count_rejected(cur: psycopg.Cursor[Any], issues: list[GeometryIssue]) -> int:
    cur.execute("SELECT array_agg(DISTINCT rn) FROM import_errors")
    row = cur.fetchone()
    rns = set(row[0] or []) if row else set()
    if any(i.row < 0 for i in issues):
        cur.execute("SELECT count(*) FROM import_ready")
        total = cur.fetchone()
        return int(total[0]) if total else 0
    rns |= {i.row + 1 for i in issues}
    return len(rns)


def validate(cur: psycopg.Cursor[Any], job: ImportJob, staged: Staged) -> None:
    """Check ``import_ready`` (filled batch by batch by staging, :func:`ready_select`) and list every problem.

    On any problem the report is marked ``rejected`` (with ``error_counts``); the caller rolls back.
    """
    n = staged.rows
    job.report.counts["repaired"] = len(staged.check.repair_rows)
    if job.opts.mode != "append":  # upsert and replace match the layer's rows by code
        cur.execute("CREATE INDEX ON import_ready (code)")
    cur.execute("CREATE INDEX ON import_ready (rn)")  # the insert reads in file order without sorting the rows
    cur.execute("ANALYZE import_ready (rn, code, is_new)")  # what the apply step joins and filters on
    errors = _sql_errors(cur)
    issues = [*staged.check.errors]
    _collect_report(cur, job.layer, staged.codes, issues, errors, staged.check.warnings, job.report)
    if job.report.error_counts:
        job.report.status = "rejected"
        job.report.counts["rejected"] = _count_rejected(cur, issues)
        job.report.message = (
            f"{job.report.counts['rejected']} of {n} features have problems; nothing was imported. "
            "Fix the file (see the errors) and import it again."
        )
