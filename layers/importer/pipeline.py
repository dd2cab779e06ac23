"""The import pipeline: read, map, check geometries, then stage, validate and apply in one transaction."""

from __future__ import annotations

import datetime as dt
import getpass
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gis.crs import CrsRef, parse_crs
from gis.errors import CRSError, InvalidInputError, RenewalError
from gis.io import SourceStream, stream_source
from gis.validate import FAMILY, GeometryChecker
from layers.city import for_conninfo as city_for_conninfo
from layers.errors import ServiceUnavailableError
from layers.importer.apply import apply
from layers.importer.job import ImportJob
from layers.importer.mapping import check_mapping, load_mapping, map_columns, writable_columns
from layers.importer.options import ImportOptions, ImportReport, Progress, ReadFailed, Rejected
from layers.importer.records import connect, file_sha256, record, record_outside, update_record
from layers.importer.staging import stage
from layers.importer.validate import validate
from layers.models import Layer
from layers.registry import get_registry


def _resolve_crs(source: SourceStream, opts: ImportOptions, name: str, report: ImportReport) -> CrsRef:
    if opts.crs:
        ref = parse_crs(opts.crs)
        if source.crs is not None and not source.crs_implicit and source.crs != ref:
            report.notes.append(f"The file declares {source.crs.label}; --crs {ref.label} used instead, as asked.")
        return ref
    if source.crs is not None:
        return source.crs
    why = {
        "shp": "the shapefile has no .prj file",
        "csv": "a CSV table has no coordinate system",
        "xlsx": "an Excel ledger has no coordinate system",
    }.get(source.format, "the file declares none")
    raise CRSError(
        f"'{name}' does not say which coordinate system its coordinates are in ({why}). Pass --crs, e.g. "
        "--crs EPSG:4490 (CGCS2000 degrees), --crs EPSG:4547 (CGCS2000 Gauss-Krüger 114°E), "
        "--crs EPSG:4526 (same, zone 38 with zone number), --crs gcj02 (Gaode/web maps)."
    )


def _suggest_layers(current: Layer) -> Callable[[str], list[str]]:
    def suggest(family: str) -> list[str]:
        return [lyr.id for lyr in get_registry() if FAMILY.get(lyr.geometry_type) == family and lyr.id != current.id]

    return suggest



