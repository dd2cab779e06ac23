"""Errors about layers and their fields, built on the :mod:`gis.errors` hierarchy."""

from __future__ import annotations

from gis.errors import InvalidInputError, NotFoundError


class UnknownLayerError(NotFoundError):
    """No layer with this id is in the registry."""

    title = "Unknown collection"

    def __init__(self, layer_id: str, known: list[str]) -> None:
        super().__init__(
            f"There is no layer '{layer_id}'. Known layers: {', '.join(known)}.",
            detail={"layer": layer_id},
        )


class UnknownFieldError(InvalidInputError):
    """A property name is not a field of the layer."""

    title = "Unknown property"

    def __init__(self, layer_id: str, field: str, known: list[str]) -> None:
        super().__init__(
            f"Layer '{layer_id}' has no property '{field}'. Its properties are: {', '.join(known)}.",
            detail={"layer": layer_id, "property": field},
        )


class UnknownStatusError(InvalidInputError):
    """A status value is not in the layer's vocabulary."""

    title = "Unknown status"

    def __init__(self, layer_id: str, value: str, known: list[str]) -> None:
        super().__init__(
            f"'{value}' is not a status of layer '{layer_id}'. Allowed: {', '.join(known)}.",
            detail={"layer": layer_id, "status": value},
        )
