"""Step 4a, **stage**: every mapped value as text and the geometry as EWKB, ``COPY``'d into a TEMP table.

Nothing is interpreted here: the raw text keeps what the file said, so the report can quote it.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from gis.errors import RenewalError
from gis.io import SourceBatch, SourceStream
from gis.validate import GeometryCheck, GeometryIssue
from layers.importer.job import ImportJob
from layers.importer.mapping import ColumnMap, writable_columns
from layers.importer.options import COPY_CHUNK, Progress, ReadFailed
from layers.values import text_series


@dataclass
class Staged:
    """What staging learnt from the file: its rows, their geometry check, and their codes for the report."""

    rows: int
    check: GeometryCheck
    codes: pd.Series | None
    """The file's code cells (as read), row by row: the report names each problem row's code."""
    notes: list[str] = field(default_factory=list)


def stage(cur: psycopg.Cursor[Any], job: ImportJob, step: Progress) -> Staged:
    """Create ``import_stage`` (``rn``, every writable column as text, ``geom``) and ``COPY`` the file into it.

    The file is read, its geometries checked (:class:`gis.validate.GeometryChecker`) and its rows
    sent batch by batch, so a million-row GeoPackage is never in memory whole. The CSV goes to
    the server from a writer thread: PostgreSQL ingests a batch while this process reads and
    checks the next one, on the other core. Times per step are added to ``timings_s``.
    """
    cols = writable_columns(job.layer)
    n = job.stream.total
    timings = job.report.timings_s
    # --- stage: every mapped value as text, the geometry as hex EWKB (EPSG:4490)
    stage_cols = ["rn", *cols, "geom"]
    # Local buffers of TEMP tables (8 MB by default): a large staging table otherwise goes through
    # the disk several times. Allowed only before the session's first TEMP table, as here. Memory
    # for sorts and hashes (4 MB by default) so the lookups and the ordered insert stay off disk. No JIT:
    # compiling the wide CASE expressions of the staging statements costs more than it saves.
    cur.execute(
        "SELECT set_config('temp_buffers', %s, true), set_config('work_mem', %s, true), set_config('jit', 'off', true)",
        (f"{min(1536, 32 + n // 800)}MB", f"{min(256, 8 + n // 4000)}MB"),
    )
    cur.execute(
        sql.SQL("CREATE TEMP TABLE import_stage ({}) ON COMMIT DROP").format(
            sql.SQL(", ").join(
                [
                    sql.SQL("rn integer"),
                    *[sql.SQL("{} text").format(sql.Identifier(c)) for c in cols],
                    sql.SQL("geom geometry"),
                ]
            )
        )
    )
    fixed: dict[str, str | None] = {}
    for col in cols:
        if col not in job.cmap.fields and col in job.cfg.defaults:
            fixed[col] = str(job.cfg.defaults[col])
        elif col not in job.cmap.fields and not (col == "code" and job.opts.mode == "append"):
            fixed[col] = None
    prefix = None
    notes = []
    if "code" not in job.cmap.fields and "code" not in fixed:
        prefix = f"IMP-{(job.report.file_sha256 or 'x')[:8]}-"
        notes.append(f"No code column: codes generated as {prefix}000001 ...")
    copy_sql = sql.SQL("COPY import_stage ({}) FROM STDIN (FORMAT csv)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in stage_cols)
    )
    code_col = job.cmap.fields.get("code")
    codes: list[pd.Series] = []
    rows = 0
    step("stage (COPY)", 0, n)
    with cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
        for batch in _read(job.stream, timings, step, n):
            t0 = time.perf_counter()
            geometry = job.checker.check(batch.geometry, batch.start)
            _add_time(timings, "check_geometries", t0)
            step("check geometries", batch.start + len(geometry), n)
            t0 = time.perf_counter()
            if code_col is not None:
                codes.append(batch.frame[code_col])
            size = len(geometry)
            for start in range(0, size, COPY_CHUNK):
                stop = min(size, start + COPY_CHUNK)
                copy.write(_chunk_csv(batch, job.cmap, cols, fixed, prefix, geometry, start, stop))
            rows = batch.start + size
            _add_time(timings, "stage", t0)
            step("stage (COPY)", rows, n)
        t0 = time.perf_counter()
    _add_time(timings, "stage", t0)  # the server's last batch
    t0 = time.perf_counter()
    check = job.checker.finish()
    for row, msg in job.stream.row_errors:
        check.errors.append(GeometryIssue(row, "bad_geometry", msg))
    _add_time(timings, "check_geometries", t0)
    return Staged(
        rows=rows,
        check=check,
        codes=pd.concat(codes, ignore_index=True) if codes else None,
        notes=notes,
    )


def _read(stream: SourceStream, timings: dict[str, float], step: Progress, n: int) -> Iterator[SourceBatch]:
    """The stream's batches, timed as ``read``; a reading error becomes :class:`ReadFailed`."""
    batches = stream.batches()
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        except RenewalError as exc:
            raise ReadFailed(exc) from exc
        finally:
            _add_time(timings, "read", t0)
        step("read", batch.start + len(batch.geometry), n)
        yield batch


def _add_time(timings: dict[str, float], key: str, since: float) -> None:
    timings[key] = round(timings.get(key, 0.0) + time.perf_counter() - since, 3)


def _chunk_csv(
    batch: SourceBatch,
    cmap: ColumnMap,
    cols: list[str],
    fixed: dict[str, str | None],
    code_prefix: str | None,
    geometry: np.ndarray,
    start: int,
    stop: int,
) -> bytes:
    """Rows ``start:stop`` of a batch as CSV for ``COPY``, built chunk by chunk (memory stays flat) by Arrow.

    Text cells are :func:`layers.values.text_series` of the file's cells; a missing cell is an
    unquoted empty field (NULL), an empty string a quoted one. The geometry is hex EWKB in EPSG:4490.
    ``rn`` (and a generated code) count from the file's first row, whatever the batch.
    """
    size = stop - start
    first = batch.start + start + 1
    arrays: list[pa.Array] = [pa.array(np.arange(first, first + size, dtype=np.int32))]
    for col in cols:
        if col in cmap.fields:
            cells = text_series(batch.frame[cmap.fields[col]].iloc[start:stop]).to_numpy()
            arrays.append(pa.array(cells, type=pa.string(), from_pandas=True))
        elif col in fixed:
            arrays.append(pa.array([fixed[col]] * size, type=pa.string()))
        else:
            arrays.append(pa.array([f"{code_prefix}{i:06d}" for i in range(first, first + size)], type=pa.string()))
    arrays.append(_hex_ewkb(geometry[start:stop]))
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return bytes(sink.getvalue().to_pybytes())


def _hex_ewkb(geoms: np.ndarray) -> pa.Array:
    """Hex EWKB (EPSG:4490) of each geometry as an Arrow string array, null where there is none.

    GEOS writes binary WKB; the hex text is made in one ``hexlify`` of all of it and handed to
    Arrow as buffers, which is several times faster than one hex string object per geometry.
    """
    ok = ~shapely.is_missing(geoms)
    blobs = np.full(len(geoms), b"", dtype=object)
    if ok.any():
        blobs[ok] = shapely.to_wkb(shapely.set_srid(geoms[ok], 4490), hex=False, include_srid=True)
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths * 2, out=offsets[1:])
    validity = pa.array(ok).buffers()[1] if not ok.all() else None
    return pa.LargeStringArray.from_buffers(
        len(blobs), pa.py_buffer(offsets), pa.py_buffer(binascii.hexlify(b"".join(blobs))), validity
    )
