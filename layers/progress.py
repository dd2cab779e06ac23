"""Progress of the plan's targets as of any date, computed in PostGIS from the layers and ``status_history``.

Rules (the same everywhere: API, CLI, ledgers, maps)
----------------------------------------------------
Status as of D
    :mod:`layers.history` (the one rule): the ``to_status`` of the feature's latest
    ``renewal.status_history`` row with ``effective_date <= D`` (ties: the latest recorded);
    with no row by D, the first lifecycle status if the feature was created by D, else absent.
Actual (完成值)
    The target's metric (count of features, or the sum of ``area_mu``, ``length_m``/1000,
    ``spaces`` or ``units``) over the features that *count toward* the target as of D
    (:func:`layers.history.target_features`): they pass the target's filters, their status
    as of D is *at or beyond* the target's status in the layer's lifecycle, and they first
    reached it between the target's ``start`` and ``min(deadline, D)``. After the deadline
    the actual therefore freezes: a 2021 target is judged on what was done in 2021.
Expected by D (应完成值)
    Linear from ``start`` to ``deadline``: ``target × clamp((D − start) / (deadline − start), 0, 1)``
    in days. Before ``start`` it is 0; on or after the deadline it is the whole target.
Percent (完成率)
    ``100 × actual / target`` (not capped, so over-fulfilment shows).
Status (进度评价), in this order
    ``met`` (已完成)        actual ≥ target, at any date;
    ``missed`` (未完成)     D ≥ deadline and actual < target;
    ``on_track`` (正常)     actual ≥ 90 % of expected (or nothing is expected yet);
    ``at_risk`` (预警)      actual ≥ 70 % of expected;
    ``behind`` (滞后)       otherwise.
District breakdown (分区县)
    A city target is apportioned to districts by their share of its *list* (清单): the
    metric over the features that pass the target's filters and its ``list_filters``
    (e.g. compounds scheduled for 2021). District quota = target × district list / city
    list; district percent and status use the quota in place of the target.
Quarterly ranking (每季度督导排位)
    As of the last day of the quarter, over the targets *active* in it (window overlaps the
    quarter; one target, a programme's, or all) and the active reported indicators that have
    district values (:mod:`layers.indicators`, district percent = value / quota): a district's
    score is the mean of ``min(percent, 100)`` over those for which it has a quota. Ranked by score
    (ties: district code); the change is the previous quarter's rank (same targets, as of
    the previous quarter's end) minus this one, so +2 means up two places.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql

from gis.errors import InvalidInputError
from layers.history import (
    Binder,
    Params,
    counts_toward,
    reached_statuses,
    status_intervals,
    target_features,
    target_filter_sql,
)
from layers.plan import get_catalog
from layers.plan.models import METRIC_FIELD, Indicator, Target
from layers.registry import Registry, get_registry

ON_TRACK_RATIO = 0.9
"""actual / expected at or above this is on track."""
AT_RISK_RATIO = 0.7
"""actual / expected at or above this (and below ON_TRACK_RATIO) is at risk; below it, behind."""

STATUS_LABELS: dict[str, str] = {
    "met": "已完成",
    "on_track": "进度正常",
    "at_risk": "进度预警",
    "behind": "进度滞后",
    "missed": "未完成",
}
STATUS_COLORS: dict[str, str] = {
    "met": "#1a9850",
    "on_track": "#91cf60",
    "at_risk": "#fdae61",
    "behind": "#f46d43",
    "missed": "#a50026",
}

MIN_DATE = dt.date(2015, 1, 1)
MAX_DATE = dt.date(2035, 12, 31)
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")


# --------------------------------------------------------------------------- parsing


def parse_as_of(value: str | dt.date | None) -> dt.date:
    """A date for ``as_of`` (ISO ``YYYY-MM-DD``; None = today), within 2015–2035.

    Raises
    ------
    InvalidInputError
        For anything else, with a message saying what is expected.
    """
    if value is None:
        return dt.date.today()
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidInputError(
                f"as_of must be a date written as YYYY-MM-DD, e.g. 2021-09-30; got {value!r}.",
                detail={"as_of": str(value)},
            ) from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidInputError(
            f"as_of {value.isoformat()} is outside the plan period handled here ({MIN_DATE} to {MAX_DATE}).",
            detail={"as_of": value.isoformat()},
        )
    return value


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter, e.g. 2022Q3."""

    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """Parse ``2022Q3``.

        Raises
        ------
        InvalidInputError
            If the text is not a quarter between 2015Q1 and 2035Q4.
        """
        m = _QUARTER.match(text.strip()) if isinstance(text, str) else None
        if not m:
            raise InvalidInputError(
                f"quarter must be written like 2022Q3 (year, Q, 1–4); got {text!r}.", detail={"quarter": str(text)}
            )
        quarter = cls(int(m.group(1)), int(m.group(2)))
        if not MIN_DATE <= quarter.end <= MAX_DATE:
            raise InvalidInputError(f"quarter {quarter} is outside 2015–2035.", detail={"quarter": str(text)})
        return quarter

    @property
    def start(self) -> dt.date:
        """First day."""
        return dt.date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> dt.date:
        """Last day."""
        nxt = dt.date(self.year + (self.q == 4), 1 if self.q == 4 else 3 * self.q + 1, 1)
        return nxt - dt.timedelta(days=1)

    def previous(self) -> Quarter:
        """The quarter before."""
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"


