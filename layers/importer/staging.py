"""Step 4a, **stage**: every mapped value as text and the geometry as EWKB, ``COPY``'d into a TEMP table.

Nothing is interpreted here: the raw text keeps what the file said, so the report can quote it.
"""

from __future__ import annotations

import binascii
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from gis.io import Source
from layers.importer.job import ImportJob
from layers.importer.mapping import ColumnMap, writable_columns
from layers.importer.options import COPY_CHUNK, Progress
from layers.values import text_series


def stage(cur: psycopg.Cursor[Any], job: ImportJob, step: Progress) -> None:
    """Create ``import_stage`` (``rn``, every writable column as text, ``geom``) and ``COPY`` the file into it."""
    cols = writable_columns(job.layer)
    n = len(job.source)
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
    if "code" not in job.cmap.fields and "code" not in fixed:
        prefix = f"IMP-{(job.report.file_sha256 or 'x')[:8]}-"
        job.report.notes.append(f"No code column: codes generated as {prefix}000001 ...")
    copy_sql = sql.SQL("COPY import_stage ({}) FROM STDIN (FORMAT csv)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in stage_cols)
    )
    step("stage (COPY)", 0, n)
    with cur.copy(copy_sql) as copy:
        for start in range(0, n, COPY_CHUNK):
            stop = min(n, start + COPY_CHUNK)
            copy.write(_chunk_csv(job.source, job.cmap, cols, fixed, prefix, job.check.geometry, start, stop))
            step("stage (COPY)", stop, n)


def _chunk_csv(
    source: Source,
    cmap: ColumnMap,
    cols: list[str],
    fixed: dict[str, str | None],
    code_prefix: str | None,
    geometry: np.ndarray,
    start: int,
    stop: int,
) -> bytes:
    """Rows ``start:stop`` as CSV for ``COPY``, built chunk by chunk (memory stays flat) by Arrow's CSV writer.

    Text cells are :func:`layers.values.text_series` of the file's cells; a missing cell is an
    unquoted empty field (NULL), an empty string a quoted one. The geometry is hex EWKB in EPSG:4490.
    """
    size = stop - start
    arrays: list[pa.Array] = [pa.array(np.arange(start + 1, stop + 1, dtype=np.int32))]
    for col in cols:
        if col in cmap.fields:
            cells = text_series(source.frame[cmap.fields[col]].iloc[start:stop]).to_numpy()
            arrays.append(pa.array(cells, type=pa.string(), from_pandas=True))
        elif col in fixed:
            arrays.append(pa.array([fixed[col]] * size, type=pa.string()))
        else:
            arrays.append(pa.array([f"{code_prefix}{i:06d}" for i in range(start + 1, stop + 1)], type=pa.string()))
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
