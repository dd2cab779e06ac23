"""CSV ledger: UTF-8 with BOM (so Excel shows Chinese) or GBK, Chinese headers, WKT or lon/lat columns.

Written batch by batch as the rows arrive (each batch made a ledger by the same :func:`ledger`), so
a million parcels download in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from gis.io.tabular import write_csv
from layers.export.base import BatchJob, ExportJob, Writer, frame_of_batch, ledger


def write_batches(job: BatchJob, out: Path) -> None:
    """Write the ledger table, one batch of rows at a time (an empty layer still gets its header)."""
    write_csv(_ledgers(job), out, encoding=job.encoding or "UTF-8")


def _ledgers(job: BatchJob) -> Iterator[pd.DataFrame]:
    empty = True
    for batch in job.batches:
        empty = False
        yield ledger(ExportJob(job.layer, *frame_of_batch(batch), job.crs, job.encoding))
    if empty:
        none = pa.RecordBatch.from_pylist([], schema=job.schema)
        yield ledger(ExportJob(job.layer, *frame_of_batch(none), job.crs, job.encoding))


WRITER = Writer("csv", (".csv",), "text/csv; charset=utf-8", "CSV", write_batches=write_batches, takes_encoding=True)
