"""Step 4a, **stage**: every mapped value as text and the geometry as EWKB, ``COPY``'d into a TEMP table.

The rows travel in PostgreSQL's binary ``COPY`` format, encoded from Arrow by ``pgpq``: the server
then reads each text cell as it is and each geometry as EWKB bytes, where CSV made it split quoted
fields and decode hex (a million parcels: 1.1 s of server time against 3.0 s, measured in one run).

Nothing is interpreted here: the raw text keeps what the file said (``r_<col>`` in ``import_ready``,
which each staged batch is normalised into), so the report can quote it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import shapely
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import sql

from gis.crs import STORAGE_SRID
from gis.errors import RenewalError
from gis.io import SourceBatch, SourceStream, linearized_note
from gis.validate import GeometryIssue
from layers.importer.job import ImportJob, Staged
from layers.importer.mapping import ColumnMap, writable_columns
from layers.importer.options import COPY_CHUNK, Progress, ReadFailed
from layers.importer.validate import create_lookups, error_rows, numeric_columns, ready_select, repair
from layers.models import Layer
from layers.values import numeric_text, text_series


def stage(cur: psycopg.Cursor[Any], job: ImportJob, step: Progress) -> Staged:
    """Fill ``import_ready`` from the file, batch by batch, through the ``import_stage`` TEMP table.

    Each batch is read, its geometries checked (:class:`gis.validate.GeometryChecker`) and encoded
    for a binary ``COPY`` (every writable column as text, the geometry as EWKB) here; a loader thread
    ``COPY``'s it into ``import_stage``, repairs its invalid geometries and normalises it into
    ``import_ready`` (:func:`.validate.ready_select`). PostgreSQL works on one batch while this
    process reads and checks the next, on the other core, and a million-row GeoPackage is never
    in memory whole. Times per step are added to ``timings_s``.
    """
    cols = writable_columns(job.layer)
    n = job.stream.total
    timings = job.report.timings_s
    target = sql.Identifier(job.layer.schema_name, job.layer.table)
    # --- stage: every mapped value as text, the geometry as EWKB (EPSG:4490)
    stage_cols = ["rn", *cols, "geom"]
    # Local buffers of TEMP tables (8 MB by default): a large ready table otherwise goes through
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
    create_lookups(cur, job.layer, job.cfg)
    cur.execute("CREATE TEMP TABLE import_repair_failed (rn integer PRIMARY KEY) ON COMMIT DROP")
    ready = ready_select(job.layer, target, cols)
    cur.execute(sql.SQL("CREATE TEMP TABLE import_ready ON COMMIT DROP AS {} WITH NO DATA").format(ready))
    cur.execute("CREATE TEMP TABLE import_errors (rn integer, col text, kind text, value text) ON COMMIT DROP")
    errors = error_rows(job.layer, cols, job.cmap, job.cfg, job.opts, sql.Identifier("r"))
    # what the checks read: every column of import_ready but the geometry (not copied once more)
    checked = sql.SQL(", ").join(
        sql.Identifier(c) for c in ["rn", *(x for col in cols for x in ("r_" + col, col)), "is_new"]
    )
    numeric_cols = [c for c in numeric_columns(job.layer, cols) if c in job.cmap.fields]
    loads: dict[frozenset[str], sql.Composed] = {}

    def load_sql(batch: SourceBatch) -> sql.Composed:
        """Each batch enters import_ready and has its attribute problems listed in one statement."""
        numeric = frozenset(c for c in numeric_cols if numeric_text(batch.frame[job.cmap.fields[c]]))
        if numeric not in loads:
            loads[numeric] = sql.SQL(
                "WITH r AS (INSERT INTO import_ready {} RETURNING {}) INSERT INTO import_errors {}"
            ).format(ready_select(job.layer, target, cols, numeric), checked, errors)
        return loads[numeric]

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
    copy_sql = sql.SQL("COPY import_stage ({}) FROM STDIN (FORMAT binary)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in stage_cols)
    )
    code_col = job.cmap.fields.get("code")
    codes: list[pd.Series] = []
    rows = 0
    linearized = 0
    step("stage (COPY)", 0, n)
    loader = _Loader(cur, job.layer, copy_sql, timings)
    try:
        for batch in _read(job.stream, timings, step, n):
            linearized += batch.linearized
            t0 = time.perf_counter()
            geometry = job.checker.check(batch.geometry, batch.start, batch.wkb)
            _add_time(timings, "check_geometries", t0)
            step("check geometries", batch.start + len(geometry), n)
            t0 = time.perf_counter()
            if code_col is not None:
                codes.append(batch.frame[code_col])
            size = len(geometry)
            chunks = _copy_data(
                [
                    _chunk(batch, job.cmap, cols, fixed, prefix, geometry, start, min(size, start + COPY_CHUNK))
                    for start in range(0, size, COPY_CHUNK)
                ]
            )
            loader.put(chunks, (job.checker.last_repair_rows + 1).tolist(), load_sql(batch))
            rows = batch.start + size
            _add_time(timings, "stage", t0)
            step("stage (COPY)", rows, n)
    finally:
        t0 = time.perf_counter()
        loader.close()  # the server's last batch; re-raises an error of the loader
        _add_time(timings, "stage", t0)
    if linearized:
        notes.append(linearized_note(linearized))
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


class _Loader:
    """The database half of staging, in a thread: COPY a batch, repair it, normalise and check it into ``import_ready``.

    The main thread hands over each batch's COPY data (at most two batches wait, so memory stays
    bounded) and goes on reading the file; the connection is used by this thread only until
    :meth:`close`, which waits for the last batch and re-raises the first error of the thread
    (a failed batch stops the loading, the rest is drained). psycopg releases the GIL while it
    waits for the server, so both cores work. The server's share is timed apart, as
    ``server_copy`` and ``server_normalise`` (it overlaps ``read`` and ``check_geometries``).
    """

    def __init__(
        self, cur: psycopg.Cursor[Any], layer: Layer, copy_sql: sql.Composed, timings: dict[str, float]
    ) -> None:
        self._cur, self._layer, self._copy_sql, self._timings = cur, layer, copy_sql, timings
        self._queue: queue.Queue[tuple[list[bytes], list[int], sql.Composed] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="import-loader", daemon=True)
        self._thread.start()

    def put(self, chunks: list[bytes], repair_rns: list[int], load: sql.Composed) -> None:
        """Queue one batch: its binary COPY data, the rn of its rows to repair, the statement filling import_ready."""
        if self._error is not None:
            raise self._error
        self._queue.put((chunks, repair_rns, load))

    def close(self) -> None:
        """Wait for the queued batches; raise the loader's error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        cur = self._cur
        try:
            while (item := self._queue.get()) is not None:
                chunks, repair_rns, load = item
                t0 = time.perf_counter()
                if chunks:  # binary COPY data starts with a header: an empty batch sends nothing
                    with cur.copy(self._copy_sql) as copy:
                        for chunk in chunks:
                            copy.write(chunk)
                _add_time(self._timings, "server_copy", t0)
                t0 = time.perf_counter()
                repair(cur, self._layer, repair_rns)
                cur.execute(load)
                cur.execute("TRUNCATE import_stage")
                _add_time(self._timings, "server_normalise", t0)
        except BaseException as exc:  # handed to the main thread by put()/close()
            self._error = exc
            while self._queue.get() is not None:
                pass


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


