"""Pydantic models of the plan as data: programmes, tasks, spatial targets and indicators.

The catalog (``layers/plan/catalog.yaml``) is validated twice: on its own (task numbers,
references between records, date order) and against the layer registry (the layer of
every target exists, has a lifecycle with the named status, and has the summed and
filtered fields). Progress, ledgers and maps read targets only through these models,
so a typo in the catalog fails at load time, not in a quarterly report.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers.models import Layer
from layers.registry import Registry

Metric = Literal["count", "area_mu", "length_km", "spaces", "units"]
"""What a spatial target counts: features, mu of area, km of length, parking spaces, housing units."""

METRIC_FIELD: dict[str, str | None] = {
    "count": None,
    "area_mu": "area_mu",
    "length_km": "length_m",
    "spaces": "spaces",
    "units": "units",
}
"""The column each metric sums (None: count features)."""

METRIC_DIVISOR: dict[str, float] = {"count": 1.0, "area_mu": 1.0, "length_km": 1000.0, "spaces": 1.0, "units": 1.0}
"""Divide the summed column by this (metres → km)."""

METRIC_UNITS: dict[str, str] = {"count": "个", "area_mu": "亩", "length_km": "公里", "spaces": "个泊位", "units": "套"}
"""Chinese unit shown next to values of each metric."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanInfo(_Strict):
    """The plan document itself and who is responsible by default."""

    title: str
    issued_by: str
    year: int
    default_responsible: list[str]
    default_responsible_source: str
    supervision: list[str]
    supervision_source: str


class Programme(_Strict):
    """One of the nine programmes (九大工程)."""

    number: int = Field(ge=1, le=9)
    name: str
    aim: str


class Deadline(_Strict):
    """A date the task text sets, with what is due."""

    date: dt.date
    what: str


class Task(_Strict):
    """One of the 45 key tasks (重点任务)."""

    number: int = Field(ge=1, le=45)
    programme: int = Field(ge=1, le=9)
    title: str
    responsible: list[str] = Field(default_factory=list)
    """Lead units the task text names (the plan names none; the default applies)."""
    counterparts: list[str] = Field(default_factory=list)
    """Provincial/national bodies the task says to work with."""
    deadlines: list[Deadline] = Field(default_factory=list)

    @property
    def final_deadline(self) -> dt.date | None:
        """The latest deadline of the task, if any."""
        return max((d.date for d in self.deadlines), default=None)


class Filter(_Strict):
    """A condition on a layer attribute: ``field = v``, ``field IN (...)`` or ``field BETWEEN a AND b``."""

    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    op: Literal["eq", "in", "between"]
    value: str | int | float | list[str | int | float]

    @model_validator(mode="after")
    def _check(self) -> Filter:
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError(f"filter on {self.field}: 'between' needs [low, high]")
        if self.op == "in" and not (isinstance(self.value, list) and self.value):
            raise ValueError(f"filter on {self.field}: 'in' needs a non-empty list")
        if self.op == "eq" and isinstance(self.value, list):
            raise ValueError(f"filter on {self.field}: 'eq' needs one value")
        return self


class Target(_Strict):
    """A quantitative target measured on a layer.

    ``actual(D)`` = the metric over features that, as of ``D``, are at or beyond ``status``
    in the layer's lifecycle, first reached it between ``start`` and ``min(deadline, D)``,
    and pass every filter.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    task: int = Field(ge=1, le=45)
    title: str
    source: str = Field(min_length=4)
    """The plan sentence (verbatim) that sets the target."""
    metric: Metric
    layer: str
    status: str
    field: str | None = None
    filters: list[Filter] = Field(default_factory=list)
    list_filters: list[Filter] = Field(default_factory=list)
    """Further conditions that pick the target's list (清单), used to apportion it to districts."""
    start: dt.date
    deadline: dt.date
    value: float = Field(gt=0)
    scope: Literal["city", "district"] = "city"
    district_code: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.deadline < self.start:
            raise ValueError(f"target {self.id}: deadline before start")
        expected = METRIC_FIELD[self.metric]
        if self.field != expected:
            raise ValueError(f"target {self.id}: metric {self.metric} sums {expected!r}, not {self.field!r}")
        if (self.scope == "district") != (self.district_code is not None):
            raise ValueError(f"target {self.id}: a district-scope target needs district_code (and only it)")
        return self

    @property
    def unit(self) -> str:
        """Chinese unit of the value."""
        return METRIC_UNITS[self.metric]

    @property
    def divisor(self) -> float:
        """Divide the summed column by this."""
        return METRIC_DIVISOR[self.metric]


class Indicator(_Strict):
    """A non-spatial indicator whose value officers report by date (GDP, PM2.5, ...)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    task: int = Field(ge=1, le=45)
    title: str
    unit: str
    value: float
    direction: Literal["at_least", "at_most", "about"]
    """``at_least``: higher is better; ``at_most``: lower is better; ``about``: reach it (±2 %)."""
    start: dt.date = dt.date(2021, 1, 1)
    deadline: dt.date
    source: str = Field(min_length=4)
    metric: Literal["reported"] = "reported"


class Catalog(_Strict):
    """The whole plan: programmes, tasks, spatial targets, reported indicators."""

    plan: PlanInfo
    programmes: list[Programme]
    tasks: list[Task]
    targets: list[Target]
    indicators: list[Indicator]

    @model_validator(mode="after")
    def _check(self) -> Catalog:
        if [p.number for p in self.programmes] != list(range(1, 10)):
            raise ValueError("programmes must be numbered 1–9 in order")
        if [t.number for t in self.tasks] != list(range(1, 46)):
            raise ValueError("tasks must be numbered 1–45 in order")
        last = 0
        for t in self.tasks:
            if t.programme < last:
                raise ValueError(f"task {t.number}: programmes must not go backwards")
            last = t.programme
        ids = [t.id for t in self.targets] + [i.id for i in self.indicators]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate target/indicator ids: {sorted(dup)}")
        return self

    def task(self, number: int) -> Task:
        """The task with this number."""
        return self.tasks[number - 1]

    def programme_of(self, task_number: int) -> Programme:
        """The programme a task belongs to."""
        return self.programmes[self.task(task_number).programme - 1]

    def target(self, target_id: str) -> Target | None:
        """The spatial target with this id, or None."""
        return next((t for t in self.targets if t.id == target_id), None)

    def indicator(self, indicator_id: str) -> Indicator | None:
        """The indicator with this id, or None."""
        return next((i for i in self.indicators if i.id == indicator_id), None)

    def validate_against(self, registry: Registry) -> None:
        """Check every target against the layer registry.

        Raises
        ------
        ValueError
            Naming the target and what is wrong (unknown layer, status or field).
        """
        for t in self.targets:
            if t.layer not in registry:
                raise ValueError(f"target {t.id}: unknown layer {t.layer}")
            layer: Layer = registry.get(t.layer)
            if layer.lifecycle is None:
                raise ValueError(f"target {t.id}: layer {t.layer} has no lifecycle")
            if t.status not in layer.lifecycle.codes:
                raise ValueError(f"target {t.id}: {t.status} is not a status of {t.layer}")
            names = {f.name for f in layer.fields}
            for name in [t.field, *(f.field for f in [*t.filters, *t.list_filters])]:
                if name is not None and name not in names:
                    raise ValueError(f"target {t.id}: layer {t.layer} has no field {name}")
