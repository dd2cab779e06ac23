"""Pydantic models of a layer definition.

One YAML file per layer under ``layers/definitions`` is validated into a :class:`Layer`.
Everything that needs to know what a layer is (API, importer, exporter, tiles, maps,
progress) reads these models; nothing else repeats table names, fields or vocabularies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FieldType = Literal["text", "integer", "number", "date", "boolean"]
GeometryType = Literal["MultiPolygon", "MultiLineString", "Point", "MultiPoint", "LineString", "Polygon"]
Measure = Literal["area", "length", "none"]

SQL_TYPES: dict[str, str] = {
    "text": "text",
    "integer": "integer",
    "number": "double precision",
    "date": "date",
    "boolean": "boolean",
}

COMMON_COLUMNS = ("id", "code", "name", "district_code", "geom", "created_at", "updated_at")
"""Columns every layer table has; the registry describes the rest."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    """One allowed value of a coded text field, e.g. a zone type or land-use class."""

    code: str
    label: str
    label_en: str | None = None
    color: str | None = None


class FieldDef(_Strict):
    """An attribute column of a layer."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    label: str
    label_en: str
    unit: str | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: list[Choice] | None = None
    aliases: list[str] = Field(default_factory=list)
    """Other column names (often Chinese) that importers map to this field."""
    generated: bool = False
    """Computed by the database (areas, lengths); never written by clients."""
    temporal: bool = False
    """Used by the OGC ``datetime`` parameter."""
    tile: bool = False
    """Carried as an attribute in vector tiles."""
    precision: int | None = Field(default=None, ge=0, le=9)
    """Decimals shown to people (HTML pages): mu and FAR 0.01, lengths 0.1 m. Exports and GeoJSON keep
    the stored value; None shows it as stored."""

    @property
    def sql_type(self) -> str:
        """The PostgreSQL type of the column."""
        return SQL_TYPES[self.type]


class StatusDef(_Strict):
    """One status in a layer's lifecycle."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    label_en: str
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    aliases: list[str] = Field(default_factory=list)
    """Other spellings seen in ledgers, e.g. 征收 and 签约 for ``acquisition``."""


class Lifecycle(_Strict):
    """Status vocabulary in lifecycle order, with the transitions allowed between them."""

    label: str = "状态"
    label_en: str = "Status"
    statuses: list[StatusDef]
    transitions: dict[str, list[str]] | None = None
    """Allowed moves; default: to the next status, or back one step (a correction)."""

    @model_validator(mode="after")
    def _check(self) -> Lifecycle:
        codes = [s.code for s in self.statuses]
        if len(set(codes)) != len(codes):
            raise ValueError("duplicate status codes")
        for src, dsts in (self.transitions or {}).items():
            unknown = {src, *dsts} - set(codes)
            if unknown:
                raise ValueError(f"transitions name unknown statuses {sorted(unknown)}")
        return self

    @property
    def codes(self) -> list[str]:
        """Status codes in lifecycle order."""
        return [s.code for s in self.statuses]

    def rank(self, code: str) -> int:
        """Position of a status in the lifecycle (0 = first)."""
        return self.codes.index(code)

    def at_or_beyond(self, code: str) -> list[str]:
        """Statuses that count as having reached ``code``."""
        return self.codes[self.rank(code) :]

    def allowed_next(self, code: str) -> list[str]:
        """Statuses a feature in ``code`` may move to without a special reason."""
        if self.transitions is not None:
            return list(self.transitions.get(code, []))
        i = self.rank(code)
        return [c for j, c in enumerate(self.codes) if j in (i - 1, i + 1)]

    def by_label(self) -> dict[str, str]:
        """Every known spelling (code, Chinese, English, aliases) to its code."""
        out: dict[str, str] = {}
        for s in self.statuses:
            for name in (s.code, s.label, s.label_en, *s.aliases):
                out[name.strip().lower()] = s.code
        return out

    def get(self, code: str) -> StatusDef:
        """The status definition for a code."""
        for s in self.statuses:
            if s.code == code:
                return s
        raise KeyError(code)


class Style(_Strict):
    """How maps draw the layer when no status colour applies."""

    color: str = "#3388ff"
    fill_opacity: float = 0.4
    weight: float = 1.5
    radius: float = 4.0
    label_min_zoom: int | None = Field(default=14, ge=0, le=24)
    """From this zoom maps write each feature's name on it (never below the layer's ``min_zoom``); None: no labels."""
    label_max_zoom: int | None = Field(default=None, ge=1, le=24)
    """Up to (below) this zoom; None: at every larger zoom. Districts' names belong to the city view only."""
    label_size: float = Field(default=12.0, gt=0, le=48)
    """Label text size in CSS pixels (MapLibre, SLD); QGIS gets the same size in points (× 0.75)."""