def _copy_data(chunks: list[pa.RecordBatch]) -> list[bytes]:
    """One batch's rows as binary ``COPY`` data (header, the chunks, trailer), encoded by ``pgpq``; none for no rows."""
    if not chunks:
        return []
    encoder = ArrowToPostgresBinaryEncoder(chunks[0].schema)
    return [encoder.write_header(), *(encoder.write_batch(chunk) for chunk in chunks), encoder.finish()]


def _chunk(
    batch: SourceBatch,
    cmap: ColumnMap,
    cols: list[str],
    fixed: dict[str, str | None],
    code_prefix: str | None,
    geometry: np.ndarray,
    start: int,
    stop: int,
) -> pa.RecordBatch:
    """Rows ``start:stop`` of a batch as the columns of ``import_stage``, built chunk by chunk (memory stays flat).

    Text cells are :func:`layers.values.text_series` of the file's cells; a missing cell is NULL
    and an empty string stays empty. The geometry is EWKB in EPSG:4490. ``rn`` (and a generated
    code) count from the file's first row, whatever the batch.
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
    arrays.append(_ewkb(geometry[start:stop]))
    return pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _ewkb(geoms: np.ndarray) -> pa.Array:
    """EWKB (EPSG:4490) of each geometry as an Arrow binary array, null where there is none."""
    blobs = np.full(len(geoms), None, dtype=object)
    ok = ~shapely.is_missing(geoms)
    if ok.any():
        blobs[ok] = shapely.to_wkb(shapely.set_srid(geoms[ok], STORAGE_SRID), hex=False, include_srid=True)
    return pa.array(blobs, type=pa.large_binary())
