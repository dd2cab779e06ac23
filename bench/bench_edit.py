"""One parcel edit on the million-parcel demo: its UPDATE with the overview's emptied-cells index (0018) and without.

Every statement on ``land_parcels`` runs the overview trigger, which ends with ``DELETE ... WHERE n
<= 0``. This times the UPDATE of one parcel's land-use class (what an officer's PATCH runs, triggers
included) server-side with ``EXPLAIN ANALYZE``, side by side in one run: as migrated, and with the
partial index dropped inside a transaction that is rolled back (nothing is changed). Each variant runs
``--repeat`` edits of distinct parcels after one warm-up edit; prints the medians and their ratio.

Usage: ``.venv/bin/python bench/bench_edit.py --db postgresql:///renewal_bench_dst_40``
(the database ``bench/bench_import.py`` leaves behind, or any demo at ``--scale 40``).
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

import psycopg

CLASSES = ("1001", "1002", "0701", "0801")
INDEX = "renewal.land_parcels_overview_emptied_idx"


def _edit_ms(conn: psycopg.Connection[Any], fid: int, cls: str) -> float:
    plan = conn.execute(
        "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) "
        "UPDATE renewal.land_parcels SET land_use_code = %s WHERE id = %s",
        (cls, fid),
    ).fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


def run(conn: psycopg.Connection[Any], ids: list[int], *, with_index: bool) -> list[float]:
    """Edit times (ms) of ``ids`` in one rolled-back transaction, the emptied-cells index kept or dropped."""
    with conn.transaction(force_rollback=True):
        if not with_index:
            conn.execute(f"DROP INDEX {INDEX}")
        _edit_ms(conn, ids[0], CLASSES[0])  # warm-up: trigger functions compiled, plans cached
        return [_edit_ms(conn, fid, CLASSES[i % len(CLASSES)]) for i, fid in enumerate(ids[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="postgresql:///renewal_bench_dst_40")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with psycopg.connect(args.db) as conn:
        n_parcels, n_cells = conn.execute(
            "SELECT (SELECT count(*) FROM renewal.land_parcels), (SELECT count(*) FROM renewal.land_parcels_overview)"
        ).fetchone() or (0, 0)
        lo, hi = conn.execute("SELECT min(id), max(id) FROM renewal.land_parcels").fetchone() or (0, 0)
        step = max(1, (hi - lo) // (2 * args.repeat + 4))
        ids = list(range(lo + step, hi, step))
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        print(f"{n_parcels:,} parcels, {n_cells:,} overview cells; {args.repeat} edits per variant")
        kept = run(conn, ids[: args.repeat + 1], with_index=True)
        dropped = run(conn, ids[args.repeat + 1 : 2 * args.repeat + 2], with_index=False)
    a, b = statistics.median(kept), statistics.median(dropped)
    print(f"{'UPDATE of one parcel (server ms)':36}{'p50':>8}{'max':>8}")
    print(f"{'  with the emptied-cells index':36}{a:>8.2f}{max(kept):>8.2f}")
    print(f"{'  without it (0017)':36}{b:>8.2f}{max(dropped):>8.2f}")
    print(f"without / with: {b / a:.1f}x")


if __name__ == "__main__":
    main()
