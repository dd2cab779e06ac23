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
    A ``rising`` indicator (持续提升, no number) has no percent: it is on track while its latest
    report is above the baseline and not below the one before, behind otherwise, and at the
    deadline met or missed by the same test.
City and district reports
    City-wide reports have ``district_code`` NULL. Indicators with ``district_values`` also
    have district reports with the district's quota (任务分解); a district's percent is
    ``100 × value / quota`` (what the district did within the indicator's window) and its
    status follows the same thresholds. :func:`district_indicator_records` gives them to the
    quarterly ranking of :mod:`layers.progress`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from layers.plan import get_catalog
from layers.plan.models import Indicator
from layers.progress import STATUS_LABELS, classify, elapsed_fraction

ABOUT_TOLERANCE = 0.02

_LATEST_SQL = """
SELECT DISTINCT ON (r.indicator_id) r.indicator_id, r.report_date, r.value, r.source_doc, b.value AS baseline,
       b.report_date AS baseline_date, prev.value AS previous
FROM renewal.indicator_reports AS r
JOIN LATERAL (
  SELECT value, report_date FROM renewal.indicator_reports AS f
  WHERE f.indicator_id = r.indicator_id AND f.district_code IS NULL
  ORDER BY report_date, id LIMIT 1
) AS b ON true
LEFT JOIN LATERAL (
  SELECT p.value FROM renewal.indicator_reports AS p
  WHERE p.indicator_id = r.indicator_id AND p.district_code IS NULL
    AND (p.report_date, p.id) < (r.report_date, r.id)
  ORDER BY p.report_date DESC, p.id DESC LIMIT 1
) AS prev ON true
WHERE r.report_date <= %s AND r.district_code IS NULL
ORDER BY r.indicator_id, r.report_date DESC, r.id DESC
"""

_DISTRICT_SQL = """
SELECT DISTINCT ON (r.indicator_id, r.district_code) r.indicator_id, r.district_code, r.report_date, r.value,
       r.district_quota
FROM renewal.indicator_reports AS r
WHERE r.report_date <= %s AND r.district_code IS NOT NULL AND r.indicator_id = ANY(%s)
ORDER BY r.indicator_id, r.district_code, r.report_date DESC, r.id DESC
"""


def _met(ind: Indicator, value: float) -> bool:
    assert ind.value is not None
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
    _, reported_on, value, source_doc, base, base_date, previous = row
    if ind.value is None:  # rising: a direction, not a number
        rising = value > base and (previous is None or value >= previous)
        status = ("met" if rising else "missed") if as_of >= ind.deadline else ("on_track" if rising else "behind")
        return {
            **out, "value": value, "reported_on": reported_on.isoformat(), "report_source": source_doc,
            "baseline": base, "baseline_date": base_date.isoformat(), "percent": None, "expected": None,
            "status": status, "status_label": STATUS_LABELS[status],
        }
    span = ind.value - base
    percent = 100.0 if span == 0 else 100.0 * (value - base) / span
    fraction = elapsed_fraction(ind, as_of)
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


@dataclass(frozen=True)
class DistrictIndicator:
    """A district's latest report of an indicator with district values, as of a date."""

    indicator: Indicator
    district_code: str
    as_of: dt.date
    value: float
    quota: float

    @property
    def goal(self) -> float:
        """The district's quota (the ranking's goal)."""
        return self.quota

    @property
    def percent(self) -> float:
        """100 × value / quota."""
        return 100.0 * self.value / self.quota

    @property
    def status(self) -> str:
        """The status (met, on_track, at_risk, behind, missed) by the thresholds of :mod:`layers.progress`."""
        expected = self.quota * elapsed_fraction(self.indicator, self.as_of)
        return classify(self.value, self.quota, expected, self.as_of, self.indicator.deadline)


def district_indicator_records(
    conn: psycopg.Connection[Any], as_of: dt.date, indicators: list[Indicator]
) -> list[DistrictIndicator]:
    """District reports of ``indicators`` (those with ``district_values``) as of a date (one query)."""
    chosen = {i.id: i for i in indicators if i.district_values and i.value is not None}
    if not chosen:
        return []
    rows = conn.execute(_DISTRICT_SQL, (as_of, list(chosen))).fetchall()
    return [DistrictIndicator(chosen[i], d, as_of, float(v), float(q)) for i, d, _, v, q in rows]


async def adistrict_indicator_records(
    conn: psycopg.AsyncConnection[Any], as_of: dt.date, indicators: list[Indicator]
) -> list[DistrictIndicator]:
    """:func:`district_indicator_records` on an async connection (the API)."""
    chosen = {i.id: i for i in indicators if i.district_values and i.value is not None}
    if not chosen:
        return []
    cur = await conn.execute(_DISTRICT_SQL, (as_of, list(chosen)))
    return [DistrictIndicator(chosen[i], d, as_of, float(v), float(q)) for i, d, _, v, q in await cur.fetchall()]
