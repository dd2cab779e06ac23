"""Step 2, **map**: which source column feeds which layer column.

By name, Chinese label or alias from the registry (名称, 所在区, 状态, 面积（亩） ...), or through
a YAML mapping file; columns the database computes are recognised and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gis.errors import InvalidInputError
from layers.importer.options import ImportOptions
from layers.models import Layer

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


def check_mapping(layer: Layer, cmap: ColumnMap, cfg: MappingConfig, opts: ImportOptions, name: str) -> None:
    """Refuse a file whose columns cannot serve the mode: no code to match by, no name, missing required fields."""
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
