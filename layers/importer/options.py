"""What an import is asked to do (:class:`ImportOptions`) and what it did (:class:`ImportReport`).

Shared by every step of the pipeline, so it imports nothing else of the package.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gis.errors import RenewalError

Mode = Literal["append", "upsert", "replace"]
OnInvalid = Literal["repair", "reject"]
Progress = Callable[[str, int, int], None]

MAX_REPORTED_ERRORS = 500
"""Errors listed one by one in the report (all are counted)."""
COPY_CHUNK = 50_000
CODE_MAX = 100
NAME_MAX = 200
BULK_LOAD_ROWS = 50_000
"""From this many rows into an empty layer, secondary indexes are rebuilt after the insert."""
SAME_GEOMETRY_DEG = 1e-9
"""Geometries closer than this (degrees, ≈0.1 mm) count as unchanged in upserts."""
TEXT_MAX = 10_000
"""Longest value accepted in a text field without its own ``max_length``."""


@dataclass(frozen=True)
class ImportOptions:
    """How to import a file.

    Attributes
    ----------
    mode
        ``append`` (new codes only), ``upsert`` (update by code, add new), ``replace`` (the layer
        becomes the file: update by code, add new, delete the rest).
    on_invalid
        ``repair`` invalid geometries with ``ST_MakeValid`` (listed as warnings) or ``reject`` the file.
    crs
        CRS of the coordinates when the file has none (or to override it): EPSG code, CRS84, GCJ02, BD09.
    encoding
        Attribute encoding (shapefile, CSV); detected when not given.
    mapping
        YAML mapping file (or its parsed content): ``columns`` (source → field), ``values``
        (field → {source value → code}), ``defaults`` (field → value).
    layer_name
        GeoPackage layer, KML folder, shapefile in a zip, Excel sheet.
    dry_run
        Validate and count, write nothing.
    drop_z
        Drop heights/measures instead of rejecting 3-D files.
    effective_date
        Effective date of status changes (default: today).
    actor, channel, source_doc
        Who imports, through which channel (``import`` or ``api``), and the document behind it.
    file_name
        Name to record (for uploads saved under a temporary name).
    districts
        District scope of the importing editor (None: unrestricted).
    """

    mode: Mode = "append"
    on_invalid: OnInvalid = "repair"
    crs: str | None = None
    encoding: str | None = None
    mapping: Path | Mapping[str, Any] | None = None
    layer_name: str | None = None
    dry_run: bool = False
    drop_z: bool = False
    effective_date: dt.date | None = None
    actor: str | None = None
    channel: str = "import"
    source_doc: str | None = None
    file_name: str | None = None
    districts: frozenset[str] | None = None
    """For an editor limited to districts: the adcodes every imported (and updated) feature must lie in."""
    trail: Literal["auto", "triggers"] = "auto"
    """The layer's statement triggers always write the audit log and status history (:mod:`.trail`).
    ``auto``: a bulk load by the data owner records its insert once in the audit log (each feature keeps
    its history row); ``triggers``: one full audit image per feature whatever the size."""



@dataclass
class ImportReport:
    """What an import did or would do; serialised into ``renewal.imports.report`` and the API answer."""

    layer: str
    file_name: str
    mode: str
    status: str = "failed"
    import_id: int | None = None
    file_sha256: str | None = None
    file_size: int | None = None
    source_format: str | None = None
    source_layer: str | None = None
    source_crs: str | None = None
    encoding: str | None = None
    dry_run: bool = False
    on_invalid: str = "repair"
    effective_date: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "read": 0,
            "added": 0,
            "updated": 0,
            "unchanged": 0,
            "deleted": 0,
            "rejected": 0,
            "repaired": 0,
            "promoted": 0,
        }
    )
    mapping: dict[str, str] = field(default_factory=dict)
    ignored_columns: dict[str, str] = field(default_factory=dict)
    unmapped_columns: list[str] = field(default_factory=list)
    unknown_values: dict[str, dict[str, int]] = field(default_factory=dict)
    error_counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message: str | None = None
    actor: str = ""
    channel: str = "import"
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {k: v for k, v in self.__dict__.items()}

    @property
    def ok(self) -> bool:
        """Whether the file passed validation (applied or a clean dry run)."""
        return self.status in ("applied", "dry_run")


class Rejected(Exception):
    """Internal: validation failed; roll back and record."""


class ReadFailed(Exception):
    """Internal: the file could not be read on the way (a batch of a damaged file); carries the reader's error."""

    def __init__(self, error: RenewalError) -> None:
        super().__init__(error.message)
        self.error = error
