"""``/progress``, ``/progress/{target}``, ``/timeseries``, ``/ranking`` and ``/indicators`` over HTTP."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from layers.plan import get_catalog
from layers.progress import Quarter, progress_as_of, ranking


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> psycopg.Connection:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.mark.parametrize("as_of", ["2021-06-30", "2021-09-30", "2023-12-31"])
def test_progress_all_targets(client, db, as_of: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/progress", params={"as_of": as_of})
    assert r.status_code == 200
    body = r.json()
    expected = {x.target.id: x for x in progress_as_of(db, dt.date.fromisoformat(as_of))}
    assert body["count"] == len(get_catalog().targets) == len(body["targets"])
    for item in body["targets"]:
        rec = expected[item["target"]]
        assert item["actual"] == pytest.approx(rec.actual, abs=1e-3)
        assert item["status"] == rec.status and item["district_code"] is None
    assert sum(body["summary"].values()) == body["count"]


def test_progress_filters(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/progress", params={"as_of": "2021-09-30", "task": 14}).json()
    assert {t["task"] for t in body["targets"]} == {14} and body["count"] == 4
    body = client.get("/progress", params={"as_of": "2021-09-30", "programme": 7}).json()
    assert [t["target"] for t in body["targets"]] == ["toll_stations_removed"]
    body = client.get("/progress", params={"as_of": "2021-09-30", "district": "130102"}).json()
    assert body["count"] > 0 and {t["district_code"] for t in body["targets"]} == {"130102"}


def test_progress_target_with_districts(client, db) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/progress/compounds_renovated_2021", params={"as_of": "2021-09-30"}).json()
    recs = progress_as_of(db, dt.date(2021, 9, 30), [get_catalog().target("compounds_renovated_2021")],
                          by_district=True)
    assert body["actual"] == recs[0].actual
    assert {d["district_code"]: d["actual"] for d in body["districts"]} == {
        r.district_code: r.actual for r in recs[1:]}
    assert sum(d["target_value"] for d in body["districts"]) == pytest.approx(645, abs=0.01)


def test_timeseries(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/progress/roads_started_2022/timeseries").json()
    pts = body["points"]
    assert pts[0]["as_of"] == "2022-01-31" and pts[-1]["as_of"] == "2022-12-31" and len(pts) == 12
    assert pts[-1]["status"] in ("met", "missed")
    part = client.get("/progress/roads_started_2022/timeseries", params={"until": "2022-06-15"}).json()["points"]
    assert part[-1]["as_of"] == "2022-06-15" and len(part) == 6


@pytest.mark.parametrize("quarter", ["2021Q4", "2022Q3"])
def test_ranking(client, db, quarter: str) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/progress/ranking", params={"quarter": quarter}).json()
    expected = ranking(db, Quarter.parse(quarter))
    assert body["ranking"] == expected["ranking"] and body["targets"] == expected["targets"]
    assert [r["rank"] for r in body["ranking"]] == list(range(1, len(body["ranking"]) + 1))
    one = client.get("/progress/ranking", params={"quarter": "2021Q3", "target": "villages_started_2021"}).json()
    assert one["targets"] == ["villages_started_2021"] and one["ranking"]


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/progress?as_of=2021-02-30", 400),
        ("/progress?as_of=soon", 400),
        ("/progress?as_of=1900-01-01", 400),
        ("/progress?task=0", 400),
        ("/progress?programme=10", 400),
        ("/progress?district=999999", 400),
        ("/progress/no_such_target", 404),
        ("/progress/no_such_target/timeseries", 404),
        ("/progress/villages_started_2021?as_of=31.12.2021", 400),
        ("/progress/villages_started_2021/timeseries?until=2020-01-01", 400),
        ("/progress/ranking", 400),
        ("/progress/ranking?quarter=2022Q5", 400),
        ("/progress/ranking?quarter=Q3-2022", 400),
        ("/progress/ranking?quarter=2022Q3&target=nope", 404),
        ("/progress/ranking?quarter=2030Q1", 404),
        ("/indicators?as_of=x", 400),
        ("/indicators/no_such_indicator", 404),
    ],
)
def test_errors_are_problem_json(client, url: str, status: int) -> None:  # type: ignore[no-untyped-def]
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]


def test_indicators_as_of(client, db) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/indicators", params={"as_of": "2021-12-31"}).json()
    gdp = next(i for i in body["indicators"] if i["indicator"] == "gdp")
    # the latest report on or before the date; the correction (recorded later, same date) wins
    value = db.execute(
        "SELECT value FROM renewal.indicator_reports WHERE indicator_id = 'gdp' AND report_date <= '2021-12-31' "
        "ORDER BY report_date DESC, id DESC LIMIT 1"
    ).fetchone()[0]
    assert gdp["value"] == value == 6535.0 and gdp["baseline"] == 5935.0
    before = client.get("/indicators", params={"as_of": "2020-06-30"}).json()
    assert all(i["value"] is None for i in before["indicators"])
    history = client.get("/indicators/gdp").json()["reports"]
    assert len(history) == db.execute(
        "SELECT count(*) FROM renewal.indicator_reports WHERE indicator_id = 'gdp'").fetchone()[0]


def test_reporting_needs_a_user(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/indicators/gdp/reports", json={"report_date": "2026-06-30", "value": 9000})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_reports_are_append_only(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute("UPDATE renewal.indicator_reports SET value = 0 WHERE indicator_id = 'gdp'")
