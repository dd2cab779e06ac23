"""Progress of the plan's targets (``/progress``) and reported indicators (``/indicators``).

The rules (status as of a date, expected value, thresholds, district quotas, ranking)
are documented once in :mod:`layers.progress`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.access import PlanAggregates
from api.auth import Principal, require_authenticated
from api.city import CityDep
from api.deps import PoolDep
from api.params import AsOf, as_of_query, check_district
from api.pending import IncludePending, counted_picture, pending_notice
from gis.errors import InvalidInputError, NotFoundError
from layers.city import CityProfile
from layers.history import STATUS_AS_OF_RULE
from layers.indicators import adistrict_indicator_records, aindicator_progress, indicator_history
from layers.plan import get_catalog
from layers.progress import (
    AT_RISK_RATIO,
    ON_TRACK_RATIO,
    DistrictScored,
    Quarter,
    active_indicators,
    active_targets,
    aprogress_as_of,
    parse_as_of,
    ranking_from_records,
    select_targets,
    timeseries_query,
    timeseries_records,
)

ORDER = 40
router = APIRouter(tags=["progress"])

RULES = {
    "status_as_of": STATUS_AS_OF_RULE,
    "expected": "target × clamp((as_of − start) / (deadline − start), 0, 1)",
    "thresholds": {
        "met": "actual ≥ target",
        "missed": "as_of ≥ deadline and actual < target",
        "on_track": f"actual ≥ {ON_TRACK_RATIO:.0%} of expected",
        "at_risk": f"actual ≥ {AT_RISK_RATIO:.0%} of expected",
        "behind": "otherwise",
    },
}


def _no_plan(city: CityProfile) -> str:
    """What progress pages say for a city without a plan catalog."""
    return f"{city.name}没有规划目标（未配置规划目录）。{city.name_en} has no plan targets (no plan catalog)."


@router.get("/progress", summary="Progress of every plan target as of a date (optionally one district or task)",
            dependencies=[PlanAggregates])
async def progress(
    request: Request,
    pool: PoolDep,
    city: CityDep,
    as_of: AsOf = None,
    district: Annotated[str | None, Query(description="adcode, e.g. 130102: that district's share")] = None,
    task: Annotated[int | None, Query(description="Task number 1–45")] = None,
    programme: Annotated[int | None, Query(description="Programme number 1–9")] = None,
    include_pending: IncludePending = False,
) -> dict[str, Any]:
    """City-wide records (or one district's apportioned records) for the chosen targets."""
    date = parse_as_of(as_of)
    check_district(district, city)
    targets = select_targets(task=task, programme=programme)
    async with pool.connection() as conn, counted_picture(request, conn, include_pending) as pending:
        records = await aprogress_as_of(conn, date, targets, district=district)
    items = [r.as_dict() for r in records]
    summary: dict[str, int] = {}
    for it in items:
        summary[it["status"]] = summary.get(it["status"], 0) + 1
    body = {"as_of": date.isoformat(), "district": district, "count": len(items), "summary": summary,
            "rules": RULES, "targets": items, "include_pending": include_pending}
    if include_pending:
        body["pending_applied"] = pending  # counted by the switch itself (counted_changes), not queried again
        body["notice"] = pending_notice(pending)  # the maps' and ledgers' notice, with the number
    if not get_catalog().targets:
        body["message"] = _no_plan(city)
    return body


@router.get("/progress/ranking", summary="Quarterly ranking of districts (每季度督导排位) with the change in rank",
            dependencies=[PlanAggregates])
async def progress_ranking(
    pool: PoolDep,
    city: CityDep,
    quarter: Annotated[str, Query(description="e.g. 2022Q3", examples=["2022Q3"])],
    target: Annotated[str | None, Query(description="One target id")] = None,
    programme: Annotated[int | None, Query(description="Programme number 1–9")] = None,
) -> dict[str, Any]:
    """Rank districts by mean percent over the targets (and district-reported indicators) active in the quarter."""
    q = Quarter.parse(quarter)
    chosen = active_targets(select_targets(programme=programme, target=target), q)
    catalog = get_catalog()
    reported = [] if target is not None else active_indicators(
        [i for i in catalog.indicators if programme is None or catalog.task(i.task).programme == programme], q)
    if not catalog.targets and not catalog.indicators:  # a city without a plan: nothing to rank, not an error
        return {
            "quarter": str(q), "as_of": q.end.isoformat(), "previous_quarter": str(q.previous()),
            "targets": [], "indicators": [], "ranking": [], "message": _no_plan(city),
        }
    if not chosen:
        raise NotFoundError(
            f"No target of this selection runs in {q} ({q.start} to {q.end}); choose another quarter or target.",
            detail={"quarter": str(q)},
        )
    async with pool.connection() as conn:
        current: list[DistrictScored] = [*await aprogress_as_of(conn, q.end, chosen, by_district=True),
                                         *await adistrict_indicator_records(conn, q.end, reported)]
        previous: list[DistrictScored] = [
            *await aprogress_as_of(conn, q.previous().end, chosen, by_district=True),
            *await adistrict_indicator_records(conn, q.previous().end, reported)]
        cur = await conn.execute("SELECT code, name FROM renewal.districts")
        names = {code: name for code, name in await cur.fetchall()}
    return {
        "quarter": str(q), "as_of": q.end.isoformat(), "previous_quarter": str(q.previous()),
        "targets": [t.id for t in chosen], "indicators": [i.id for i in reported],
        "ranking": ranking_from_records(current, previous, names),
    }


@router.get("/progress/{target}", summary="One target: city-wide and per district as of a date",
            dependencies=[PlanAggregates])
async def progress_target(target: str, pool: PoolDep, as_of: AsOf = None) -> dict[str, Any]:
    """The target with its district breakdown."""
    date = parse_as_of(as_of)
    t = select_targets(target=target)
    async with pool.connection() as conn:
        records = await aprogress_as_of(conn, date, t, by_district=True)
    city = records[0].as_dict()
    city["districts"] = [r.as_dict() for r in records[1:]]
    city["note"] = t[0].note
    return city


@router.get("/progress/{target}/timeseries", summary="Month-end values of one target (for charts)",
            dependencies=[PlanAggregates])
async def progress_timeseries(
    target: str, pool: PoolDep,
    until: Annotated[str | None, as_of_query("Last date YYYY-MM-DD (default: the deadline)")] = None,
) -> dict[str, Any]:
    """Month-end actual, expected, percent and status from the target's start to its deadline."""
    t = select_targets(target=target)[0]
    end = parse_as_of(until) if until else None
    if end is not None and end < t.start:
        raise InvalidInputError(f"until {end} is before the target's start {t.start}.")
    query, params = timeseries_query(t, end)
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        rows = await cur.fetchall()
    return {"target": t.id, "title": t.title, "unit": t.unit, "target_value": t.value,
            "start": t.start.isoformat(), "deadline": t.deadline.isoformat(), "points": timeseries_records(t, rows)}


# --------------------------------------------------------------------------- indicators


class IndicatorReport(BaseModel):
    """A value an officer reports for an indicator."""

    report_date: dt.date = Field(description="The date the value is as of")
    value: float
    source_doc: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


@router.get("/indicators", summary="Reported indicators (GDP, PM2.5, urbanisation, …) with progress as of a date",
            dependencies=[PlanAggregates])
async def indicators(pool: PoolDep, as_of: AsOf = None) -> dict[str, Any]:
    """Every indicator of the catalog with its latest value on or before ``as_of``."""
    date = parse_as_of(as_of)
    async with pool.connection() as conn:
        items = await aindicator_progress(conn, date)
    return {"as_of": date.isoformat(), "count": len(items), "indicators": items}


@router.get("/indicators/{indicator}", summary="One indicator's report history", dependencies=[PlanAggregates])
async def indicator(indicator: str, pool: PoolDep) -> dict[str, Any]:
    """Every report, oldest first (corrections included)."""
    ind = _indicator(indicator)
    async with pool.connection() as conn:
        history = await indicator_history(conn, ind.id)
    return {"indicator": ind.model_dump(mode="json"), "reports": history}


@router.post("/indicators/{indicator}/reports", status_code=201, summary="Report a value of an indicator")
async def report_indicator(
    indicator: str, body: IndicatorReport, pool: PoolDep,
    principal: Annotated[Principal, Depends(require_authenticated)],
) -> dict[str, Any]:
    """Append a report as the signed-in user (reports are never changed; a correction is a new report)."""
    ind = _indicator(indicator)
    parse_as_of(body.report_date)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO renewal.indicator_reports (indicator_id, report_date, value, source_doc, note, reported_by) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, recorded_at",
            (ind.id, body.report_date, body.value, body.source_doc, body.note, principal.name),
        )
        row = await cur.fetchone()
    assert row is not None
    return {"id": row[0], "indicator": ind.id, "recorded_at": row[1].isoformat(), "reported_by": principal.name,
            **body.model_dump(mode="json")}


def _indicator(indicator_id: str) -> Any:
    ind = get_catalog().indicator(indicator_id)
    if ind is None:
        known = ", ".join(i.id for i in get_catalog().indicators)
        raise NotFoundError(f"There is no indicator '{indicator_id}'. Known indicators: {known}.")
    return ind
