"""Progress of every plan target as of a date, on the demo data (budget: < 300 ms).

Prints, measured in one run: all targets city-wide, all targets with the district
breakdown, the quarterly ranking (two as-of dates), one monthly series and the indicators,
each as the median and the worst of N runs over several as-of dates.

Uses DATABASE_URL (default: the `renewal` database of `make demo`).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time

import psycopg

from layers.indicators import indicator_progress
from layers.plan import get_catalog, get_target
from layers.progress import Quarter, progress_as_of, ranking, timeseries

BUDGET_MS = 300.0
DATES = [dt.date(2021, 6, 30), dt.date(2021, 9, 30), dt.date(2021, 12, 31), dt.date(2023, 6, 30), dt.date(2025, 12, 31)]
RUNS = 5


def timed(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(RUNS):
        for d in DATES:
            t0 = time.perf_counter()
            fn(d)
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), max(samples)


def main() -> None:
    url = os.environ.get("DATABASE_URL", "postgresql:///renewal")
    n_targets = len(get_catalog().targets)
    with psycopg.connect(url) as conn:
        n_hist = conn.execute("SELECT count(*) FROM renewal.status_history").fetchone()[0]  # type: ignore[index]
        progress_as_of(conn, DATES[0])  # warm the catalog and the plan cache
        cases = [
            (f"all {n_targets} targets, city-wide", lambda d: progress_as_of(conn, d)),
            (f"all {n_targets} targets + districts", lambda d: progress_as_of(conn, d, by_district=True)),
            ("quarterly ranking (2 as-of dates)", lambda d: ranking(conn, Quarter(d.year, (d.month - 1) // 3 + 1))),
            ("monthly series, 60 months", lambda d: timeseries(conn, get_target("compounds_advanced_fyp"))),
            ("indicators (latest report)", lambda d: indicator_progress(conn, d)),
        ]
        print(f"status_history rows: {n_hist:,}; as-of dates: {', '.join(map(str, DATES))}; {RUNS} runs each")
        print(f"{'case':45s} {'median ms':>10s} {'max ms':>10s}  budget {BUDGET_MS:.0f} ms")
        worst_all = 0.0
        for name, fn in cases:
            med, worst = timed(fn)
            if name.startswith("all"):
                worst_all = max(worst_all, worst)
            print(f"{name:45s} {med:10.1f} {worst:10.1f}  {'ok' if worst < BUDGET_MS else 'OVER'}")
        print(f"all targets as of any date: worst {worst_all:.1f} ms = {worst_all / BUDGET_MS:.2f} × budget")


if __name__ == "__main__":
    main()
