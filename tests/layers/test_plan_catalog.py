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
    for item in [*c.targets, *c.indicators]:
        assert item.source in plan_text, item.id
    assert c.plan.supervision_source in plan_text


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
