"""The error base of the toolkit and the errors of plain GIS input.

Every package raises subclasses of :class:`RenewalError`; it lives here, at the bottom of
the dependency order (``gis`` <- ``layers`` <- ``api``), so that every package can use it.
The errors about access and edit semantics (401/403/412/503) belong to the domain and are
in :mod:`layers.errors`. The API maps all of them to HTTP problem+json in one place
(``api.errors``); the CLI prints their message. The message is meant for a GIS officer, so
it says what was wrong with the input and how to fix it; details for developers go to the log.
"""

from __future__ import annotations


class RenewalError(Exception):
    """Base of every error the toolkit raises on purpose."""

    title = "Error"

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class InvalidInputError(RenewalError):
    """The request or file is malformed or out of range (HTTP 400)."""

    title = "Invalid input"


class CRSError(InvalidInputError):
    """A coordinate reference system is unknown, unsupported or missing."""

    title = "Unsupported or missing CRS"


class GeometryError(InvalidInputError):
    """A geometry is invalid, of the wrong type or outside the city."""

    title = "Invalid geometry"


class NotFoundError(RenewalError):
    """The named thing does not exist (HTTP 404)."""

    title = "Not found"


class ConflictError(RenewalError):
    """The change conflicts with the current state (HTTP 409)."""

    title = "Conflict"
