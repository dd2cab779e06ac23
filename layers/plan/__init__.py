"""The plan as data: the 45 tasks in nine programmes, their quantitative targets and indicators.

``get_catalog()`` loads ``catalog.yaml`` once, validates it (:mod:`layers.plan.models`)
and checks it against the layer registry. Progress (:mod:`layers.progress`), ledgers
and maps look targets up here.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from gis.errors import NotFoundError
from layers.plan.models import Catalog, Indicator, Target
from layers.registry import get_registry

__all__ = ["Catalog", "Indicator", "Target", "UnknownTargetError", "get_catalog", "load_catalog"]


class UnknownTargetError(NotFoundError):
    """No target or indicator with this id is in the plan catalog (HTTP 404)."""

    title = "Unknown target"

    def __init__(self, target_id: str, known: list[str]) -> None:
        super().__init__(
            f"There is no plan target '{target_id}'. Known targets: {', '.join(known)}.",
            detail={"target": target_id},
        )


def load_catalog() -> Catalog:
    """Parse and validate ``catalog.yaml`` (also against the layer registry)."""
    text = (resources.files("layers.plan") / "catalog.yaml").read_text(encoding="utf-8")
    catalog = Catalog.model_validate(yaml.safe_load(text))
    catalog.validate_against(get_registry())
    return catalog


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The process-wide catalog, loaded once."""
    return load_catalog()


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