# --------------------------------------------------------------------------- arithmetic


def elapsed_fraction(period: Target | Indicator, as_of: dt.date) -> float:
    """Share of the period (``start`` to ``deadline``) elapsed by ``as_of``: 0 before start, 1 from the deadline.

    The expected progress of a target and of a reported indicator (:mod:`layers.indicators`) is
    this share of the goal; one rule for both, so the two never disagree about a date.
    """
    if as_of >= period.deadline:
        return 1.0
    if as_of <= period.start:
        return 0.0
    return (as_of - period.start).days / (period.deadline - period.start).days


def classify(actual: float, goal: float, expected: float, as_of: dt.date, deadline: dt.date) -> str:
    """The progress status by the documented thresholds (see the module docstring)."""
    eps = 1e-9 * max(1.0, abs(goal))
    if goal > 0 and actual + eps >= goal:
        return "met"
    if as_of >= deadline:
        return "missed"
    if expected <= eps or actual + eps >= ON_TRACK_RATIO * expected:
        return "on_track"
    if actual + eps >= AT_RISK_RATIO * expected:
        return "at_risk"
    return "behind"


@dataclass(frozen=True)
class TargetProgress:
    """Progress of one target (city-wide, or one district's share) as of a date."""

    target: Target
    as_of: dt.date
    district_code: str | None
    actual: float
    features: int
    goal: float
    """The target value (city) or the district's quota."""
    listed: float
    """The metric over the target's list (清单) in this scope."""

    @property
    def fraction(self) -> float:
        """Share of the period elapsed."""
        return elapsed_fraction(self.target, self.as_of)

    @property
    def expected(self) -> float:
        """Value expected by ``as_of`` on a straight line to the deadline."""
        return self.goal * self.fraction

    @property
    def percent(self) -> float:
        """100 × actual / goal (0 when there is no goal here)."""
        return 100.0 * self.actual / self.goal if self.goal > 0 else 0.0

    @property
    def expected_percent(self) -> float:
        """100 × expected / goal."""
        return 100.0 * self.fraction

    @property
    def status(self) -> str:
        """The progress status: met, on_track, at_risk, behind or missed."""
        return classify(self.actual, self.goal, self.expected, self.as_of, self.target.deadline)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (rounded for people; raw values are in ``actual``/``goal``)."""
        catalog = get_catalog()
        t = self.target
        return {
            "target": t.id,
            "task": t.task,
            "programme": catalog.task(t.task).programme,
            "programme_name": catalog.programme_of(t.task).name,
            "title": t.title,
            "layer": t.layer,
            "metric": t.metric,
            "unit": t.unit,
            "district_code": self.district_code,
            "as_of": self.as_of.isoformat(),
            "start": t.start.isoformat(),
            "deadline": t.deadline.isoformat(),
            "target_value": round(self.goal, 3),
            "actual": round(self.actual, 3),
            "features": self.features,
            "expected": round(self.expected, 3),
            "percent": round(self.percent, 1),
            "expected_percent": round(self.expected_percent, 1),
            "status": self.status,
            "status_label": STATUS_LABELS[self.status],
            "source": t.source,
        }


# --------------------------------------------------------------------------- SQL


def feature_value_sql(target: Target) -> sql.Composable:
    """One feature's contribution to ``target`` (rows aliased ``t``): 1 for counts, else its column / divisor.

    The one rule for a target's measure: ledgers list it per row and :func:`_measure_sql` sums it,
    so a ledger's rows always add up to the actual progress reports (both follow METRIC_FIELD).
    """
    field = METRIC_FIELD[target.metric]
    if field is None:
        return sql.SQL("1::float8")
    return sql.SQL("t.{}::float8 / {}").format(sql.Identifier(field), sql.Literal(target.divisor))


def _measure_sql(target: Target) -> sql.Composable:
    """The target's measure over a group of rows aliased ``t``: the sum of :func:`feature_value_sql` (0 if none).

    Built from the per-feature value rather than from METRIC_FIELD again, so the aggregate and
    the ledgers' per-row values cannot drift apart.
    """
    return sql.SQL("coalesce(sum({}), 0)::float8").format(feature_value_sql(target))


def actual_subquery(target: Target, as_of: sql.Composable, params: Binder, registry: Registry) -> sql.Composed:
    """``SELECT district_code, total, n, value`` for one target as of ``as_of`` (a date expression).

    Rows per district plus the city total (``district_code`` NULL, ``total`` true), via
    GROUPING SETS, over the features that count toward the target
    (:func:`layers.history.target_features`, the one rule).
    """
    return sql.SQL(
        """
        SELECT t.district_code, GROUPING(t.district_code) = 1 AS total, count(*)::int AS n, {measure} AS value
        FROM {features} AS t
        WHERE t.counts
        GROUP BY GROUPING SETS ((t.district_code), ())
        """
    ).format(measure=_measure_sql(target), features=target_features(target, as_of, params, registry=registry))


def list_subquery(target: Target, params: Binder, registry: Registry) -> sql.Composed:
    """``SELECT district_code, total, value`` of the target's list (清单) per district and city-wide."""
    layer = registry.get(target.layer)
    return sql.SQL(
        """
        SELECT t.district_code, GROUPING(t.district_code) = 1 AS total, {measure} AS value
        FROM {table} AS t WHERE {filters}
        GROUP BY GROUPING SETS ((t.district_code), ())
        """
    ).format(
        measure=_measure_sql(target),
        table=sql.Identifier(layer.schema_name, layer.table),
        filters=target_filter_sql(target, params, with_list=True),
    )


