"""Every output agrees on each feature's status as of a date, features imported late included.

A scratch copy of the demo city gets old compounds that were imported late: some with no
history at all, some created after their first history row, some created long before it,
two rows on one day. On several dates the statuses and counts of progress, the folium map's
GeoJSON, the XLSX ledgers, the viewer's endpoints (date slider states, popup, target
highlight) and the analysis functions must agree with each other on every feature, and with
the rule of ``layers/history.py`` re-implemented here in Python for the late features.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from layers import analysis as an
from layers.ledger import layer_ledger, target_rows
from layers.maps import layer_features_query
from layers.plan import get_target
from layers.plan.models import Target
from layers.progress import progress_as_of, timeseries
from layers.registry import get_registry
from tests.conftest import api_settings, scratch_demo_database

LAYER = "old_compounds"
DATES = [
    dt.date(2020, 12, 31), dt.date(2021, 3, 31), dt.date(2021, 6, 30), dt.date(2021, 8, 30),
    dt.date(2021, 9, 30), dt.date(2021, 12, 31), dt.date(2022, 6, 30),
]
TZ = dt.timezone(dt.timedelta(hours=8))

LATE: list[tuple[str, dt.datetime, list[tuple[str, dt.date]]]] = [
    # existed since mid-2020, never recorded: pending on every date
    ("HX-A", dt.datetime(2020, 6, 1, 10, tzinfo=TZ), []),
    # created in 2022 without history: absent before, pending after
    ("HX-B", dt.datetime(2022, 3, 1, 10, tzinfo=TZ), []),
    # created in May 2021, completed in September (the import carried only that row)
    ("HX-C", dt.datetime(2021, 5, 1, 10, tzinfo=TZ), [("completed", dt.date(2021, 9, 1))]),
    # imported in 2023 with its earlier history: the history rules, absent before its first row
    ("HX-D", dt.datetime(2023, 1, 1, 10, tzinfo=TZ), [("started", dt.date(2021, 3, 1)),
                                                     ("completed", dt.date(2021, 10, 1))]),
    # two rows on one day: the last recorded wins
    ("HX-E", dt.datetime(2021, 1, 10, 10, tzinfo=TZ), [("started", dt.date(2021, 2, 1)),
                                                      ("completed", dt.date(2021, 2, 1))]),
    # created late at night UTC = next morning in Shijiazhuang: the local date counts
    ("HX-F", dt.datetime(2021, 8, 30, 23, 30, tzinfo=dt.UTC), [("started", dt.date(2021, 9, 15))]),
]


def expected(created: dt.datetime, rows: list[tuple[str, dt.date]], day: dt.date) -> str | None:
    """The rule, written independently: last row by the day, else pending if created by then, else absent."""
    by_day = [(d, i, status) for i, (status, d) in enumerate(rows) if d <= day]  # i: recorded order
    if by_day:
        return max(by_day)[2]
    return "pending" if created.astimezone(TZ).date() <= day else None


def first_existing(created: dt.datetime, rows: list[tuple[str, dt.date]]) -> dt.date:
    """The first date the feature exists (its creation, or an earlier first history row)."""
    return min([created.astimezone(TZ).date(), *(d for _, d in rows)])


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    """A scratch demo database with the late features, an app on it, and the late features' ids."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with scratch_demo_database("renewal_history") as url:
        ids: dict[str, int] = {}
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT set_config('renewal.history_mode', 'manual', true)")
            conn.execute("SELECT set_config('renewal.actor', 'history-test', true)")
            for code, created, rows in LATE:
                current = rows[-1][0] if rows else "pending"
                row = conn.execute(
                    """
                    INSERT INTO renewal.old_compounds
                      (code, name, district_code, status, households, renovation_year, geom, created_at)
                    SELECT %(code)s, %(name)s, d.code, %(status)s, 100, 2021,
                           ST_Multi(ST_Buffer(ST_PointOnSurface(d.geom), 0.001, 4)), %(created)s
                    FROM renewal.districts AS d ORDER BY d.code LIMIT 1
                    RETURNING id
                    """,
                    {"code": code, "name": f"补录小区{code}", "status": current, "created": created},
                ).fetchone()
                assert row is not None
                ids[code] = row[0]
                previous = None
                for status, day in rows:
                    conn.execute(
                        "INSERT INTO renewal.status_history (layer, feature_id, code, from_status, to_status, "
                        "effective_date, recorded_by) VALUES ('old_compounds', %s, %s, %s, %s, %s, 'history-test')",
                        (ids[code], code, previous, status, day),
                    )
                    previous = status
        with TestClient(create_app(api_settings(url))) as client:
            yield {"url": url, "ids": ids, "client": client}


