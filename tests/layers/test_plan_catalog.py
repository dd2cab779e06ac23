"""The plan catalog: 45 tasks in nine programmes, targets quoted verbatim, validated against the registry."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from layers.plan import get_catalog, load_catalog
from layers.plan.models import Catalog, Target
from layers.registry import get_registry


def test_45_tasks_in_nine_programmes(plan_text: str) -> None:
    c = load_catalog()
    assert [t.number for t in c.tasks] == list(range(1, 46))
    assert [p.name for p in c.programmes][:3] == ["铸魂强基工程", "跨越赶超工程", "空间拓展工程"]
    assert len(c.programmes) == 9
    for t in c.tasks:  # every title is the task's opening sentence in the plan
        assert f"{t.number}.{t.title}。" in plan_text, t.number
    assert c.programme_of(13).name == "空间拓展工程" and c.programme_of(32).name == "交通畅通工程"
    assert c.task(32).final_deadline is not None and c.task(32).final_deadline.isoformat() == "2021-09-30"


def test_every_source_is_quoted_verbatim(plan_text: str) -> None:
    c = get_catalog()
    for item in [*c.targets, *c.indicators, *c.compliance]:
        assert item.source in plan_text, item.id
    assert c.plan.supervision_source in plan_text


def test_every_deadline_is_quoted_or_its_reading_noted(plan_text: str) -> None:
    c = get_catalog()
    for item in [*c.targets, *c.indicators]:
        assert item.deadline_source or item.deadline_note, item.id
        if item.deadline_source:
            assert item.deadline_source in plan_text, item.id
    for comp in c.compliance:
        assert comp.deadline_note
    # the readings the issue names
    national_day = [d for d in c.task(13).deadlines if "十一" in d.what]
    assert [d.date.isoformat() for d in national_day] == ["2021-09-30"]
    assert national_day[0].reading and "国庆" in national_day[0].reading
    assert all(d.reading for d in c.task(14).deadlines)
    assert "2025年前" in (c.task(25).deadlines[0].reading or "")
    substations = c.indicator("substations_220kv")
    assert substations is not None and "2025年前" in (substations.deadline_note or "")
    for t in c.targets:
        if t.task == 14:
            assert t.deadline_note and "年内" in t.deadline_note, t.id


NEW_TARGETS = [  # issue 17: (id, value, the words stating it) of targets the catalog had left out
    ("jiefang_street_land_started", 280, "280亩"), ("core_road_network_started", 3.6, "3.6平方公里"),
    ("utility_tunnel_projects_advanced", 14, "11个在建、3个谋划"),  # 14 = 11 + 3
]
NEW_INDICATORS = [
    ("gas_online_payment_coverage", 100), ("fdi_growth_over_province", 2), ("groundwater_rising_share", 100),
    ("listed_companies_main_boards", 10), ("provincial_prep_projects_2021", 150),
    ("provincial_prep_projects_2025", 150),
    ("bth_projects_2021", 10), ("bth_projects_2025", 10), ("innovation_platforms_added", 150),
    ("ecological_water_2021", 5000), ("ecological_water_2025", 5000), ("new_energy_vehicle_share", 100),
    ("worst_class_sections", 0), ("sewage_plants_upgraded_share", 100), ("air_quality_rank_from_bottom_2021", 11),
    ("agri_processing_clusters_2021", 2), ("agri_leading_firms_2021", 2), ("staple_food_demo_firms_2021", 3),
    ("utility_tunnel_pipe_share", None),
]


@pytest.mark.parametrize(("target_id", "value", "words"), NEW_TARGETS)
def test_new_spatial_targets_quote_the_plan(plan_text: str, target_id: str, value: float, words: str) -> None:
    t = get_catalog().target(target_id)
    assert t is not None and t.value == value
    assert t.source in plan_text and words in t.source


@pytest.mark.parametrize(("indicator_id", "value"), NEW_INDICATORS)
def test_new_indicators_quote_the_plan(plan_text: str, indicator_id: str, value: float | None) -> None:
    i = get_catalog().indicator(indicator_id)
    assert i is not None and i.value == value
    assert i.source in plan_text


def test_far_cap_is_a_compliance_target_over_parcels(plan_text: str) -> None:
    (far,) = get_catalog().compliance
    assert far.layer == "land_parcels" and far.field == "far" and far.maximum == 2.0
    assert far.source == "新建住宅容积率一律不超过2.0" and far.source in plan_text
    assert far.compliant().filters[-1].value == [0, 2.0]


def test_advance_is_not_complete() -> None:
    c = get_catalog()
    t = c.target("compounds_advanced_fyp")
    assert t is not None and t.kind == "advance" and t.kind_label == "推进类"
    assert t.source.startswith("加快推进") and t.value == 1559 and t.status == "started"
    assert c.target("compounds_renovated_fyp") is None
    assert all(x.kind == "complete" for x in c.targets if not x.source.startswith("加快"))


def test_reading_of_645_is_recorded() -> None:
    t = get_catalog().target("compounds_renovated_2021")
    assert t is not None and t.status == "completed"
    assert t.note and "645" in t.note and "完工" in t.note and "理由" in t.note


def test_responsible_bodies_come_from_the_text(plan_text: str) -> None:
    c = get_catalog()
    named = {t.number: t for t in c.tasks if t.responsible}
    assert sorted(named) == [14, 27, 40]
    for t in named.values():
        assert t.responsible_source and t.responsible_source in plan_text
        assert all(body in t.responsible_source for body in t.responsible), t.number
    assert c.task(13).responsible_text.startswith("方案正文未点名责任单位")


def test_planned_roads_are_called_as_the_plan_does(plan_text: str) -> None:
    layer = get_registry().get("planned_roads")
    assert layer.title == "规划路" and "规划路" in plan_text
    assert "断头路" not in layer.description and "断头路" not in plan_text
    # nothing the toolkit shows uses another word for them
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("api/**/*.py"), *root.glob("layers/**/*.py"), *root.glob("layers/**/*.yaml")]:
        text = path.read_text(encoding="utf-8")
        assert "断头路" not in text and "规划道路" not in text, path


@pytest.mark.parametrize(
    ("layer", "value", "metric"),
    [
        ("urban_villages", 73, "count"), ("old_compounds", 645, "count"), ("old_compounds", 1559, "count"),
        ("resettlement_housing", 5987, "units"), ("resettlement_housing", 11618, "units"),
        ("resettlement_housing", 17185, "units"), ("vacated_land", 2992, "area_mu"), ("planned_roads", 10, "count"),
        ("planned_roads", 36, "count"), ("parking_sites", 10000, "spaces"), ("utility_tunnels", 16.2, "length_km"),
        ("waterlogging_points", 20, "count"), ("pipe_renewals", 154, "length_km"), ("pipe_renewals", 217, "length_km"),
        ("beautiful_streets", 20, "count"), ("toll_stations", 6, "count"),
    ],
)
def test_issue_targets_are_present(layer: str, value: float, metric: str) -> None:
    assert any(t.layer == layer and t.value == value and t.metric == metric for t in get_catalog().targets)


def test_parking_every_year_and_roads_twice_in_2021() -> None:
    c = get_catalog()
    assert sorted(t.deadline.year for t in c.targets if t.layer == "parking_sites") == [2022, 2023, 2024, 2025]
    assert len([t for t in c.targets if t.layer == "planned_roads" and t.deadline.year == 2021]) == 2


def test_indicators_cover_the_non_spatial_goals() -> None:
    ids = {i.id for i in get_catalog().indicators}
    assert {"gdp", "pm25", "urbanisation_rate", "digital_economy_share", "energy_intensity_cut"} <= ids


def _raw() -> dict:  # type: ignore[type-arg]
    from importlib import resources

    return yaml.safe_load((resources.files("layers.plan") / "catalog.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"layer": "no_such_layer"}, "unknown layer"),
        ({"status": "demolished"}, "not a status"),
        ({"filters": [{"field": "colour", "op": "eq", "value": 1}]}, "no field"),
    ],
)
def test_catalog_rejects_targets_that_do_not_fit_the_registry(patch: dict, message: str) -> None:  # type: ignore[type-arg]
    raw = _raw()
    raw["targets"][0].update(patch)
    catalog = Catalog.model_validate(raw)
    with pytest.raises(ValueError, match=message):
        catalog.validate_against(get_registry())


@pytest.mark.parametrize(
    "patch",
    [
        {"metric": "units"},  # sums units but names no field
        {"deadline": "2020-01-01"},  # before start
        {"value": 0},
        {"scope": "district"},  # without a district code
        {"filters": [{"field": "batch", "op": "between", "value": 1}]},
    ],
)
def test_catalog_model_rejects_bad_targets(patch: dict) -> None:  # type: ignore[type-arg]
    raw = _raw()["targets"][0] | patch
    with pytest.raises(ValidationError):
        Target.model_validate(raw)


def test_catalog_rejects_missing_task() -> None:
    raw = _raw()
    raw["tasks"] = raw["tasks"][:-1]
    with pytest.raises(ValidationError, match="1–45"):
        Catalog.model_validate(raw)
