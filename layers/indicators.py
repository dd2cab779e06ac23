"""Progress of the plan's non-spatial indicators from officer reports (``renewal.indicator_reports``).

Value as of D
    The report with the latest ``report_date <= D`` (ties: the latest recorded, so a
    correction wins). Reports are append-only; the whole history stays.
Baseline
    The earliest report (the demo reports a 2020 baseline on 2020-12-31).
Percent
    Share of the way from the baseline to the target: ``(value − base) / (target − base)``
    (for ``at_most`` indicators such as PM2.5 the same formula works, both differences are
    negative). Expected and status follow :mod:`layers.progress` (linear from ``start`` to the
    deadline, 90 %/70 % thresholds); ``about`` targets count as met within ±2 % of the value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from layers.plan import get_catalog
from layers.plan.models import Indicator
from layers.progress import STATUS_LABELS, classify

ABOUT_TOLERANCE = 0.02

_LATEST_SQL = """
SELECT DISTINCT ON (r.indicator_id) r.indicator_id, r.report_date, r.value, r.source_doc, b.value AS baseline,
       b.report_date AS baseline_date
FROM renewal.indicator_reports AS r
JOIN LATERAL (
  SELECT value, report_date FROM renewal.indicator_reports AS f WHERE f.indicator_id = r.indicator_id
  ORDER BY report_date, id LIMIT 1
) AS b ON true
WHERE r.report_date <= %s
ORDER BY r.indicator_id, r.report_date DESC, r.id DESC
"""


def _met(ind: Indicator, value: float) -> bool:
    if ind.direction == "at_least":
        return value >= ind.value
    if ind.direction == "at_most":
        return value <= ind.value
    return abs(value - ind.value) <= ABOUT_TOLERANCE * abs(ind.value) or value >= ind.value


def indicator_record(ind: Indicator, as_of: dt.date, row: tuple[Any, ...] | None) -> dict[str, Any]:
    """One indicator's progress as of a date from its latest report row (None: nothing reported yet)."""
    out: dict[str, Any] = {
        "indicator": ind.id, "task": ind.task, "title": ind.title, "unit": ind.unit, "target_value": ind.value,
        "direction": ind.direction, "deadline": ind.deadline.isoformat(), "source": ind.source,
        "as_of": as_of.isoformat(),
    }
    if row is None:
        return {**out, "value": None, "reported_on": None, "percent": None, "status": None, "status_label": "未填报"}
    _, reported_on, value, source_doc, base, base_date = row
    span = ind.value - base
    percent = 100.0 if span == 0 else 100.0 * (value - base) / span
    if as_of >= ind.deadline:
        fraction = 1.0
    elif as_of <= ind.start:
        fraction = 0.0
    else:
        fraction = (as_of - ind.start).days / (ind.deadline - ind.start).days
    # compare progress along the way (value − base) with the expected share of (target − base)
    done, goal = (value - base, span) if span > 0 else (base - value, -span)
    status = "met" if _met(ind, value) else classify(done, goal if goal > 0 else 1.0, goal * fraction, as_of,
                                                     ind.deadline)
    if status == "met" and not _met(ind, value):
        status = "on_track"
    return {
        **out, "value": value, "reported_on": reported_on.isoformat(), "report_source": source_doc,
        "baseline": base, "baseline_date": base_date.isoformat(), "percent": round(percent, 1),
        "expected": round(base + span * fraction, 3), "status": status, "status_label": STATUS_LABELS[status],
    }


def indicator_progress(conn: psycopg.Connection[Any], as_of: dt.date) -> list[dict[str, Any]]:
    """Every catalog indicator as of a date (one query)."""
    rows = {r[0]: r for r in conn.execute(_LATEST_SQL, (as_of,)).fetchall()}
    return [indicator_record(i, as_of, rows.get(i.id)) for i in get_catalog().indicators]


async def aindicator_progress(conn: psycopg.AsyncConnection[Any], as_of: dt.date) -> list[dict[str, Any]]:
    """:func:`indicator_progress` on an async connection."""
    cur = await conn.execute(_LATEST_SQL, (as_of,))
    rows = {r[0]: r for r in await cur.fetchall()}
    return [indicator_record(i, as_of, rows.get(i.id)) for i in get_catalog().indicators]


async def indicator_history(conn: psycopg.AsyncConnection[Any], indicator_id: str) -> list[dict[str, Any]]:
    """Every report of an indicator, oldest first."""
    cur = await conn.execute(
        "SELECT id, report_date, value, source_doc, note, reported_by, recorded_at FROM renewal.indicator_reports "
        "WHERE indicator_id = %s ORDER BY report_date, id",
        (indicator_id,),
    )
    return [
        {"id": i, "report_date": d.isoformat(), "value": v, "source_doc": s, "note": n, "reported_by": b,
         "recorded_at": r.isoformat()}
        for i, d, v, s, n, b, r in await cur.fetchall()
    ]
