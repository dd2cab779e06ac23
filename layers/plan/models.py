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

Metric = Literal["count", "area_mu", "area_km2", "length_km", "spaces", "units"]
"""What a spatial target counts: features, mu or km² of area, km of length, parking spaces, housing units."""

TargetKind = Literal["complete", "advance"]
"""``complete`` (完成): the plan asks for the work to be done (改造/建成/打通 …) by the deadline.
``advance`` (加快推进): the plan asks to push the work ahead, not to finish it; such a target
counts features on which the work is under way (its ``status`` is a started status, never
the last of the lifecycle), so finishing is not demanded of it."""

KIND_LABELS: dict[str, str] = {"complete": "完成类", "advance": "推进类"}
"""Chinese label of each target kind (reports, ledgers)."""

NO_RESPONSIBLE = "方案正文未点名责任单位（按三（三），由各县（市、区）、市直各部门负责）"
"""What a task whose text names no lead unit says about responsibility."""

METRIC_FIELD: dict[str, str | None] = {
    "count": None,
    "area_mu": "area_mu",
    "area_km2": "area_mu",
    "length_km": "length_m",
    "spaces": "spaces",
    "units": "units",
}
"""The column each metric sums (None: count features)."""

METRIC_DIVISOR: dict[str, float] = {
    "count": 1.0, "area_mu": 1.0, "area_km2": 1500.0, "length_km": 1000.0, "spaces": 1.0, "units": 1.0,
}
"""Divide the summed column by this (metres → km; 1 km² = 1,500 mu)."""

METRIC_UNITS: dict[str, str] = {
    "count": "个", "area_mu": "亩", "area_km2": "平方公里", "length_km": "公里", "spaces": "个泊位", "units": "套",
}
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
    """A date the task text sets, with what is due.

    ``reading`` says how the date was read when the text does not state it word for word
    ("今年" is 2021, "“十一”前" is 2021-09-30, "2025年前" is 2025-12-31 …).
    """

    date: dt.date
    what: str
    reading: str | None = None


class Task(_Strict):
    """One of the 45 key tasks (重点任务)."""

    number: int = Field(ge=1, le=45)
    programme: int = Field(ge=1, le=9)
    title: str
    responsible: list[str] = Field(default_factory=list)
    """Bodies the task text itself names as doing the work (责任单位), verbatim; usually none."""
    responsible_source: str | None = None
    """The plan words that name them (verbatim; required when ``responsible`` is not empty)."""
    counterparts: list[str] = Field(default_factory=list)
    """Provincial/national bodies the task says to work with."""
    deadlines: list[Deadline] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_responsible(self) -> Task:
        if bool(self.responsible) != bool(self.responsible_source):
            raise ValueError(f"task {self.number}: responsible bodies and their source quote go together")
        return self

    @property
    def responsible_text(self) -> str:
        """The responsible bodies as the plan names them, or a sentence saying it names none."""
        return "、".join(self.responsible) if self.responsible else NO_RESPONSIBLE

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
    kind: TargetKind = "complete"
    deadline_source: str | None = None
    """The plan words that state the deadline (verbatim), when they do."""
    deadline_note: str | None = None
    """How the deadline was read when the plan does not state it word for word."""
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Target:
        if not (self.deadline_source or self.deadline_note):
            raise ValueError(f"target {self.id}: quote the deadline (deadline_source) or say how it was read")
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
    def kind_label(self) -> str:
        """完成类 or 推进类."""
        return KIND_LABELS[self.kind]

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
    value: float | None
    """The number to reach (None only for ``rising``: the plan sets a direction, not a number)."""
    direction: Literal["at_least", "at_most", "about", "rising"]
    """``at_least``: higher is better; ``at_most``: lower is better; ``about``: reach it (±2 %);
    ``rising`` (持续提升): every report above the baseline and not below the one before."""
    start: dt.date = dt.date(2021, 1, 1)
    deadline: dt.date
    source: str = Field(min_length=4)
    metric: Literal["reported"] = "reported"
    district_values: bool = False
    """Districts report their own value and quota (任务分解); the quarterly ranking uses them."""
    deadline_source: str | None = None
    """The plan words that state the deadline (verbatim), when they do."""
    deadline_note: str | None = None
    """How the deadline was read when the plan does not state it word for word."""
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Indicator:
        if not (self.deadline_source or self.deadline_note):
            raise ValueError(f"indicator {self.id}: quote the deadline (deadline_source) or say how it was read")
        if self.deadline < self.start:
            raise ValueError(f"indicator {self.id}: deadline before start")
        if (self.value is None) != (self.direction == "rising"):
            raise ValueError(f"indicator {self.id}: only a 'rising' indicator has no value")
        return self


class Compliance(_Strict):
    """A cap the plan sets on every feature of a kind (新建住宅容积率一律不超过2.0).

    The population is the features that, as of D, count toward a target built from
    ``status``/``filters``/``start`` (for the FAR cap: residential parcels supplied since the
    plan); the compliant ones also have ``field`` at most ``maximum``. Both counts come from
    :mod:`layers.progress` through :meth:`population` and :meth:`compliant`, so the rule of
    "counts as of a date" is the same as for every target.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    task: int = Field(ge=1, le=45)
    title: str
    source: str = Field(min_length=4)
    layer: str
    status: str
    filters: list[Filter] = Field(default_factory=list)
    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    maximum: float
    start: dt.date
    deadline_note: str
    note: str | None = None

    def population(self) -> Target:
        """The features the cap applies to, as a count target (its value is not used)."""
        return Target(
            id=f"{self.id}_population", task=self.task, title=self.title, source=self.source, metric="count",
            layer=self.layer, status=self.status, filters=self.filters, start=self.start,
            deadline=dt.date(2035, 12, 31), value=1, deadline_note=self.deadline_note,
        )

    def compliant(self) -> Target:
        """The features within the cap (``0 <= field <= maximum``)."""
        within = Filter(field=self.field, op="between", value=[0, self.maximum])
        return self.population().model_copy(update={"id": f"{self.id}_compliant", "filters": [*self.filters, within]})


class Catalog(_Strict):
    """The whole plan: programmes, tasks, spatial targets, reported indicators, caps."""

    plan: PlanInfo
    programmes: list[Programme]
    tasks: list[Task]
    targets: list[Target]
    indicators: list[Indicator]
    compliance: list[Compliance] = Field(default_factory=list)

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
        ids = [t.id for t in self.targets] + [i.id for i in self.indicators] + [c.id for c in self.compliance]
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
            if t.kind == "advance" and t.status in (layer.lifecycle.codes[0], layer.lifecycle.codes[-1]):
                raise ValueError(f"target {t.id}: an 'advance' target counts work under way, not {t.status}")
            names = {f.name for f in layer.fields}
            for name in [t.field, *(f.field for f in [*t.filters, *t.list_filters])]:
                if name is not None and name not in names:
                    raise ValueError(f"target {t.id}: layer {t.layer} has no field {name}")
        for c in self.compliance:
            if c.layer not in registry:
                raise ValueError(f"compliance {c.id}: unknown layer {c.layer}")
            layer = registry.get(c.layer)
            if layer.lifecycle is None or c.status not in layer.lifecycle.codes:
                raise ValueError(f"compliance {c.id}: {c.status} is not a status of {c.layer}")
            names = {f.name for f in layer.fields}
            for name in [c.field, *(f.field for f in c.filters)]:
                if name not in names:
                    raise ValueError(f"compliance {c.id}: layer {c.layer} has no field {name}")