def run_import(
    conninfo: str,
    layer_id: str,
    path: Path,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` into layer ``layer_id``; return the report (also stored in ``renewal.imports``).

    Returns a report with ``status`` ``applied``, ``dry_run`` or ``rejected`` (row-level problems,
    listed in ``errors``; nothing written).

    Raises
    ------
    InvalidInputError
        For a file that cannot be read at all (damaged, empty, no CRS, wrong columns ...); the
        attempt is still recorded (``status = 'failed'``) and its id is in ``detail['import_id']``.
    """
    opts = options or ImportOptions()
    layer = get_registry().get(layer_id)
    name = opts.file_name or path.name
    report = ImportReport(
        layer=layer.id,
        file_name=name,
        mode=opts.mode,
        dry_run=opts.dry_run,
        on_invalid=opts.on_invalid,
        actor=opts.actor or getpass.getuser(),
        channel=opts.channel,
        effective_date=(opts.effective_date or dt.date.today()).isoformat(),
    )
    if opts.mode not in ("append", "upsert", "replace"):
        raise InvalidInputError(f"Unknown import mode '{opts.mode}': use append, upsert or replace.")
    if opts.on_invalid not in ("repair", "reject"):
        raise InvalidInputError(f"Unknown --on-invalid '{opts.on_invalid}': use repair or reject.")
    started = dt.datetime.now(dt.UTC)
    tick = time.perf_counter()

    def step(label: str, done: int, total: int) -> None:
        if progress:
            progress(label, done, total)

    try:
        report.file_sha256, report.file_size = file_sha256(path)
        step("read", 0, 1)
        stream = stream_source(path, layer_name=opts.layer_name, encoding=opts.encoding, prefer=(layer.id, layer.table))
        report.source_format, report.source_layer, report.encoding = stream.format, stream.layer, stream.encoding
        report.notes.extend(stream.notes)
        report.counts["read"] = stream.total
        report.timings_s["read"] = round(time.perf_counter() - tick, 3)
        if stream.total == 0:
            raise InvalidInputError(f"'{name}' contains no features (zero rows).")
        crs = _resolve_crs(stream, opts, name, report)
        report.source_crs = crs.label
        cfg = load_mapping(layer, opts.mapping)
        cmap = map_columns(layer, stream.columns, cfg)
        report.mapping, report.ignored_columns, report.unmapped_columns = cmap.fields, cmap.ignored, cmap.unmapped
        check_mapping(layer, cmap, cfg, opts, name)
    except RenewalError as exc:
        _record_failure(conninfo, report, started, exc)
        raise

    checker = GeometryChecker(
        src_crs=crs,
        target_type=layer.geometry_type,
        extent=city_for_conninfo(conninfo).bbox,
        on_invalid=opts.on_invalid,
        drop_z=opts.drop_z,
        layer_label=f"layer '{layer.id}' ({layer.title})",
        suggest_layers=_suggest_layers(layer),
    )
    try:
        with connect(conninfo) as conn:
            try:
                job = ImportJob(layer, stream, cmap, cfg, checker, opts, report)
                with conn.transaction():
                    _stage_validate_apply(conn, job, step, started)
            except Rejected:
                pass
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                diag = exc.diag.message_primary or str(exc)
                report.status = "rejected"
                report.message = f"The database refused the import: {diag}"
                report.errors.append({"row": None, "kind": "database", "message": report.message})
                report.error_counts["database"] = 1
            if report.status != "applied":
                report.import_id = record(conn, report, started)
                conn.commit()
    except ReadFailed as failed:
        _record_failure(conninfo, report, started, failed.error)
        raise failed.error from None
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError(
            "The database connection was lost during the import; nothing was written. Try again."
        ) from exc
    report.timings_s["total"] = round(time.perf_counter() - tick, 3)
    return report


def _record_failure(conninfo: str, report: ImportReport, started: dt.datetime, exc: RenewalError) -> None:
    """Record an import that failed before validation (unreadable file, no CRS, wrong columns ...)."""
    report.status = "failed"
    report.message = exc.message
    report.import_id = record_outside(conninfo, report, started)
    exc.detail = {**exc.detail, "import_id": report.import_id, "report": report.as_dict()}


def _stage_validate_apply(conn: psycopg.Connection[Any], job: ImportJob, step: Progress, started: dt.datetime) -> None:
    cur = conn.cursor()
    target = sql.Identifier(job.layer.schema_name, job.layer.table)
    cols = writable_columns(job.layer)
    staged = stage(cur, job, step)
    job.report.counts["read"] = staged.rows
    job.report.counts["promoted"] = staged.check.promoted
    if staged.check.explanation:
        job.report.notes.append(staged.check.explanation)
    job.report.notes.extend(staged.notes)

    t0 = time.perf_counter()
    step("validate", 0, 1)
    validate(cur, job, staged)
    job.report.timings_s["validate"] = round(time.perf_counter() - t0, 3)
    step("validate", 1, 1)
    if job.report.error_counts:
        raise Rejected

    # --- apply, in this same transaction
    t0 = time.perf_counter()
    step("apply", 0, 1)
    eff = job.opts.effective_date or dt.date.today()
    cur.execute(
        "SELECT set_config('renewal.actor', %s, true), set_config('renewal.channel', %s, true), "
        "set_config('renewal.effective_date', %s, true), set_config('renewal.source_doc', %s, true), "
        "set_config('renewal.history_mode', '', true), set_config('renewal.audit_mode', '', true), "
        "set_config('synchronous_commit', 'off', true), set_config('maintenance_work_mem', '256MB', true)",
        (job.report.actor, job.opts.channel, eff.isoformat(), job.opts.source_doc or job.report.file_name),
    )
    job.report.import_id = record(conn, job.report, started, status="applied")
    cur.execute(
        "SELECT set_config('renewal.note', %s, true)", (f"import #{job.report.import_id}: {job.report.file_name}",)
    )
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    apply(cur, job.layer, target, cols, job.cmap, job.cfg, job.opts, job.report)
    job.report.timings_s["apply"] = round(time.perf_counter() - t0, 3)
    step("apply", 1, 1)
    if job.opts.dry_run:
        job.report.status = "dry_run"
        job.report.import_id = None
        raise Rejected  # rolls the transaction back; run_import records the dry run
    job.report.status = "applied"
    update_record(cur, job.report)