class Layer(_Strict):
    """A layer: a PostGIS table with a geometry, attributes, a lifecycle and a style."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    table: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    title_en: str
    description: str
    group: str
    group_en: str
    kind: Literal["reference", "renewal"]
    geometry_type: GeometryType
    measure: Measure
    code_label: str = "编码"
    name_label: str = "名称"
    fields: list[FieldDef] = Field(default_factory=list)
    lifecycle: Lifecycle | None = None
    min_zoom: int = Field(default=8, ge=0, le=24)
    max_zoom: int = Field(default=22, ge=0, le=24)
    overview_min_zoom: int | None = Field(default=None, ge=0, le=24)
    """Below ``min_zoom`` and from this zoom, tiles carry a generalised overview (layers/overview.py)."""
    style: Style = Field(default_factory=Style)
    anonymous_read: bool = True
    requires_review: bool = False
    """An editor's change becomes a submission that waits for a reviewer (layers/submissions.py).

    True in the definitions of every layer a plan target counts; reviewers and administrators
    still write directly (OGC API Features Part 4)."""
    order: int = 100

    @model_validator(mode="after")
    def _check(self) -> Layer:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"layer {self.id}: duplicate field names")
        clash = set(names) & {*COMMON_COLUMNS, "status"}
        if clash:
            raise ValueError(f"layer {self.id}: fields {sorted(clash)} clash with common columns")
        if self.min_zoom > self.max_zoom:
            raise ValueError(f"layer {self.id}: min_zoom > max_zoom")
        if self.overview_min_zoom is not None and self.overview_min_zoom >= self.min_zoom:
            raise ValueError(f"layer {self.id}: overview_min_zoom must be below min_zoom")
        return self

    @property
    def schema_name(self) -> str:
        """The PostgreSQL schema of every layer table."""
        return "renewal"

    @property
    def has_status(self) -> bool:
        """Whether features of this layer carry a lifecycle status."""
        return self.lifecycle is not None

    @property
    def measure_field(self) -> str | None:
        """``area_mu``, ``length_m`` or None."""
        return {"area": "area_mu", "length": "length_m", "none": None}[self.measure]

    def field(self, name: str) -> FieldDef:
        """Look up a field by name (not including the common columns)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def property_names(self) -> list[str]:
        """Every property exposed to clients, in display order."""
        names = ["code", "name", "district_code"]
        if self.has_status:
            names.append("status")
        names += [f.name for f in self.fields]
        return names + ["created_at", "updated_at"]

    @property
    def precisions(self) -> dict[str, int]:
        """Display decimals per field that declares them (:attr:`FieldDef.precision`)."""
        return {f.name: f.precision for f in self.fields if f.precision is not None}

    @property
    def labels(self) -> dict[str, str]:
        """Chinese labels for every property (headers of ledgers and popups)."""
        out = {"code": self.code_label, "name": self.name_label, "district_code": "区县代码"}
        if self.lifecycle is not None:
            out["status"] = self.lifecycle.label
        out.update({f.name: f.label for f in self.fields})
        out.update({"created_at": "创建时间", "updated_at": "更新时间"})
        return out
