"""Domain errors: layers and their fields, access and edit semantics.

Built on the :mod:`gis.errors` hierarchy (its base :class:`gis.errors.RenewalError` is what
``api.errors`` maps to problem+json). Who may do what (401/403), whether an edit still
applies to the version the caller saw (412) and whether the store is reachable (503) are
questions of the domain, not of plain GIS, so those errors live here.
"""

from __future__ import annotations

from gis.errors import InvalidInputError, NotFoundError, RenewalError


class PreconditionFailedError(RenewalError):
    """An ``If-Match`` precondition did not hold (HTTP 412)."""

    title = "Precondition failed"


class PermissionDeniedError(RenewalError):
    """The caller may not do this (HTTP 403)."""

    title = "Forbidden"


class AuthenticationError(RenewalError):
    """The caller is not authenticated (HTTP 401)."""

    title = "Unauthorized"


class ServiceUnavailableError(RenewalError):
    """The database is unreachable; the client should retry (HTTP 503)."""

    title = "Service unavailable"


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


class PayloadTooLargeError(RenewalError):
    """An upload over the size limit (HTTP 413)."""

    title = "Payload too large"


class UnsupportedMediaError(RenewalError):
    """An upload of a type that is not accepted (HTTP 415)."""

    title = "Unsupported media type"
