"""Import GIS files into a layer: map, validate, stage with COPY, apply in one transaction.

The pipeline, for every format alike:

1. **Read** the file (:mod:`gis.io`): attribute columns as named in the file, geometries, declared CRS.
2. **Map** source columns to layer fields by name, Chinese label or alias from the registry
   (名称, 所在区, 状态, 面积（亩） ...), or through a YAML mapping file.
3. **Check geometries** in Python, vectorised (:mod:`gis.validate`): missing/empty, NaN, 3-D,
   wrong type, outside the city (with the likely cause), invalid (reason and location),
   duplicates; transform to CGCS2000 (EPSG:4490), GCJ-02/BD-09 included.
4. **Stage** with ``COPY`` into a TEMP table, then normalise and validate **in SQL**, set-based:
   types and ranges, required values, choice and status vocabularies (Chinese labels → codes),
   district names → adcodes, duplicate and (for ``append``) existing codes; invalid geometries
   repaired with ``ST_MakeValid`` (polygonal parts kept) or rejected.
5. **Apply** in the same transaction (``append``, ``upsert`` by code, or ``replace``), with
   ``renewal.actor``/``channel``/``effective_date`` set so the layer triggers write the status
   history and the audit log, and record the import in ``renewal.imports``.

Any error in any row rejects the whole file: nothing is written and the report lists every
problem (row, code, field, value, message). The layer only ever sees a complete, valid import:
a failure or a kill at any moment rolls the transaction back. ``--dry-run`` runs everything,
then rolls back.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
import shapely
import yaml
from psycopg import sql

from gis.crs import CrsRef, parse_crs
from gis.errors import CRSError, InvalidInputError, RenewalError, ServiceUnavailableError
from gis.io import Source, read_source
from gis.validate import FAMILY, GeometryIssue, check_geometries
from layers.models import FieldDef, Layer
from layers.registry import get_registry

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
TRAIL_NOTE = "Audit log and status history written set-based by the importer (row triggers off for this import)."
TEXT_MAX = 10_000
"""Longest value accepted in a text field without its own ``max_length``."""

GENERIC_NAMES: dict[str, tuple[str, ...]] = {
    "code": ("code", "编码", "编号", "代码", "项目编号", "项目编码", "地块编号", "地块编码", "bh", "dkbh"),
    "name": ("name", "名称", "项目名称", "地块名称", "mc", "title"),
    "district_code": (
        "district_code",
        "区县代码",
        "所在区",
        "所在区县",
        "区县",
        "所属区县",
        "所属区",
        "行政区",
        "行政区划",
        "district",
        "区",
        "adcode",
    ),
    "status": ("status", "状态", "阶段", "进度", "当前状态", "建设状态", "status_code"),
}
"""Column names recognised for the common columns of every layer (besides the layer's own labels)."""


# --------------------------------------------------------------------------------------- options


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
    """How the audit log and status history are written: ``auto`` set-based by the importer when the
    database role may switch the row triggers off (the data owner: CLI), else by the triggers (the API's
    ``renewal_app``); ``triggers`` always by the row triggers. The rows are the same either way."""


@dataclass(frozen=True)
class MappingConfig:
    """A parsed mapping file."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class ColumnMap:
    """Which source column feeds which layer column."""

    fields: dict[str, str]
    """Layer column → source column."""
    ignored: dict[str, str]
    """Source column → why it is not imported (computed by the database, duplicate ...)."""
    unmapped: list[str]
    """Source columns that match no field."""


def load_mapping(layer: Layer, mapping: Path | Mapping[str, Any] | None) -> MappingConfig:
    """Parse and check a mapping file against the layer's columns."""
    if mapping is None:
        return MappingConfig()
    if isinstance(mapping, Path):
        try:
            data = yaml.safe_load(mapping.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"The mapping file '{mapping.name}' cannot be read: {exc}") from exc
    else:
        data = dict(mapping)
    if not isinstance(data, dict) or not set(data) <= {"columns", "values", "defaults"}:
        raise InvalidInputError("A mapping file has the keys 'columns', 'values' and 'defaults' (all optional).")
    targets = set(writable_columns(layer))
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    values = {str(k): {str(a): str(b) for a, b in (v or {}).items()} for k, v in (data.get("values") or {}).items()}
    defaults = {str(k): v for k, v in (data.get("defaults") or {}).items()}
    unknown = sorted(({*columns.values(), *values, *defaults}) - targets)
    if unknown:
        raise InvalidInputError(
            f"The mapping names {', '.join(unknown)}, which layer '{layer.id}' does not have. "
            f"Its columns are: {', '.join(sorted(targets))}."
        )
    return MappingConfig(columns=columns, values=values, defaults=defaults)


def writable_columns(layer: Layer) -> list[str]:
    """Columns an import may write: code, name, district_code, status and non-generated fields."""
    cols = ["code", "name", "district_code"]
    if layer.has_status:
        cols.append("status")
    return cols + [f.name for f in layer.fields if not f.generated]


def _norm(name: str) -> str:
    text = str(name).strip().lower()
    for a, b in (("（", "("), ("）", ")"), (" ", ""), ("\u3000", ""), ("_", "")):
        text = text.replace(a, b)
    return text


def _candidates(layer: Layer) -> dict[str, list[list[str]]]:
    """For each writable column, its recognised names in priority tiers (name, label, aliases/generic)."""
    out: dict[str, list[list[str]]] = {}
    labels = layer.labels
    for col in writable_columns(layer):
        tiers: list[list[str]] = [[col], [labels.get(col, col)]]
        if col in GENERIC_NAMES:
            generic = [
                n
                for n in GENERIC_NAMES[col]
                if not (layer.id == "districts" and n == "adcode" and col == "district_code")
            ]
            if col == "code" and layer.id == "districts":
                generic = ["adcode", *generic]
            if col == "status" and layer.lifecycle is not None:
                generic = [layer.lifecycle.label, layer.lifecycle.label_en, *generic]
            tiers.append(generic)
        else:
            fdef = layer.field(col)
            tiers.append([fdef.label_en, *fdef.aliases])
        out[col] = tiers
    return out


def map_columns(layer: Layer, columns: list[str], cfg: MappingConfig | None = None) -> ColumnMap:
    """Match the file's columns to the layer's columns.

    The mapping file wins; then exact names, then Chinese labels, then aliases and common
    spellings; then names cut to 10 characters by the shapefile format. Each source column
    feeds at most one layer column. Columns the database computes (areas, lengths) are
    recognised and ignored.
    """
    cfg = cfg or MappingConfig()
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(_norm(col), col)
    fields: dict[str, str] = {}
    used: set[str] = set()
    for src, target in cfg.columns.items():
        if src not in columns:
            raise InvalidInputError(
                f"The mapping names the column '{src}', which the file does not have. "
                f"The file's columns are: {', '.join(columns)}."
            )
        fields[target] = src
        used.add(src)
    cands = _candidates(layer)
    for tier in range(3):
        for target, tiers in cands.items():
            if target in fields:
                continue
            for name in tiers[tier]:
                found = by_norm.get(_norm(name))
                if found is not None and found not in used:
                    fields[target] = found
                    used.add(found)
                    break
    for target in cands:
        if target in fields:
            continue
        for src in columns:
            if src not in used and len(src) == 10 and target.startswith(src.lower()):
                fields[target] = src
                used.add(src)
                break
    ignored: dict[str, str] = {}
    generated = {f.name: f for f in layer.fields if f.generated}
    for src in columns:
        if src in used:
            continue
        for fdef in generated.values():
            if _norm(src) in {_norm(fdef.name), _norm(fdef.label), *(_norm(a) for a in fdef.aliases)} or (
                len(src) == 10 and fdef.name.startswith(src.lower())
            ):
                ignored[src] = f"{fdef.label} is computed by the database from the geometry"
        if src.lower() in ("created_at", "updated_at", "id", "fid", "status_label", "创建时间", "更新时间"):
            ignored[src] = "managed by the database"
    unmapped = [c for c in columns if c not in used and c not in ignored]
    return ColumnMap(fields=fields, ignored=ignored, unmapped=unmapped)


# --------------------------------------------------------------------------------------- report


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


class _Rejected(Exception):
    """Internal: validation failed; roll back and record."""


# --------------------------------------------------------------------------------------- helpers


def file_sha256(path: Path) -> tuple[str | None, int | None]:
    """SHA-256 and size of a file (None for folders)."""
    if not path.is_file():
        return None, None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest(), path.stat().st_size


def _resolve_crs(source: Source, opts: ImportOptions, name: str, report: ImportReport) -> CrsRef:
    if opts.crs:
        ref = parse_crs(opts.crs)
        if source.crs is not None and not source.crs_implicit and source.crs != ref:
            report.notes.append(f"The file declares {source.crs.label}; --crs {ref.label} used instead, as asked.")
        return ref
    if source.crs is not None:
        return source.crs
    why = {
        "shp": "the shapefile has no .prj file",
        "csv": "a CSV table has no coordinate system",
        "xlsx": "an Excel ledger has no coordinate system",
    }.get(source.format, "the file declares none")
    raise CRSError(
        f"'{name}' does not say which coordinate system its coordinates are in ({why}). Pass --crs, e.g. "
        "--crs EPSG:4490 (CGCS2000 degrees), --crs EPSG:4547 (CGCS2000 Gauss-Krüger 114°E), "
        "--crs EPSG:4526 (same, zone 38 with zone number), --crs gcj02 (Gaode/web maps)."
    )


def _suggest_layers(current: Layer) -> Callable[[str], list[str]]:
    def suggest(family: str) -> list[str]:
        return [lyr.id for lyr in get_registry() if FAMILY.get(lyr.geometry_type) == family and lyr.id != current.id]

    return suggest


def _text_series(values: pd.Series) -> pd.Series:
    """Raw cell values as text for COPY (None for missing).

    Vectorised for the column types of a large file (text, whole numbers, decimals); other
    columns (dates, mixed Excel cells) go value by value through :func:`_cell`, with the same result.
    """
    mask = values.isna().to_numpy()
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        out = values.to_numpy(dtype=object)
        out[mask] = None
        return pd.Series(out, index=values.index, dtype=object)
    if pd.api.types.is_integer_dtype(values.dtype) and not mask.any():
        return pd.Series(values.to_numpy().astype(str).astype(object), index=values.index, dtype=object)
    if pd.api.types.is_float_dtype(values.dtype) and not isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        arr = values.to_numpy(dtype=np.float64)
        res = np.full(len(arr), None, dtype=object)
        whole = ~mask & np.isfinite(arr) & (np.abs(arr) < 1e15)
        whole[whole] = arr[whole] == np.trunc(arr[whole])
        res[whole] = arr[whole].astype(np.int64).astype(str)
        rest = ~mask & ~whole
        if rest.any():
            res[rest] = [repr(v) for v in arr[rest].tolist()]
        return pd.Series(res, index=values.index, dtype=object)
    s = values.astype(object)
    cells = s.map(_cell)
    cells[mask] = None
    return cells


def _cell(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return repr(v) if not v.is_integer() or abs(v) >= 1e15 else str(int(v))
    if isinstance(v, (dt.datetime, pd.Timestamp)):
        return v.isoformat()
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


@contextmanager
def _connect(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(conninfo, application_name="renewal-import")
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError("The database is not reachable; try again shortly.") from exc
    try:
        yield conn
    finally:
        conn.close()


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


# --------------------------------------------------------------------------------------- main entry


def run_import(
    conninfo: str,
    layer_id: str,
    path: Path,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` into layer ``layer_id``; return the report (also stored in ``renewal.imports``).

    Returns a report with ``status`` ``applied``, ``dry_run`` or ``rejected`` (row-level problems,
    listed in ``errors``; nothing written).

    Raises
    ------
    InvalidInputError
        For a file that cannot be read at all (damaged, empty, no CRS, wrong columns ...); the
        attempt is still recorded (``status = 'failed'``) and its id is in ``detail['import_id']``.
    """
    opts = options or ImportOptions()
    layer = get_registry().get(layer_id)
    name = opts.file_name or path.name
    report = ImportReport(
        layer=layer.id,
        file_name=name,
        mode=opts.mode,
        dry_run=opts.dry_run,
        on_invalid=opts.on_invalid,
        actor=opts.actor or getpass.getuser(),
        channel=opts.channel,
        effective_date=(opts.effective_date or dt.date.today()).isoformat(),
    )
    if opts.mode not in ("append", "upsert", "replace"):
        raise InvalidInputError(f"Unknown import mode '{opts.mode}': use append, upsert or replace.")
    if opts.on_invalid not in ("repair", "reject"):
        raise InvalidInputError(f"Unknown --on-invalid '{opts.on_invalid}': use repair or reject.")
    started = dt.datetime.now(dt.UTC)
    tick = time.perf_counter()

    def step(label: str, done: int, total: int) -> None:
        if progress:
            progress(label, done, total)

    try:
        report.file_sha256, report.file_size = file_sha256(path)
        step("read", 0, 1)
        source = read_source(path, layer_name=opts.layer_name, encoding=opts.encoding, prefer=(layer.id, layer.table))
        report.source_format, report.source_layer, report.encoding = source.format, source.layer, source.encoding
        report.notes.extend(source.notes)
        report.counts["read"] = len(source)
        step("read", 1, 1)
        report.timings_s["read"] = round(time.perf_counter() - tick, 3)
        if len(source) == 0:
            raise InvalidInputError(f"'{name}' contains no features (zero rows).")
        crs = _resolve_crs(source, opts, name, report)
        report.source_crs = crs.label
        cfg = load_mapping(layer, opts.mapping)
        cmap = map_columns(layer, [str(c) for c in source.frame.columns], cfg)
        report.mapping, report.ignored_columns, report.unmapped_columns = cmap.fields, cmap.ignored, cmap.unmapped
        _check_mapping(layer, cmap, cfg, opts, name)
    except RenewalError as exc:
        report.status = "failed"
        report.message = exc.message
        report.import_id = _record_outside(conninfo, report, started)
        exc.detail = {**exc.detail, "import_id": report.import_id, "report": report.as_dict()}
        raise

    t0 = time.perf_counter()
    step("check geometries", 0, len(source))
    check = check_geometries(
        source.geometry,
        src_crs=crs,
        target_type=layer.geometry_type,
        on_invalid=opts.on_invalid,
        drop_z=opts.drop_z,
        layer_label=f"layer '{layer.id}' ({layer.title})",
        suggest_layers=_suggest_layers(layer),
    )
    for row, msg in source.row_errors:
        check.errors.append(GeometryIssue(row, "bad_geometry", msg))
        check.geometry[row] = None
    step("check geometries", len(source), len(source))
    report.timings_s["check_geometries"] = round(time.perf_counter() - t0, 3)
    report.counts["promoted"] = check.promoted
    if check.explanation:
        report.notes.append(check.explanation)

    try:
        with _connect(conninfo) as conn:
            try:
                with conn.transaction():
                    _stage_validate_apply(conn, layer, source, cmap, cfg, check, opts, report, step, started)
            except _Rejected:
                pass
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                diag = exc.diag.message_primary or str(exc)
                report.status = "rejected"
                report.message = f"The database refused the import: {diag}"
                report.errors.append({"row": None, "kind": "database", "message": report.message})
                report.error_counts["database"] = 1
            if report.status != "applied":
                report.import_id = _record(conn, report, started)
                conn.commit()
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError(
            "The database connection was lost during the import; nothing was written. Try again."
        ) from exc
    report.timings_s["total"] = round(time.perf_counter() - tick, 3)
    return report


def _check_mapping(layer: Layer, cmap: ColumnMap, cfg: MappingConfig, opts: ImportOptions, name: str) -> None:
    have = set(cmap.fields) | set(cfg.defaults)
    if "code" not in have and opts.mode != "append":
        raise InvalidInputError(
            f"'{name}' has no code column ({layer.code_label}/code/编码/编号), so features cannot be matched for "
            f"--mode {opts.mode}. Add the column, map it in a --mapping file, or use --mode append."
        )
    if "name" not in have:
        cols = ", ".join(cmap.unmapped) or "none"
        raise InvalidInputError(
            f"'{name}' has no name column ({layer.name_label}/名称/name). Unrecognised columns: {cols}. "
            "Rename the column or map it with --mapping."
        )
    if opts.mode == "append":
        missing = [f for f in layer.fields if f.required and not f.generated and f.name not in have]
        if missing:
            names = ", ".join(f"{f.label} ({f.name})" for f in missing)
            raise InvalidInputError(f"'{name}' lacks required columns for layer '{layer.id}': {names}.")


# --------------------------------------------------------------------------------------- SQL stages


def _stage_validate_apply(
    conn: psycopg.Connection[Any],
    layer: Layer,
    source: Source,
    cmap: ColumnMap,
    cfg: MappingConfig,
    check: Any,
    opts: ImportOptions,
    report: ImportReport,
    step: Progress,
    started: dt.datetime,
) -> None:
    cur = conn.cursor()
    target = sql.Identifier(layer.schema_name, layer.table)
    cols = writable_columns(layer)
    n = len(source)
    t0 = time.perf_counter()

    # --- stage: every mapped value as text, the geometry as hex EWKB (EPSG:4490)
    stage_cols = ["rn", *cols, "geom"]
    # Local buffers of TEMP tables (8 MB by default): a large staging table otherwise goes through
    # the disk several times. Allowed only before the session's first TEMP table, as here.
    cur.execute("SELECT set_config('temp_buffers', %s, true)", (f"{min(512, 32 + n // 4000)}MB",))
    cur.execute(
        sql.SQL("CREATE TEMP TABLE import_stage ({}) ON COMMIT DROP").format(
            sql.SQL(", ").join(
                [sql.SQL("rn integer"), *[sql.SQL("{} text").format(_ident(c)) for c in cols], sql.SQL("geom geometry")]
            )
        )
    )
    frame = pd.DataFrame({"rn": np.arange(1, n + 1)})
    for col in cols:
        if col in cmap.fields:
            frame[col] = _text_series(source.frame[cmap.fields[col]]).to_numpy()
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
        sql.SQL(", ").join(_ident(c) for c in stage_cols)
    )
    step("stage (COPY)", 0, n)
    with cur.copy(copy_sql) as copy:
        for start in range(0, n, COPY_CHUNK):
            buf = io.StringIO()
            frame.iloc[start : start + COPY_CHUNK].to_csv(buf, header=False, index=False)
            copy.write(buf.getvalue())
            step("stage (COPY)", min(n, start + COPY_CHUNK), n)
    report.timings_s["stage"] = round(time.perf_counter() - t0, 3)

    # --- normalise + validate in SQL
    t0 = time.perf_counter()
    step("validate", 0, 1)
    _lookups(cur, layer, cfg)
    repair_rns = (check.repair_rows + 1).tolist()
    report.counts["repaired"] = len(repair_rns)
    cur.execute(_ready_sql(layer, target, cols, cmap, cfg), {"repair": repair_rns})
    cur.execute("CREATE INDEX ON import_ready (code)")
    cur.execute("ANALYZE import_ready")
    errors = _sql_errors(cur, layer, cols, cmap, cfg, opts)
    issues = [*check.errors]
    _collect_report(cur, layer, source, cmap, issues, errors, check.warnings, report)
    report.timings_s["validate"] = round(time.perf_counter() - t0, 3)
    step("validate", 1, 1)
    if report.error_counts:
        report.status = "rejected"
        report.counts["rejected"] = _count_rejected(cur, issues)
        report.message = (
            f"{report.counts['rejected']} of {n} features have problems; nothing was imported. "
            "Fix the file (see the errors) and import it again."
        )
        raise _Rejected

    # --- apply, in this same transaction
    t0 = time.perf_counter()
    step("apply", 0, 1)
    eff = opts.effective_date or dt.date.today()
    cur.execute(
        "SELECT set_config('renewal.actor', %s, true), set_config('renewal.channel', %s, true), "
        "set_config('renewal.effective_date', %s, true), set_config('renewal.source_doc', %s, true), "
        "set_config('renewal.history_mode', '', true), set_config('renewal.audit_mode', '', true), "
        "set_config('synchronous_commit', 'off', true), set_config('maintenance_work_mem', '256MB', true)",
        (report.actor, opts.channel, eff.isoformat(), opts.source_doc or report.file_name),
    )
    report.import_id = _record(conn, report, started, status="applied")
    cur.execute("SELECT set_config('renewal.note', %s, true)", (f"import #{report.import_id}: {report.file_name}",))
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    trail = _SetBasedTrail.start(cur, layer, opts) if opts.trail != "triggers" else None
    if trail is not None:
        report.notes.append(TRAIL_NOTE)
    _apply(cur, layer, target, cols, cmap, cfg, opts, report, trail)
    report.timings_s["apply"] = round(time.perf_counter() - t0, 3)
    step("apply", 1, 1)
    if opts.dry_run:
        report.status = "dry_run"
        report.import_id = None
        raise _Rejected  # rolls the transaction back; run_import records the dry run
    report.status = "applied"
    _update_record(cur, report)


def _lookups(cur: psycopg.Cursor[Any], layer: Layer, cfg: MappingConfig) -> None:
    """TEMP lookup tables: every accepted spelling (lower-case) → stored code."""
    cur.execute(
        "CREATE TEMP TABLE import_lookup (col text, key text, code text, PRIMARY KEY (col, key)) ON COMMIT DROP"
    )
    rows: dict[tuple[str, str], str] = {}
    if layer.lifecycle is not None:
        for key, code in layer.lifecycle.by_label().items():
            rows[("status", key)] = code
    for f in layer.fields:
        for ch in f.choices or []:
            for key in (ch.code, ch.label, ch.label_en or ""):
                if key:
                    rows[(f.name, key.strip().lower())] = ch.code
    for col, values in cfg.values.items():
        for src, code in values.items():
            rows[(col, src.strip().lower())] = code
    with cur.copy("COPY import_lookup (col, key, code) FROM STDIN") as copy:
        for (col, key), code in rows.items():
            copy.write_row((col, key, code))
    cur.execute(
        """
        INSERT INTO import_lookup (col, key, code)
        SELECT DISTINCT ON (k) 'district_code', k, code FROM renewal.districts AS d,
          LATERAL (VALUES (lower(d.code)), (lower(d.name)), (lower(regexp_replace(d.name, '(区|县|市)$', ''))))
            AS v(k)
        WHERE k <> ''
        ORDER BY k, code
        ON CONFLICT DO NOTHING
        """
    )


_INT_RE = r"^[-+]?\d{1,15}(\.0*)?$"
_NUM_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?$"
_TRUE = ("true", "t", "1", "yes", "y", "是", "有")
_FALSE = ("false", "f", "0", "no", "n", "否", "无")


def _coded(layer: Layer, col: str) -> bool:
    if col in ("status", "district_code"):
        return True
    if col in ("code", "name"):
        return False
    return bool(layer.field(col).choices)


def _lookup_alias(col: str) -> sql.Identifier:
    return _ident("lk_" + col)


def _value_expr(layer: Layer, col: str) -> sql.Composable:
    """The normalised value of ``s.<col>`` (NULL where it does not parse; the raw text stays in r_<col>)."""
    raw = sql.SQL("nullif(btrim(s.{}), '')").format(_ident(col))
    if _coded(layer, col):
        lk = sql.SQL("{}.code").format(_lookup_alias(col))
        if col == "district_code":
            return sql.SQL(
                "coalesce({}, CASE WHEN {} ~ '^\\d{{6}}$' AND NOT EXISTS (SELECT 1 FROM renewal.districts) THEN {} END)"
            ).format(lk, raw, raw)
        return lk
    if col in ("code", "name"):
        return raw
    fdef = layer.field(col)
    if fdef.type == "integer":
        return sql.SQL("CASE WHEN {r} ~ {re} THEN trunc({r}::numeric) END").format(r=raw, re=sql.Literal(_INT_RE))
    if fdef.type == "number":
        return sql.SQL("CASE WHEN {r} ~ {re} THEN {r}::numeric END").format(r=raw, re=sql.Literal(_NUM_RE))
    if fdef.type == "boolean":
        return sql.SQL("CASE WHEN lower({r}) = ANY({t}) THEN true WHEN lower({r}) = ANY({f}) THEN false END").format(
            r=raw, t=sql.Literal(list(_TRUE)), f=sql.Literal(list(_FALSE))
        )
    if fdef.type == "date":
        return sql.SQL(
            "CASE WHEN {r} ~ '^\\d{{4}}-\\d{{1,2}}-\\d{{1,2}}' THEN to_date(substr({r}, 1, 10), 'YYYY-MM-DD') END"
        ).format(r=raw)
    return raw


def _geom_expr(layer: Layer) -> sql.Composable:
    dim = {"Point": 1, "MultiPoint": 1, "LineString": 2, "MultiLineString": 2}.get(layer.geometry_type, 3)
    g = sql.SQL(
        "CASE WHEN s.rn = ANY(%(repair)s) THEN ST_CollectionExtract(ST_MakeValid(s.geom), {}) ELSE s.geom END"
    ).format(sql.Literal(dim))
    if layer.geometry_type.startswith("Multi"):
        return sql.SQL("ST_Multi({})").format(g)
    if layer.geometry_type == "Point":
        return sql.SQL("CASE WHEN GeometryType(s.geom) = 'MULTIPOINT' THEN ST_GeometryN(s.geom, 1) ELSE s.geom END")
    return g


def _ready_sql(
    layer: Layer, target: sql.Composable, cols: list[str], cmap: ColumnMap, cfg: MappingConfig
) -> sql.Composed:
    parts: list[sql.Composable] = [sql.SQL("s.rn")]
    for col in cols:
        parts.append(sql.SQL("s.{} AS {}").format(_ident(col), _ident("r_" + col)))
        parts.append(sql.SQL("{} AS {}").format(_value_expr(layer, col), _ident(col)))
    parts.append(sql.SQL("{} AS geom").format(_geom_expr(layer)))
    parts.append(
        sql.SQL("NOT EXISTS (SELECT 1 FROM {} AS t WHERE t.code = nullif(btrim(s.code), '')) AS is_new").format(target)
    )
    joins = [
        sql.SQL("LEFT JOIN import_lookup AS {a} ON {a}.col = {c} AND {a}.key = lower(nullif(btrim(s.{i}), ''))").format(
            a=_lookup_alias(col), c=sql.Literal(col), i=_ident(col)
        )
        for col in cols
        if _coded(layer, col)
    ]
    return sql.SQL("CREATE TEMP TABLE import_ready ON COMMIT DROP AS SELECT {} FROM import_stage AS s {}").format(
        sql.SQL(", ").join(parts), sql.SQL(" ").join(joins)
    )


def _sql_errors(
    cur: psycopg.Cursor[Any], layer: Layer, cols: list[str], cmap: ColumnMap, cfg: MappingConfig, opts: ImportOptions
) -> list[tuple[int, str, str, str | None]]:
    """(rn, column, kind, raw value) for every attribute problem, found in one pass plus the duplicate checks."""
    checks: list[sql.Composable] = []

    def add(cond: sql.Composable, col: str, kind: str, value: sql.Composable | None = None) -> None:
        checks.append(
            sql.SQL("({}, {}, {}, {})").format(
                cond, sql.Literal(col), sql.Literal(kind), value if value is not None else sql.SQL("NULL::text")
            )
        )

    mapped = set(cmap.fields) | set(cfg.defaults)
    raw = {c: sql.SQL("r.{}").format(_ident("r_" + c)) for c in cols}
    val = {c: sql.SQL("r.{}").format(_ident(c)) for c in cols}
    present = {c: sql.SQL("nullif(btrim({}), '') IS NOT NULL").format(raw[c]) for c in cols}
    add(sql.SQL("r.code IS NULL"), "code", "required")
    add(sql.SQL("length(r.code) > {}").format(sql.Literal(CODE_MAX)), "code", "too_long", sql.SQL("r.code"))
    add(sql.SQL("r.name IS NULL AND (r.is_new OR {})").format(sql.Literal("name" in mapped)), "name", "required")
    add(sql.SQL("length(r.name) > {}").format(sql.Literal(NAME_MAX)), "name", "too_long", sql.SQL("r.name"))
    for col in cols:
        if col in ("code", "name"):
            continue
        if col not in ("status", "district_code") and layer.field(col).required:
            add(
                sql.SQL("NOT {} AND (r.is_new OR {})").format(present[col], sql.Literal(col in mapped)), col, "required"
            )
        if _coded(layer, col):
            add(sql.SQL("{} AND {} IS NULL").format(present[col], val[col]), col, "unknown_value", raw[col])
            continue
        fdef = layer.field(col)
        if fdef.type in ("integer", "number", "boolean", "date"):
            add(sql.SQL("{} AND {} IS NULL").format(present[col], val[col]), col, "not_" + fdef.type, raw[col])
        if fdef.type in ("integer", "number"):
            lo = fdef.min if fdef.min is not None else (-2147483648 if fdef.type == "integer" else None)
            hi = fdef.max if fdef.max is not None else (2147483647 if fdef.type == "integer" else None)
            if lo is not None:
                add(sql.SQL("{} < {}").format(val[col], sql.Literal(lo)), col, "out_of_range", raw[col])
            if hi is not None:
                add(sql.SQL("{} > {}").format(val[col], sql.Literal(hi)), col, "out_of_range", raw[col])
        if fdef.type == "text":
            limit = fdef.max_length or TEXT_MAX
            add(
                sql.SQL("length({}) > {}").format(val[col], sql.Literal(limit)),
                col,
                "too_long",
                sql.SQL("left({}, 40)").format(raw[col]),
            )
    add(sql.SQL("r.geom IS NOT NULL AND ST_IsEmpty(r.geom)"), "geometry", "repair_failed")
    if opts.mode == "append":
        add(sql.SQL("r.code IS NOT NULL AND NOT r.is_new"), "code", "code_exists", sql.SQL("r.code"))
    if opts.districts is not None:
        scope = sql.Literal(sorted(opts.districts))
        add(
            sql.SQL("r.district_code IS NULL OR NOT (r.district_code = ANY({}::text[]))").format(scope),
            "district_code",
            "out_of_scope",
            sql.SQL("r.r_district_code"),
        )
        add(
            sql.SQL(
                "NOT r.is_new AND EXISTS (SELECT 1 FROM {} AS t WHERE t.code = r.code AND "
                "(t.district_code IS NULL OR NOT (t.district_code = ANY({}::text[]))))"
            ).format(sql.Identifier(layer.schema_name, layer.table), scope),
            "code",
            "out_of_scope",
            sql.SQL("r.code"),
        )
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE import_errors ON COMMIT DROP AS "
            "SELECT r.rn, e.col, e.kind, e.value FROM import_ready AS r "
            "CROSS JOIN LATERAL (VALUES {}) AS e(bad, col, kind, value) WHERE e.bad"
        ).format(sql.SQL(", ").join(checks))
    )
    cur.execute(
        "INSERT INTO import_errors (rn, col, kind, value) "
        "SELECT r.rn, 'code', 'duplicate_code', r.code FROM import_ready AS r "
        "JOIN (SELECT code FROM import_ready WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1) AS d "
        "USING (code)"
    )
    cur.execute("SELECT rn, col, kind, value FROM import_errors ORDER BY rn, col LIMIT %s", (MAX_REPORTED_ERRORS * 4,))
    rows = [(int(a), str(b), str(c), d) for a, b, c, d in cur.fetchall()]
    cur.execute("SELECT count(*) FROM import_errors")
    total = cur.fetchone()
    if total and total[0] > len(rows):
        rows.append((-1, "", "__more__", str(total[0] - len(rows))))
    return rows


def _message(layer: Layer, col: str, kind: str, value: str | None) -> str:
    label = layer.labels.get(col, col) if col != "geometry" else "geometry"
    what = f"{label} ({col})"
    shown = f"'{value}'" if value is not None else ""
    if kind == "required":
        return f"{what} is empty; it is required"
    if kind == "too_long":
        return f"{what} is too long ({shown}...); shorten it"
    if kind == "unknown_value":
        if col == "status" and layer.lifecycle is not None:
            allowed = ", ".join(f"{s.label} ({s.code})" for s in layer.lifecycle.statuses)
            return f"{shown} is not a status of layer '{layer.id}'. Allowed: {allowed}"
        if col == "district_code":
            return f"{shown} is not a district in the districts layer (use its name, e.g. 长安区, or adcode)"
        fdef = layer.field(col)
        allowed = ", ".join(f"{c.label} ({c.code})" for c in fdef.choices or [])
        return f"{shown} is not a known {what}. Allowed: {allowed}"
    if kind in ("not_integer", "not_number", "not_boolean", "not_date"):
        noun = {
            "not_integer": "a whole number",
            "not_number": "a number",
            "not_boolean": "yes/no",
            "not_date": "a date (YYYY-MM-DD)",
        }[kind]
        return f"{what} {shown} is not {noun}"
    if kind == "out_of_range":
        fdef = layer.field(col)
        return (
            f"{what} {shown} is out of range ({fdef.min if fdef.min is not None else '…'} to "
            f"{fdef.max if fdef.max is not None else '…'})"
        )
    if kind == "duplicate_code":
        return f"the code {shown} appears more than once in the file"
    if kind == "code_exists":
        return f"the code {shown} already exists in layer '{layer.id}'; use --mode upsert to update it"
    if kind == "out_of_scope":
        return f"{shown} lies outside the districts you may edit"
    if kind == "repair_failed":
        return "the geometry could not be repaired into a valid one"
    return f"{what}: {kind} {shown}"


def _collect_report(
    cur: psycopg.Cursor[Any],
    layer: Layer,
    source: Source,
    cmap: ColumnMap,
    issues: list[GeometryIssue],
    sql_errors: list[tuple[int, str, str, str | None]],
    warnings: list[GeometryIssue],
    report: ImportReport,
) -> None:
    codes = source.frame[cmap.fields["code"]] if "code" in cmap.fields else None

    def code_of(row: int) -> str | None:
        if codes is None or row < 0 or row >= len(codes):
            return None
        v = codes.iloc[row]
        return None if pd.isna(v) else str(v)

    entries: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for iss in issues:
        counts[iss.kind] = counts.get(iss.kind, 0) + 1
        entries.append(
            {
                "row": iss.row + 1 if iss.row >= 0 else None,
                "code": code_of(iss.row),
                "field": "geometry",
                "kind": iss.kind,
                "message": iss.message,
                "location": list(iss.location) if iss.location else None,
            }
        )
    unknown: dict[str, dict[str, int]] = {}
    for rn, col, kind, value in sql_errors:
        if kind == "__more__":
            counts["more_not_listed"] = int(value or 0)
            continue
        counts[kind] = counts.get(kind, 0) + 1
        entries.append(
            {
                "row": rn,
                "code": code_of(rn - 1),
                "field": col,
                "kind": kind,
                "value": value,
                "message": _message(layer, col, kind, value),
            }
        )
    cur.execute(
        "SELECT col, value, count(*) FROM import_errors WHERE kind = 'unknown_value' "
        "GROUP BY col, value ORDER BY col, count(*) DESC"
    )
    for col, value, cnt in cur.fetchall():
        unknown.setdefault(str(col), {})[str(value)] = int(cnt)
    cur.execute("SELECT kind, count(*) FROM import_errors GROUP BY kind")
    for kind, cnt in cur.fetchall():
        counts[str(kind)] = int(cnt)
    counts.pop("more_not_listed", None)
    entries.sort(key=lambda e: e["row"] if e["row"] is not None else 0)
    report.errors = entries[:MAX_REPORTED_ERRORS]
    report.error_counts = counts
    report.unknown_values = unknown
    report.warnings = [
        {
            "row": w.row + 1,
            "code": code_of(w.row),
            "kind": w.kind,
            "message": w.message,
            "location": list(w.location) if w.location else None,
        }
        for w in warnings
    ][:MAX_REPORTED_ERRORS]


def _count_rejected(cur: psycopg.Cursor[Any], issues: list[GeometryIssue]) -> int:
    cur.execute("SELECT array_agg(DISTINCT rn) FROM import_errors")
    row = cur.fetchone()
    rns = set(row[0] or []) if row else set()
    if any(i.row < 0 for i in issues):
        cur.execute("SELECT count(*) FROM import_ready")
        total = cur.fetchone()
        return int(total[0]) if total else 0
    rns |= {i.row + 1 for i in issues}
    return len(rns)


def _final_expr(layer: Layer, col: str) -> sql.Composable:
    v = sql.SQL("r.{}").format(_ident(col))
    if col in ("code", "name", "district_code", "status"):
        return v
    fdef: FieldDef = layer.field(col)
    if fdef.type == "integer":
        return sql.SQL("{}::integer").format(v)
    if fdef.type == "number":
        return sql.SQL("{}::double precision").format(v)
    return v


def _apply(
    cur: psycopg.Cursor[Any],
    layer: Layer,
    target: sql.Composable,
    cols: list[str],
    cmap: ColumnMap,
    cfg: MappingConfig,
    opts: ImportOptions,
    report: ImportReport,
    trail: _SetBasedTrail | None = None,
) -> None:
    mapped = [c for c in cols if c in cmap.fields or c in cfg.defaults or c == "code"]
    if "code" not in cmap.fields and "code" not in cfg.defaults and opts.mode != "append":
        mapped.remove("code")
    if opts.mode == "replace":
        delete = sql.SQL(
            "DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM import_ready AS r WHERE r.code = t.code)"
        ).format(target)
        if trail is None:
            cur.execute(delete)
        else:
            cur.execute(trail.wrap(sql.SQL("{} RETURNING t.*").format(delete), "DELETE"))
        report.counts["deleted"] = cur.rowcount
    matched = 0
    if opts.mode in ("upsert", "replace"):
        upd_cols = [c for c in mapped if c != "code"]
        sets: list[sql.Composable] = []
        news: list[sql.Composable] = []
        olds: list[sql.Composable] = []
        for c in upd_cols:
            expr = _final_expr(layer, c)
            if c == "status" or (c not in ("name", "district_code") and layer.field(c).required):
                expr = sql.SQL("coalesce({}, t.{})").format(expr, _ident(c))
            if c == "district_code" and layer.id == "districts":
                expr = sql.SQL("coalesce({}, t.district_code)").format(expr)
            sets.append(sql.SQL("{} = {}").format(_ident(c), expr))
            news.append(expr)
            olds.append(sql.SQL("t.{}").format(_ident(c)))
        sets.append(sql.SQL("geom = r.geom"))
        # Same shape with another vertex order (shapefiles store rings clockwise) or coordinates rounded below
        # 1e-9° (0.1 mm; KML keeps 12 decimals, Excel 15 digits) is no change.
        geom_changed = sql.SQL(
            "NOT (t.geom = r.geom OR ST_Equals(t.geom, r.geom) OR "
            "(ST_NPoints(t.geom) = ST_NPoints(r.geom) AND "
            "ST_HausdorffDistance(t.geom, r.geom) < {}))"
        ).format(sql.Literal(SAME_GEOMETRY_DEG))
        changed = (
            sql.SQL("({}) IS DISTINCT FROM ({}) OR {}").format(
                sql.SQL(", ").join(olds), sql.SQL(", ").join(news), geom_changed
            )
            if olds
            else geom_changed
        )
        update = sql.SQL(
            "UPDATE {} AS t SET {} FROM import_ready AS r WHERE t.code = r.code AND NOT r.is_new AND ({})"
        ).format(target, sql.SQL(", ").join(sets), changed)
        if trail is None:
            cur.execute(update)
        else:
            # The old row as it was before this statement: the same table joined once more by id
            # (the join sees the statement's snapshot, i.e. the row before the update).
            update = sql.SQL(
                "UPDATE {} AS t SET {} FROM import_ready AS r, {} AS o "
                "WHERE o.id = t.id AND t.code = r.code AND NOT r.is_new AND ({}) RETURNING t.*, {}"
            ).format(target, sql.SQL(", ").join(sets), target, changed, trail.old_columns())
            cur.execute(trail.wrap(update, "UPDATE"))
        report.counts["updated"] = cur.rowcount
        cur.execute("SELECT count(*) FROM import_ready WHERE NOT is_new")
        row = cur.fetchone()
        matched = int(row[0]) if row else 0
    report.counts["unchanged"] = matched - report.counts["updated"]
    ins_cols = list(mapped)
    exprs = [_final_expr(layer, c) for c in ins_cols]
    if layer.lifecycle is not None:
        first = sql.Literal(layer.lifecycle.codes[0])
        if "status" in ins_cols:
            exprs[ins_cols.index("status")] = sql.SQL("coalesce(r.status, {})").format(first)
        else:
            ins_cols.append("status")
            exprs.append(first)
    if layer.id == "districts":
        if "district_code" in ins_cols:
            exprs[ins_cols.index("district_code")] = sql.SQL("coalesce(r.district_code, r.code)")
        else:
            ins_cols.append("district_code")
            exprs.append(sql.SQL("r.code"))
    ins_cols.append("geom")
    exprs.append(sql.SQL("r.geom"))
    rebuild = _drop_indexes_for_bulk_load(cur, layer, report)
    insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM import_ready AS r WHERE r.is_new ORDER BY r.rn").format(
        target, sql.SQL(", ").join(_ident(c) for c in ins_cols), sql.SQL(", ").join(exprs)
    )
    if trail is None:
        cur.execute(insert)
    else:
        cur.execute(trail.wrap(sql.SQL("{} RETURNING t.*").format(insert), "INSERT"))
    report.counts["added"] = cur.rowcount
    for stmt in rebuild:
        cur.execute(stmt)


_SETTING = "nullif(current_setting({}, true), '')"


def _setting(name: str) -> sql.Composable:
    return sql.SQL(_SETTING).format(sql.Literal(name))


def _row_json(alias: str, columns: list[str]) -> sql.Composable:
    """The audit trigger's image of a row: every column, the geometry as GeoJSON (``renewal.audit_row()``).

    The trigger writes ``(to_jsonb(row) - 'geom') || {'geom': ST_AsGeoJSON(geom)}``; ``to_jsonb(row)``
    turns the geometry into GeoJSON once more only to drop it (PostGIS' jsonb cast), which costs
    four times the rest. Building the object from the other columns by name gives the same jsonb
    (``jsonb_build_object`` converts each value with ``to_jsonb``, as ``to_jsonb(row)`` does).
    """
    a = sql.Identifier(alias)
    parts = [
        sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}.{}").format(sql.Literal(c), a, sql.Identifier(c)) for c in columns[i : i + 40]
            )
        )
        for i in range(0, len(columns), 40)
    ]
    parts.append(sql.SQL("jsonb_build_object('geom', ST_AsGeoJSON({}.geom)::jsonb)").format(a))
    return sql.SQL("(") + sql.SQL(" || ").join(parts) + sql.SQL(")")


@dataclass(frozen=True)
class _SetBasedTrail:
    """The audit log and status history written set-based, in the statement that changes the layer.

    The row triggers (``renewal.audit_row()``, ``renewal.track_status()``) cost a PL/pgSQL call, a
    ``to_jsonb`` and an ``ST_AsGeoJSON`` per row and feature, about 80 % of a large insert. When the
    database role may switch them off (the data owner: CLI imports; never the API's ``renewal_app``,
    migration 0006), the importer sets ``renewal.audit_mode = 'off'`` and ``renewal.history_mode =
    'manual'`` for its transaction and writes the same rows itself with ``INSERT ... SELECT`` from the
    ``RETURNING`` of the data-modifying statement: the same columns, the same settings, the same
    before/after images (all columns, generated ones included, geometry as GeoJSON).
    """

    layer: Layer
    columns: list[str]
    """The layer table's columns but the geometry, in table order."""

    @classmethod
    def start(cls, cur: psycopg.Cursor[Any], layer: Layer, opts: ImportOptions) -> _SetBasedTrail | None:
        """Switch the triggers off for this transaction if the role may; None (triggers stay on) otherwise."""
        cur.execute(
            "SELECT set_config('renewal.audit_mode', 'off', true), set_config('renewal.history_mode', 'manual', true), "
            "renewal.bypass_allowed('renewal.audit_mode', 'off') AND "
            "renewal.bypass_allowed('renewal.history_mode', 'manual')"
        )
        row = cur.fetchone()
        if row and row[2]:
            cur.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attname <> 'geom' ORDER BY attnum",
                (f"{layer.schema_name}.{layer.table}",),
            )
            return cls(layer, [str(r[0]) for r in cur.fetchall()])
        cur.execute("SELECT set_config('renewal.audit_mode', '', true), set_config('renewal.history_mode', '', true)")
        return None

    def old_columns(self) -> sql.Composable:
        """Extra ``RETURNING`` columns of an UPDATE joined to the old row ``o``: its image and status."""
        status = sql.SQL("o.status") if self.layer.has_status else sql.SQL("NULL::text")
        return sql.SQL("{} AS audit_before__, {} AS status_before__").format(_row_json("o", self.columns), status)

    def wrap(self, statement: sql.Composable, action: Literal["INSERT", "UPDATE", "DELETE"]) -> sql.Composed:
        """``statement ... RETURNING t.*`` wrapped so that its rows land in the audit log and status history.

        The rowcount of the result is the number of audit rows, i.e. of features written.
        """
        table = sql.Literal(self.layer.table)
        ctes: list[sql.Composable] = [sql.SQL("w AS ({})").format(statement)]
        if self.layer.has_status and action != "DELETE":
            from_status = sql.SQL("w.status_before__") if action == "UPDATE" else sql.SQL("NULL::text")
            changed = sql.SQL("WHERE w.status IS DISTINCT FROM w.status_before__" if action == "UPDATE" else "")
            ctes.append(
                sql.SQL(
                    "h AS (INSERT INTO renewal.status_history "
                    "(layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by) "
                    "SELECT {table}, w.id, w.code, {from_status}, w.status, "
                    "coalesce({eff}::date, current_date), {src}, {note}, coalesce({actor}, current_user) "
                    "FROM w {changed} RETURNING 1)"
                ).format(
                    table=table,
                    from_status=from_status,
                    eff=_setting("renewal.effective_date"),
                    src=_setting("renewal.source_doc"),
                    note=_setting("renewal.note"),
                    actor=_setting("renewal.actor"),
                    changed=changed,
                )
            )
        image = _row_json("w", self.columns)
        before = {"INSERT": sql.SQL("NULL::jsonb"), "UPDATE": sql.SQL("w.audit_before__"), "DELETE": image}[action]
        after = sql.SQL("NULL::jsonb") if action == "DELETE" else image
        return sql.SQL(
            "WITH {ctes} INSERT INTO renewal.audit_log "
            "(actor, channel, action, layer, feature_id, code, before, after, request_id, source_doc, note) "
            "SELECT coalesce({actor}, current_user), {channel}, {action}, {table}, w.id, w.code, {before}, {after}, "
            "{request}, {src}, {note} FROM w"
        ).format(
            ctes=sql.SQL(", ").join(ctes),
            actor=_setting("renewal.actor"),
            channel=_setting("renewal.channel"),
            action=sql.Literal(action),
            table=table,
            before=before,
            after=after,
            request=_setting("renewal.request_id"),
            src=_setting("renewal.source_doc"),
            note=_setting("renewal.note"),
        )


def _drop_indexes_for_bulk_load(cur: psycopg.Cursor[Any], layer: Layer, report: ImportReport) -> list[sql.Composed]:
    """Drop the layer's secondary indexes before a large insert; return the statements rebuilding them.

    Building an index once after the load is several times faster than maintaining it row by row
    (the conventions' "indexes built after large loads"). This is done when at least
    ``BULK_LOAD_ROWS`` features are added and they are at least as many as the layer already holds
    (else maintaining the index is cheaper than rebuilding it over the existing rows). Into an
    empty layer the unique code constraint is dropped and re-added too: the staging checks have
    already rejected duplicate codes, and re-adding it checks again. All of it is transactional, so
    a failed or killed import leaves the indexes as they were.
    """
    target = sql.Identifier(layer.schema_name, layer.table)
    cur.execute("SELECT count(*) FROM import_ready WHERE is_new")
    row = cur.fetchone()
    new = int(row[0]) if row else 0
    if new < BULK_LOAD_ROWS:
        return []
    cur.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) AS x").format(target), (new + 1,))
    row = cur.fetchone()
    existing = int(row[0]) if row else 0
    if new < existing:
        return []
    regclass = f"{layer.schema_name}.{layer.table}"
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT i.indisunique",
        (regclass,),
    )
    rebuild: list[sql.Composed] = []
    for name, definition in cur.fetchall():
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(layer.schema_name, name)))
        rebuild.append(sql.Composed([sql.SQL(definition)]))  # DDL from the catalog (pg_get_indexdef), not from input
    if existing == 0:
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u'",
            (regclass,),
        )
        for name, definition in cur.fetchall():
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(target, sql.Identifier(name)))
            # DDL from the catalog (pg_get_constraintdef), not from input
            rebuild.append(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(target, sql.Identifier(name), sql.SQL(definition))
            )
    report.notes.append(f"Large load: {len(rebuild)} indexes/constraints rebuilt after the insert.")
    return rebuild


# --------------------------------------------------------------------------------------- records


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


def _record(
    conn: psycopg.Connection[Any], report: ImportReport, started: dt.datetime, status: str | None = None
) -> int:
    st = status or report.status
    row = conn.execute(
        sql.SQL("INSERT INTO renewal.imports ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(_ident(c) for c in _RECORD_COLS),
            sql.SQL(", ").join(sql.Placeholder() * len(_RECORD_COLS)),
        ),
        _record_values(report, started, st),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _update_record(cur: psycopg.Cursor[Any], report: ImportReport) -> None:
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


def _record_outside(conninfo: str, report: ImportReport, started: dt.datetime) -> int | None:
    """Record a failed attempt in its own transaction (best effort: the database may be the problem)."""
    try:
        with psycopg.connect(conninfo, application_name="renewal-import") as conn:
            return _record(conn, report, started)
    except psycopg.Error:
        return None


def import_record(conninfo: str, layer_id: str, import_id: int) -> dict[str, Any] | None:
    """One row of ``renewal.imports`` as a dict (None if there is no such import for the layer)."""
    with _connect(conninfo) as conn:
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
    with _connect(conninfo) as conn:
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