def map_statuses(conn: psycopg.Connection[Any], day: dt.date) -> dict[int, str]:
    """id → status in the GeoJSON the folium map draws."""
    query, params = layer_features_query(get_registry().get(LAYER), day)
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return {f["id"]: f["properties"]["status"] for f in json.loads(row[0])["features"]}


@pytest.mark.parametrize("day", DATES, ids=str)
def test_outputs_agree_on_every_feature(world: dict[str, Any], day: dt.date, tmp_path: Path) -> None:
    client, ids = world["client"], world["ids"]
    layer = get_registry().get(LAYER)
    assert layer.lifecycle is not None
    labels = {s.code: s.label for s in layer.lifecycle.statuses}
    with psycopg.connect(world["url"], autocommit=True) as conn:
        code_of = dict(conn.execute("SELECT id, code FROM renewal.old_compounds").fetchall())
        # the viewer's date slider: every feature, null = absent
        body = client.get("/viewer/status-as-of", params={"layer": LAYER, "as_of": day.isoformat()}).json()
        viewer = {int(k): v for k, v in body["states"].items()}
        assert set(viewer) == set(code_of)
        present = {i: s for i, s in viewer.items() if s is not None}
        assert body["counts"] == dict(Counter(s or "none" for s in viewer.values()))
        # the late features follow the rule
        for code, created, rows in LATE:
            assert viewer[ids[code]] == expected(created, rows, day), code
        # the folium map's GeoJSON: the same statuses, absent features left out
        assert map_statuses(conn, day) == present
        # the analysis functions
        gdf = an.read_layer(conn, LAYER, day)
        got = {c: s for c, s in zip(gdf["code"], gdf["status_as_of"], strict=True) if isinstance(s, str)}
        assert got == {code_of[i]: s for i, s in present.items()}
        series = an.status_counts_over_time(conn, LAYER, [day])
        assert series.iloc[0].to_dict() == {s: float(Counter(present.values())[s]) for s in layer.lifecycle.codes}
        by_district = an.renovation_by_district(conn, day)
        assert int(by_district["compounds"].sum()) == len(present)
        assert int(by_district["compounds_completed"].sum()) == Counter(present.values())["completed"]
        # the layer ledger (XLSX), read back
        wb = load_workbook(layer_ledger(conn, layer, day, tmp_path / "ledger.xlsx"))
        ledger = {r[0]: r[-2] for name in wb.sheetnames[1:] for r in wb[name].iter_rows(min_row=2, values_only=True)}
        assert ledger == {code_of[i]: labels[s] for i, s in present.items()}
    # the popup of each late feature: the status on the date, and the current one
    for code, created, rows in LATE:
        popup = client.get(f"/viewer/history/{LAYER}/{ids[code]}", params={"as_of": day.isoformat()}).json()
        assert popup["status_as_of"] == expected(created, rows, day), code
        assert popup["status"] == (rows[-1][0] if rows else "pending")
        assert popup["as_of"] == day.isoformat()


def pending_target() -> Target:
    """A target on the first status, so rule 2 (first status without history) is what counts."""
    target = get_target("compounds_renovated_2021")
    return target.model_copy(update={"id": "compounds_listed_2021", "status": "pending"})


@pytest.mark.parametrize("day", DATES, ids=str)
@pytest.mark.parametrize("target_id", ["compounds_renovated_2021", "compounds_listed_2021"])
def test_counts_toward_targets_agree(world: dict[str, Any], day: dt.date, target_id: str) -> None:
    client = world["client"]
    target = pending_target() if target_id == "compounds_listed_2021" else get_target(target_id)
    with psycopg.connect(world["url"], autocommit=True) as conn:
        city = progress_as_of(conn, day, [target])[0]
        rows = target_rows(conn, target, day)
        counted = {code for _, code, _, _, _, _, _, counts in rows if counts}
        assert city.features == len(counted)
        if target.start <= day <= target.deadline:  # the monthly series ends on the day
            last = timeseries(conn, target, day)[-1]
            assert last["as_of"] == day.isoformat() and last["features"] == city.features
        code_of = dict(conn.execute("SELECT id, code FROM renewal.old_compounds").fetchall())
    if target_id == "compounds_renovated_2021":  # a catalog target: the viewer highlights the same features
        body = client.get("/viewer/target-features", params={"target": target.id, "as_of": day.isoformat()}).json()
        assert {code_of[i] for i in body["ids"]} == counted
    # the late features count exactly when the rule says so
    stop = min(target.deadline, day)
    for code, created, hist in LATE:
        status = expected(created, hist, day)
        if target.status == "pending":
            reached = first_existing(created, hist) if status is not None else None
        else:
            reached = min((d for s, d in hist if s == "completed" and d <= day), default=None)
        counts = status is not None and reached is not None and target.start <= reached <= stop
        if target.status == "completed":
            counts = counts and status == "completed"
        assert (code in counted) == counts, (code, day)
