"""The record of every import attempt in ``renewal.imports`` (applied, dry run, rejected, failed).

Also the small file helpers the record needs: the file's SHA-256 and a safe name for uploads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from layers.errors import ServiceUnavailableError
from layers.importer.options import ImportReport


def file_sha256(path: Path) -> tuple[str | None, int | None]:
    """SHA-256 and size of a file (None for folders)."""
    if not path.is_file():
        return None, None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest(), path.stat().st_size



@contextmanager
def connect(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection for the importer (a 503 when the database is not reachable)."""
    try:
        conn = psycopg.connect(conninfo, application_name="renewal-import")
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError("The database is not reachable; try again shortly.") from exc
    try:
        yield conn
    finally:
        conn.close()



_RECORD_COLS = (
    "layer",
    "mode",
    "status",
    "dry_run",
    "actor",
    "channel",
    "file_name",
    "file_sha256",
    "file_size",
    "source_format",
    "source_layer",
    "source_crs",
    "features_read",
    "added",
    "updated",
    "unchanged",
    "deleted",
    "rejected",
    "repaired",
    "effective_date",
    "started_at",
    "report",
)


def _record_values(report: ImportReport, started: dt.datetime, status: str) -> tuple[Any, ...]:
    c = report.counts
    return (
        report.layer,
        report.mode,
        status,
        report.dry_run,
        report.actor,
        report.channel,
        report.file_name,
        report.file_sha256,
        report.file_size,
        report.source_format,
        report.source_layer,
        report.source_crs,
        c["read"],
        c["added"],
        c["updated"],
        c["unchanged"],
        c["deleted"],
        c["rejected"],
        c["repaired"],
        report.effective_date,
        started,
        json.dumps(_public(report), ensure_ascii=False, default=str),
    )


def _public(report: ImportReport) -> dict[str, Any]:
    return {k: v for k, v in report.as_dict().items() if not k.startswith("_")}


def record(
    conn: psycopg.Connection[Any], report: ImportReport, started: dt.datetime, status: str | None = None
) -> int:
    """Insert the import's row (``status`` overrides the report's); return its id."""
    st = status or report.status
    row = conn.execute(
        sql.SQL("INSERT INTO renewal.imports ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in _RECORD_COLS),
            sql.SQL(", ").join(sql.Placeholder() * len(_RECORD_COLS)),
        ),
        _record_values(report, started, st),
    ).fetchone()
    assert row is not None
    return int(row[0])


def update_record(cur: psycopg.Cursor[Any], report: ImportReport) -> None:
    """Write the final status, counts and report into the import's row."""
    c = report.counts
    cur.execute(
        "UPDATE renewal.imports SET status = %s, added = %s, updated = %s, unchanged = %s, deleted = %s, "
        "repaired = %s, finished_at = clock_timestamp(), report = %s WHERE id = %s",
        (
            report.status,
            c["added"],
            c["updated"],
            c["unchanged"],
            c["deleted"],
            c["repaired"],
            json.dumps(_public(report), ensure_ascii=False, default=str),
            report.import_id,
        ),
    )


def record_outside(conninfo: str, report: ImportReport, started: dt.datetime) -> int | None:
    """Record a failed attempt in its own transaction (best effort: the database may be the problem)."""
    try:
        with psycopg.connect(conninfo, application_name="renewal-import") as conn:
            return record(conn, report, started)
    except psycopg.Error:
        return None


def import_record(conninfo: str, layer_id: str, import_id: int) -> dict[str, Any] | None:
    """One row of ``renewal.imports`` as a dict (None if there is no such import for the layer)."""
    with connect(conninfo) as conn:
        cur = conn.execute(
            "SELECT id, layer, mode, status, dry_run, actor, channel, file_name, file_sha256, file_size, "
            "source_format, source_layer, source_crs, features_read, added, updated, unchanged, deleted, rejected, "
            "repaired, effective_date, started_at, finished_at, report FROM renewal.imports "
            "WHERE id = %s AND layer = %s",
            (import_id, layer_id),
        )
        row = cur.fetchone()
        if row is None:
            return None
        names = [d.name for d in cur.description or []]
        return dict(zip(names, row, strict=True))


def list_imports(conninfo: str, layer_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest imports into a layer (newest first), without their reports."""
    with connect(conninfo) as conn:
        cur = conn.execute(
            "SELECT id, status, mode, dry_run, actor, channel, file_name, file_sha256, features_read, added, updated, "
            "unchanged, deleted, rejected, repaired, started_at, finished_at FROM renewal.imports "
            "WHERE layer = %s ORDER BY id DESC LIMIT %s",
            (layer_id, limit),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def safe_file_name(name: str) -> str:
    """A file name safe to write in a temporary folder (keeps Chinese characters and the extension)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return cleaned[:150]
