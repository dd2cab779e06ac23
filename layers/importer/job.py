"""One import on its way through the steps in its transaction: what stage, validate and apply all read."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from gis.io import SourceStream
from gis.validate import GeometryCheck, GeometryChecker
from layers.importer.mapping import ColumnMap, MappingConfig
from layers.importer.options import ImportOptions, ImportReport
from layers.models import Layer


@dataclass(frozen=True)
class ImportJob:
    """The file, its target layer and what the pipeline has worked out about both before the transaction.

    Why one value: the in-transaction steps (:func:`.staging.stage`, :func:`.validate.validate`
    and the pipeline's stage-validate-apply) each took these same seven arguments in the same
    order; one record keeps them in step, so an input added to the import is added here once.
    ``report`` and ``checker`` are the mutable members: every step writes its counts, notes and
    errors into the report, and staging feeds the checker the file batch by batch.
    """

    layer: Layer
    stream: SourceStream
    cmap: ColumnMap
    cfg: MappingConfig
    checker: GeometryChecker
    opts: ImportOptions
    report: ImportReport


@dataclass
class Staged:
    """What staging learnt from the file: its rows, their geometry check, and their codes for the report."""

    rows: int
    check: GeometryCheck
    codes: pd.Series | None
    """The file's code cells (as read), row by row: the report names each problem row's code."""
    notes: list[str] = field(default_factory=list)
