"""Step 4a, **stage**: every mapped value as text and the geometry as EWKB, ``COPY``'d into a TEMP table.

Nothing is interpreted here: the raw text keeps what the file said, so the report can quote it.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.io import Source
from gis.validate import GeometryCheck
from layers.importer.mapping import ColumnMap, MappingConfig, writable_columns
from layers.importer.options import COPY_CHUNK, ImportOptions, ImportReport, Progress
from layers.models import Layer
from layers.values import text_series


def stage(
    cur: psycopg.Cursor[Any],
    layer: Layer,
    source: Source,
    cmap: ColumnMap,
    cfg: MappingConfig,
    check: GeometryCheck,
    opts: ImportOptions,
    report: ImportReport,
    step: Progress,
) -> None:
    """Create ``import_stage`` (``rn``, every writable column as text, ``geom``) and ``COPY`` the file into it."""
    cols = writable_columns(layer)
    n = len(source)
    # --- stage: every mapped value as text, the geometry as hex EWKB (EPSG:4490)
    stage_cols = ["rn", *cols, "geom"]
    # Local buffers of TEMP tables (8 MB by default): a large staging table otherwise goes through
    # the disk several times. Allowed only before the session's first TEMP table, as here.
    cur.execute("SELECT set_config('temp_buffers', %s, true)", (f"{min(512, 32 + n // 4000)}MB",))
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
    frame = pd.DataFrame({"rn": np.arange(1, n + 1)})
    for col in cols:
        if col in cmap.fields:
            frame[col] = text_series(source.frame[cmap.fields[col]]).to_numpy()
        elif col in cfg.defaults:
            frame[col] = str(cfg.defaults[col])
        elif col == "code" and opts.mode == "append":
            prefix = f"IMP-{(report.file_sha256 or 'x')[:8]}-"
            frame[col] = [f"{prefix}{i:06d}" for i in range(1, n + 1)]
            report.notes.append(f"No code column: codes generated as {prefix}000001 ...")
        else:
            frame[col] = None
    geoms = check.geometry
    ok = ~shapely.is_missing(geoms)
    hexes = np.full(n, None, dtype=object)
    if ok.any():
        hexes[ok] = shapely.to_wkb(shapely.set_srid(geoms[ok], 4490), hex=True, include_srid=True)
    frame["geom"] = hexes
    copy_sql = sql.SQL("COPY import_stage ({}) FROM STDIN (FORMAT csv)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in stage_cols)
    )
    step("stage (COPY)", 0, n)
    with cur.copy(copy_sql) as copy:
        for start in range(0, n, COPY_CHUNK):
            buf = io.StringIO()
            frame.iloc[start : start + COPY_CHUNK].to_csv(buf, header=False, index=False)
            copy.write(buf.getvalue())
            step("stage (COPY)", min(n, start + COPY_CHUNK), n)