def progress_query(
    targets: Sequence[Target], as_of: dt.date, registry: Registry | None = None
) -> tuple[sql.Composed, Params]:
    """One statement giving, for every target, actual and list per district and city-wide.

    Columns: ``target, district_code, total, n, actual, listed``.
    """
    registry = registry or get_registry()
    params = Params(as_of=as_of)
    day = sql.SQL("{}::date").format(sql.Placeholder("as_of"))
    parts = []
    for target in targets:
        parts.append(
            sql.SQL(
                """
                SELECT {tid}::text AS target, coalesce(a.district_code, l.district_code) AS district_code,
                       coalesce(a.total, l.total) AS total, coalesce(a.n, 0) AS n,
                       coalesce(a.value, 0)::float8 AS actual, coalesce(l.value, 0)::float8 AS listed
                FROM ({actual}) AS a
                FULL JOIN ({listed}) AS l ON a.total = l.total AND a.district_code IS NOT DISTINCT FROM l.district_code
                """
            ).format(
                tid=params.add("target", target.id),
                actual=actual_subquery(target, day, params, registry),
                listed=list_subquery(target, params, registry),
            )
        )
    if not parts:
        empty = "SELECT NULL::text, NULL::text, NULL::bool, 0, 0::float8, 0::float8 WHERE false"
        return sql.Composed([sql.SQL(empty)]), params
    return sql.SQL("\nUNION ALL\n").join(parts), params


def assemble(
    targets: Sequence[Target], rows: Iterable[Sequence[Any]], as_of: dt.date, *, by_district: bool
) -> list[TargetProgress]:
    """Turn the rows of :func:`progress_query` into :class:`TargetProgress` records.

    City records first (in catalog order); with ``by_district`` also one per district that has
    a list or an actual, with the apportioned quota.
    """
    by_target: dict[str, dict[str | None, tuple[int, float, float]]] = {t.id: {} for t in targets}
    for tid, district, total, n, actual, listed in rows:
        key = None if total else (district or "")
        by_target[tid][key] = (int(n), float(actual), float(listed))
    out: list[TargetProgress] = []
    for t in targets:
        rows_t = by_target[t.id]
        n, actual, city_list = rows_t.get(None, (0, 0.0, 0.0))
        out.append(TargetProgress(t, as_of, None, actual, n, t.value, city_list))
        if by_district:
            for district in sorted(k for k in rows_t if k is not None):
                dn, dactual, dlist = rows_t[district]
                quota = t.value * dlist / city_list if city_list > 0 else 0.0
                out.append(TargetProgress(t, as_of, district or None, dactual, dn, quota, dlist))
    return out


