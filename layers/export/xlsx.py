"""Excel ledger: Chinese headers from the registry labels, status as its label, areas in mu."""

from __future__ import annotations

from pathlib import Path

from gis.io.tabular import XLSX_CELL_LIMIT, write_xlsx
from layers.export.base import ExportJob, Writer, ledger


def write(job: ExportJob, out: Path) -> None:
    """Write one sheet named after the layer."""
    write_xlsx(ledger(job, cell_limit=XLSX_CELL_LIMIT), out, sheet=job.layer.title)


WRITER = Writer("xlsx", (".xlsx",), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel",
                write)
