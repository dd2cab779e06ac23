"""Ledger attributes (实施主体, 投资, 资金来源 incl. 专项债, 改造类别): registry, import mapping, demo, report."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from layers.importer.mapping import map_columns
from layers.registry import get_registry
from layers.reports.data import LEDGER_LAYERS, investment

FIELDS = {"implementing_unit", "invest_planned", "invest_completed", "funding_source"}


@pytest.fixture(scope="module")
def db(db_url: str, demo_loaded: dict[str, int]) -> psycopg.Connection:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.mark.parametrize("layer_id", LEDGER_LAYERS)
def test_every_plan_layer_has_the_ledger_fields(layer_id: str) -> None:
    layer = get_registry().get(layer_id)
    assert FIELDS <= {f.name for f in layer.fields}
    funding = layer.field("funding_source").choices or []
    assert {c.label for c in funding} >= {"专项债", "财政资金"}


def test_reno_class_of_old_compounds() -> None:
    f = get_registry().get("old_compounds").field("reno_class")
    assert [c.label for c in f.choices or []] == ["基础类", "完善类", "提升类"]


def test_chinese_column_names_map_to_the_ledger_fields() -> None:
    layer = get_registry().get("old_compounds")
    cmap = map_columns(layer, ["小区编码", "小区名称", "实施单位", "总投资（万元）", "累计完成投资（万元）", "资金渠道",
                               "改造类型"])
    assert cmap.fields["implementing_unit"] == "实施单位"
    assert cmap.fields["invest_planned"] == "总投资（万元）"
    assert cmap.fields["invest_completed"] == "累计完成投资（万元）"
    assert cmap.fields["funding_source"] == "资金渠道"
    assert cmap.fields["reno_class"] == "改造类型"
    assert not cmap.unmapped


def test_demo_fills_the_attributes(db: psycopg.Connection) -> None:
    n, unit, planned, bond, classes = db.execute(
        "SELECT count(*), count(implementing_unit), count(invest_planned), "
        "count(*) FILTER (WHERE funding_source = 'special_bond'), count(DISTINCT reno_class) "
        "FROM renewal.old_compounds"
    ).fetchone()
    assert n == unit == planned and classes == 3 and 0.2 * n < bond < 0.45 * n
    # completed investment follows the status: none before work starts, never above the plan
    bad = db.execute(
        "SELECT count(*) FROM renewal.old_compounds WHERE invest_completed > invest_planned "
        "OR (status = 'pending' AND invest_completed > 0)"
    ).fetchone()[0]
    assert bad == 0


def test_report_sums_investment_by_district_and_source(db: psycopg.Connection) -> None:
    by_district, by_source = investment(db, None)
    assert by_district[-1]["name"] == by_source[-1]["name"] == "合计"
    tables = [get_registry().get(i).table for i in LEDGER_LAYERS]
    total = sum(db.execute(f"SELECT coalesce(sum(invest_planned), 0) FROM renewal.{t}").fetchone()[0]
                for t in tables)
    assert by_district[-1]["planned_raw"] == pytest.approx(total)
    assert sum(r["planned_raw"] for r in by_district[:-1]) == pytest.approx(total)
    assert sum(r["planned_raw"] for r in by_source[:-1]) == pytest.approx(total)
    assert "专项债" in {r["name"] for r in by_source}


def test_core_area_projects_feed_the_task_8_targets(db: psycopg.Connection) -> None:
    from layers.plan import get_target
    from layers.progress import progress_as_of

    land, roads = progress_as_of(db, dt.date(2025, 12, 31), [get_target("jiefang_street_land_started"),
                                                              get_target("core_road_network_started")])
    assert land.actual == pytest.approx(280, rel=0.02) and land.status == "met"
    assert 2.9 < roads.actual < 3.1 and roads.status == "missed"  # five of six areas started
