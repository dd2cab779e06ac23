"""The plan as data: the 45 tasks in nine programmes, their quantitative targets and indicators.

``get_catalog()`` gives the catalog of the city this process serves (:func:`layers.city.current`):
the shipped ``catalog.yaml`` (Shijiazhuang), one stored with the city's profile, or none —
an empty catalog, so a city without a plan is a plain layer server whose progress pages
say there are no targets. Each is validated (:mod:`layers.plan.models`) and checked against
the layer registry once. Progress (:mod:`layers.progress`), ledgers and maps look targets up here.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from gis.errors import NotFoundError
from layers.plan.models import Catalog, Indicator, PlanInfo, Target
from layers.registry import get_registry

__all__ = [
    "Catalog", "Indicator", "Target", "UnknownTargetError", "empty_catalog", "get_catalog", "load_catalog",
    "parse_catalog",
]


class UnknownTargetError(NotFoundError):
    """No target or indicator with this id is in the plan catalog (HTTP 404)."""

    title = "Unknown target"

    def __init__(self, target_id: str, known: list[str]) -> None:
        super().__init__(
            f"There is no plan target '{target_id}'. Known targets: {', '.join(known)}.",
            detail={"target": target_id},
        )


def parse_catalog(data: Any) -> Catalog:
    """Validate parsed catalog YAML (also against the layer registry).

    Raises
    ------
    ValueError
        Naming what is wrong (pydantic's ``ValidationError`` is one).
    """
    catalog = Catalog.model_validate(data)
    catalog.validate_against(get_registry())
    return catalog


def load_catalog() -> Catalog:
    """Parse and validate the shipped ``catalog.yaml`` (also against the layer registry)."""
    text = (resources.files("layers.plan") / "catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(yaml.safe_load(text))


def empty_catalog() -> Catalog:
    """The catalog of a city without a plan: no programmes, tasks, targets or indicators."""
    info = PlanInfo.model_construct(
        title="", issued_by="", year=0, default_responsible=[], default_responsible_source="",
        supervision=[], supervision_source="",
    )
    return Catalog.model_construct(plan=info, programmes=[], tasks=[], targets=[], indicators=[])


@lru_cache(maxsize=8)
def _catalog(kind: str | None, text: str | None) -> Catalog:
    if kind == "package":
        return load_catalog()
    if kind == "stored" and text:
        return parse_catalog(yaml.safe_load(text))
    return empty_catalog()


def get_catalog() -> Catalog:
    """The catalog of the process's city (:func:`layers.city.current`), loaded once per catalog."""
    from layers.city import current

    city = current()
    return _catalog(city.catalog, city.catalog_yaml)


def get_target(target_id: str) -> Target:
    """The spatial target with this id.

    Raises
    ------
    UnknownTargetError
        If the catalog has no such target (404).
    """
    catalog = get_catalog()
    target = catalog.target(target_id)
    if target is None:
        raise UnknownTargetError(target_id, [t.id for t in catalog.targets])
    return target
