"""Load and look up layer definitions.

The registry is read once from the YAML files in ``layers/definitions`` (one file per
layer) and validated with :mod:`layers.models`. Adding a layer is a YAML file plus a
migration; the registry/schema test keeps the two from drifting.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from layers.errors import UnknownLayerError
from layers.models import Layer


class Registry:
    """An ordered, read-only collection of layers."""

    def __init__(self, layers: list[Layer]) -> None:
        self._layers = {layer.id: layer for layer in sorted(layers, key=lambda x: (x.order, x.id))}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._layers

    @property
    def ids(self) -> list[str]:
        """Layer ids in display order."""
        return list(self._layers)

    def get(self, layer_id: str) -> Layer:
        """The layer with this id.

        Raises
        ------
        UnknownLayerError
            If no such layer is registered (the API answers 404).
        """
        try:
            return self._layers[layer_id]
        except KeyError:
            raise UnknownLayerError(layer_id, self.ids) from None

    def with_status(self) -> list[Layer]:
        """Layers that carry a lifecycle status."""
        return [layer for layer in self if layer.has_status]


def load_layers() -> list[Layer]:
    """Parse every YAML definition shipped with the package."""
    folder = resources.files("layers") / "definitions"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out.append(Layer.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8"))))
    return out


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, loaded once."""
    return Registry(load_layers())