def select_targets(task: int | None = None, programme: int | None = None, target: str | None = None) -> list[Target]:
    """Targets of the catalog, optionally of one task, programme or id (unknown id → 404)."""
    from layers.plan import get_target

    catalog = get_catalog()
    if target is not None:
        return [get_target(target)]
    out = list(catalog.targets)
    if task is not None:
        if not 1 <= task <= 45:
            raise InvalidInputError(f"task must be a number from 1 to 45; got {task}.", detail={"task": task})
        out = [t for t in out if t.task == task]
    if programme is not None:
        if not 1 <= programme <= 9:
            raise InvalidInputError(
                f"programme must be a number from 1 to 9; got {programme}.", detail={"programme": programme}
            )
        out = [t for t in out if catalog.task(t.task).programme == programme]
    return out


def progress_as_of(
    conn: psycopg.Connection[Any],
    as_of: dt.date,
    targets: Sequence[Target] | None = None,
    *,
    by_district: bool = False,
    district: str | None = None,
) -> list[TargetProgress]:
    """Progress of ``targets`` (default: all) as of ``as_of``, in one SQL statement.

    With ``district`` only that district's records are returned (implies ``by_district``).
    """
    targets = list(get_catalog().targets if targets is None else targets)
    query, params = progress_query(targets, as_of)
    rows = conn.execute(query, params).fetchall()
    result = assemble(targets, rows, as_of, by_district=by_district or district is not None)
    if district is not None:
        result = [r for r in result if r.district_code == district]
    return result


async def aprogress_as_of(
    conn: psycopg.AsyncConnection[Any],
    as_of: dt.date,
    targets: Sequence[Target] | None = None,
    *,
    by_district: bool = False,
    district: str | None = None,
) -> list[TargetProgress]:
    """:func:`progress_as_of` on an async connection (the API)."""
    targets = list(get_catalog().targets if targets is None else targets)
    query, params = progress_query(targets, as_of)
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    result = assemble(targets, rows, as_of, by_district=by_district or district is not None)
    if district is not None:
        result = [r for r in result if r.district_code == district]
    return result


# --------------------------------------------------------------------------- time series


def timeseries_query(target: Target, until: dt.date | None = None) -> tuple[sql.Composed, Params]:
    """Month-end values of a target from the month of its start to its deadline (or ``until``).

    One pass over the layer's status intervals (:func:`layers.history.status_intervals`: each
    status from its date until the feature's next one, with the running earliest date of
    reaching the target's status); month ends are range-joined to those intervals and the
    one rule :func:`layers.history.counts_toward` decides. Columns: ``as_of, n, actual``.
    """
    registry = get_registry()
    layer = registry.get(target.layer)
    params = Params(ts_from=target.start, ts_to=until or target.deadline)
    ts_to = sql.SQL("{}::date").format(sql.Placeholder("ts_to"))
    query = sql.SQL(
        """
        WITH months AS (
          SELECT least((date_trunc('month', d) + interval '1 month - 1 day')::date, {ts_to}) AS as_of
          FROM generate_series(date_trunc('month', {ts_from}::date), {ts_to}, interval '1 month') AS d
        ), h AS ({intervals}
        ), v AS (
          SELECT m.as_of, count(*)::int AS n, {measure} AS value
          FROM months AS m
          JOIN h ON h.valid_from <= m.as_of AND (h.valid_to IS NULL OR h.valid_to > m.as_of)
          JOIN {table} AS t ON t.id = h.feature_id
          WHERE {counts}
          GROUP BY m.as_of
        )
        SELECT m.as_of, coalesce(v.n, 0) AS n, coalesce(v.value, 0)::float8 AS actual
        FROM months AS m LEFT JOIN v USING (as_of)
        ORDER BY m.as_of
        """
    ).format(
        ts_from=sql.Placeholder("ts_from"), ts_to=ts_to, measure=_measure_sql(target),
        intervals=status_intervals(layer, params, until=ts_to, reached=reached_statuses(target, registry)),
        table=sql.Identifier(layer.schema_name, layer.table),
        counts=counts_toward(target, sql.SQL("h.status"), sql.SQL("h.reached_on"), sql.SQL("m.as_of"), params,
                             registry=registry),
    )
    return query, params


