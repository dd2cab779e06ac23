"""CSV ledger: UTF-8 with BOM (so Excel shows Chinese) or GBK, Chinese headers, WKT or lon/lat columns."""

from __future__ import annotations

from pathlib import Path

from gis.io.tabular import write_csv
from layers.export.base import ExportJob, Writer, ledger


def write(job: ExportJob, out: Path) -> None:
    """Write the ledger table."""
    write_csv(ledger(job), out, encoding=job.encoding or "UTF-8")


WRITER = Writer("csv", (".csv",), "text/csv; charset=utf-8", "CSV", write, takes_encoding=True)