def timeseries_records(target: Target, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """JSON-ready month-end points with expected value and status."""
    out = []
    for as_of, n, actual in rows:
        p = TargetProgress(target, as_of, None, float(actual), int(n), target.value, 0.0)
        out.append({
            "as_of": as_of.isoformat(), "actual": round(p.actual, 3), "features": p.features,
            "expected": round(p.expected, 3), "percent": round(p.percent, 1), "status": p.status,
        })
    return out


def timeseries(conn: psycopg.Connection[Any], target: Target, until: dt.date | None = None) -> list[dict[str, Any]]:
    """Monthly series of a target (see :func:`timeseries_query`)."""
    query, params = timeseries_query(target, until)
    return timeseries_records(target, conn.execute(query, params).fetchall())


# --------------------------------------------------------------------------- ranking


def active_targets(targets: Sequence[Target], quarter: Quarter) -> list[Target]:
    """Targets whose window overlaps the quarter."""
    return [t for t in targets if t.start <= quarter.end and t.deadline >= quarter.start]


class DistrictScored(Protocol):
    """A district's share of a target or of a reported indicator: what the ranking averages."""

    @property
    def district_code(self) -> str | None: ...  # noqa: D102

    @property
    def goal(self) -> float: ...  # noqa: D102

    @property
    def percent(self) -> float: ...  # noqa: D102


def district_scores(records: Iterable[DistrictScored]) -> dict[str, tuple[float, int]]:
    """District → (mean of min(percent, 100) over targets and indicators with a quota, their number)."""
    acc: dict[str, list[float]] = {}
    for r in records:
        if r.district_code is None or r.goal <= 0:
            continue
        acc.setdefault(r.district_code, []).append(min(r.percent, 100.0))
    return {d: (sum(v) / len(v), len(v)) for d, v in acc.items()}


def rank(scores: dict[str, tuple[float, int]]) -> dict[str, int]:
    """Competition ranks by score descending, ties broken by district code (deterministic)."""
    order = sorted(scores, key=lambda d: (-round(scores[d][0], 9), d))
    return {d: i + 1 for i, d in enumerate(order)}


def ranking_from_records(
    current: Sequence[DistrictScored], previous: Sequence[DistrictScored], names: dict[str, str]
) -> list[dict[str, Any]]:
    """The ranking table from district records (targets and indicators) of this and the previous quarter."""
    now, before = district_scores(current), district_scores(previous)
    rank_now, rank_before = rank(now), rank(before)
    out = []
    for d, r in sorted(rank_now.items(), key=lambda kv: kv[1]):
        prev = rank_before.get(d)
        out.append({
            "rank": r, "district_code": d, "district_name": names.get(d, d), "score": round(now[d][0], 2),
            "targets": now[d][1], "previous_rank": prev,
            "previous_score": round(before[d][0], 2) if d in before else None,
            "change": (prev - r) if prev is not None else None,
        })
    return out


_DISTRICT_NAMES_SQL = "SELECT code, name FROM renewal.districts"


def district_names(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """District names by adcode, from ``renewal.districts``."""
    return {code: name for code, name in conn.execute(_DISTRICT_NAMES_SQL).fetchall()}


async def adistrict_names(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    """:func:`district_names` on an async connection (the API)."""
    cur = await conn.execute(_DISTRICT_NAMES_SQL)
    return {code: name for code, name in await cur.fetchall()}


def active_indicators(indicators: Sequence[Indicator], quarter: Quarter) -> list[Indicator]:
    """Indicators with district values whose window overlaps the quarter (they join the ranking)."""
    return [i for i in indicators if i.district_values and i.value is not None
            and i.start <= quarter.end and i.deadline >= quarter.start]


def ranking(
    conn: psycopg.Connection[Any], quarter: Quarter, targets: Sequence[Target] | None = None,
    indicators: Sequence[Indicator] | None = None,
) -> dict[str, Any]:
    """Quarterly ranking of districts over the active targets and indicators (see the module docstring).

    ``targets``/``indicators`` default to the whole catalog; pass ``indicators=[]`` to rank on
    the spatial targets alone.
    """
    from layers.indicators import district_indicator_records

    catalog = get_catalog()
    chosen = active_targets(list(catalog.targets if targets is None else targets), quarter)
    reported = active_indicators(list(catalog.indicators if indicators is None else indicators), quarter)
    current: list[DistrictScored] = [*progress_as_of(conn, quarter.end, chosen, by_district=True),
                                     *district_indicator_records(conn, quarter.end, reported)]
    previous: list[DistrictScored] = [
        *progress_as_of(conn, quarter.previous().end, chosen, by_district=True),
        *district_indicator_records(conn, quarter.previous().end, reported)]
    return {
        "quarter": str(quarter), "as_of": quarter.end.isoformat(), "previous_quarter": str(quarter.previous()),
        "targets": [t.id for t in chosen], "indicators": [i.id for i in reported],
        "ranking": ranking_from_records(current, previous, district_names(conn)),
    }
