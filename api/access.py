"""Authorization declared by each route: what it reads and what it writes, as FastAPI dependencies.

Every route of the app names, in its signature or in ``dependencies=[...]``, one of the
declarations below. :func:`install_access` (called by the app factory) refuses to build an app
with a route that declares none, so a new route cannot forget the policy: it fails at start-up
and in ``tests/api/test_access_matrix.py``, which walks the OpenAPI document.

Declarations
------------
:data:`Public`
    The route returns nothing derived from layer data (landing page, health, static files,
    the caller's own identity).
:data:`PlanAggregates`
    The route publishes plan aggregates only (see *Aggregates* below).
:data:`ReadableLayer` / :func:`readable_layer_param`
    One layer named in the path (``collection_id``) or in a parameter; 404 for an unknown layer,
    401 for a layer the caller may not read.
:data:`ReadableLayers` / :data:`ReadableRenewalLayers`
    A ``layers`` list (query string); a layer named explicitly that the caller may not read is
    401, and without ``layers`` the route reads every layer the caller may read (all layers, or
    the renewal layers).
:data:`ReadAccessDep`
    The caller's read rights, for routes whose layers come from elsewhere (a JSON body, a plan
    target): the route calls :meth:`ReadAccess.layer`/:meth:`ReadAccess.layers` before reading.
:data:`WritableLayer`
    Create, change or delete features of the path's layer: editors of renewal layers (within
    their districts, checked on the geometry before and after by :mod:`layers.editing`) and
    administrators.
:data:`AdminOnly`, :data:`SignedIn`
    Administrators; any signed-in caller.
:data:`Submitter` / :data:`SubmissionReader` / :data:`ReviewerOnly`
    Submissions (:mod:`layers.submissions`): editors, reviewers and administrators propose
    changes (district scope checked by the domain on the geometry) and read the submissions
    of their districts; reviewers and administrators approve and return them. An editor's
    direct write to a layer with ``requires_review`` is refused by :data:`WritableLayer` with
    a message pointing to submissions (unless ``RENEWAL_REVIEW_REQUIRED=false``).

Who reads what
--------------
Signed-in callers (viewer, editor, admin) read every layer. Anonymous callers read the layers
that :func:`api.auth.restricted_layer_ids` does not close (registry ``anonymous_read`` and
``RENEWAL_RESTRICTED_LAYERS``/``RENEWAL_PUBLIC_LAYERS``).

Aggregates
----------
What a caller who may not read a layer may still learn about it is exactly:

* its registry entry (id, titles, fields, lifecycle, colours, zoom range): the schema is
  documentation, not data; ``/layers`` and ``/viewer/config`` list it with ``count: null``;
* plan progress (``/progress``, ``/progress/ranking``, ``/progress/{target}``, its timeseries,
  ``/indicators``): per target and district, the actual value, expected value, percent and
  status, which the plan publishes anyway.

Nothing else: no feature, id, code, name, geometry, extent, feature count, per-status count,
area or length of that layer, in any format (items, tiles, TileJSON, search hits, planner
queries, exports, maps, viewer endpoints, imports, history).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.auth import (
    AccessMiddleware,
    CredentialCaches,
    Principal,
    get_principal,
    get_request_id,
    require_admin,
    require_authenticated,
    require_editor_of,
    restricted_layer_ids,
)
from gis.errors import InvalidInputError
from layers.editing import EditContext
from layers.errors import AuthenticationError, PermissionDeniedError
from layers.models import Layer
from layers.registry import Registry
from layers.submissions import Reviewer

# --------------------------------------------------------------------------- read rights


MAX_LAYERS_PER_REQUEST: Final = 64
"""Most layer names one request may list (repeats included); a longer list is a 400, not work."""


@dataclass(frozen=True)
class ReadAccess:
    """The layers one caller may read, and the checks every reading route goes through."""

    principal: Principal
    registry: Registry
    closed: frozenset[str]
    """Layer ids this caller may not read (empty for signed-in callers)."""

    def may_read(self, layer: Layer) -> bool:
        """Whether the caller may read features (or anything derived from them) of this layer."""
        return layer.id not in self.closed

    def require(self, layer: Layer) -> Layer:
        """The layer, or 401 when the caller may not read it."""
        if not self.may_read(layer):
            raise AuthenticationError(
                f"Layer {layer.title} ({layer.id}) is not open to anonymous readers; sign in with an API key.",
                detail={"layer": layer.id},
            )
        return layer

    def layer(self, layer_id: str) -> Layer:
        """A layer by id: 404 when unknown, 401 when not readable."""
        return self.require(self.registry.get(layer_id))

    def readable(self, where: Callable[[Layer], bool] = lambda _: True) -> list[Layer]:
        """Every readable layer (in registry order) that passes ``where``."""
        return [lyr for lyr in self.registry if self.may_read(lyr) and where(lyr)]

    def layers(self, names: str | Iterable[str] | None, *, default: Callable[[Layer], bool] = lambda _: True,
               param: str = "layers") -> list[Layer]:
        """Layers named in a list (comma-separated text or a sequence), each checked.

        An unknown name is a 400 naming it; a closed one a 401. Without names: every readable
        layer that passes ``default`` (so "all layers" never includes a closed one).
        """
        if names is None or (isinstance(names, str) and not names.strip()):
            return self.readable(default)
        items = [p.strip() for p in names.split(",")] if isinstance(names, str) else [str(p).strip() for p in names]
        if len(items) > MAX_LAYERS_PER_REQUEST:
            raise InvalidInputError(f"{param}: {len(items)} layer names given; at most {MAX_LAYERS_PER_REQUEST} "
                                    "are accepted (there are only " + str(len(self.registry.ids)) + " layers).")
        out: list[Layer] = []
        for name in (n for n in items if n):
            if name not in self.registry:
                raise InvalidInputError(
                    f"{param}: '{name[:64]}' is not a layer. Known layers: {', '.join(self.registry.ids)}.",
                    detail={"layer": name[:64]},
                )
            layer = self.require(self.registry.get(name))
            if layer not in out:
                out.append(layer)
        if not out and not isinstance(names, str):
            raise InvalidInputError(f"{param}: give a layer id. Known layers: {', '.join(self.registry.ids)}.")
        return out


async def read_access(request: Request) -> ReadAccess:
    """The caller's read rights (the declaration every reading route depends on)."""
    registry: Registry = request.app.state.registry
    principal = get_principal(request)
    closed = frozenset() if principal.can_read_restricted else restricted_layer_ids(
        registry, request.app.state.settings)
    return ReadAccess(principal, registry, closed)


ReadAccessDep = Annotated[ReadAccess, Depends(read_access)]


async def readable_layer(
    collection_id: Annotated[str, Path(description="Layer (collection) id, e.g. old_compounds")],
    access: ReadAccessDep,
) -> Layer:
    """The layer in the path: 404 when unknown, 401 when the caller may not read it."""
    return access.layer(collection_id)


ReadableLayer = Annotated[Layer, Depends(readable_layer)]


def readable_layer_param(name: str, *, where: str = "query", description: str = "Layer id",
                         required: bool = True) -> Callable[..., Awaitable[Layer | None]]:
    """A dependency reading one layer id from the parameter ``name`` (query or path) and checking it."""
    source: Any = (Path(alias=name, description=description) if where == "path"
                   else Query(alias=name, description=description, max_length=64))

    async def dep(access: ReadAccess, value: str | None = None) -> Layer | None:
        if value is None or not value.strip():
            if required:
                raise InvalidInputError(f"{name}: give a layer id. Known layers: {', '.join(access.registry.ids)}.")
            return None
        return access.layer(value.strip())

    # real objects, not strings (this module uses postponed annotations), so FastAPI sees the source
    dep.__annotations__ = {
        "access": ReadAccessDep,
        "value": Annotated[str, source] if required else Annotated[str | None, source],
        "return": Layer if required else Layer | None,
    }
    if required:
        dep.__defaults__ = None
    dep.__name__ = f"readable_{where}_{name}" + ("" if required else "_optional")
    return dep


async def readable_layers(
    access: ReadAccessDep,
    layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: every layer you may read)",
                                       max_length=2000)] = None,
) -> list[Layer]:
    """The ``layers`` list, checked; without it every readable layer."""
    return access.layers(layers)


async def readable_renewal_layers(
    access: ReadAccessDep,
    layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: the renewal layers you "
                                                    "may read)", max_length=2000)] = None,
) -> list[Layer]:
    """The ``layers`` list, checked; without it every readable renewal layer."""
    return access.layers(layers, default=lambda lyr: lyr.kind == "renewal")


ReadableLayers = Annotated[list[Layer], Depends(readable_layers)]
ReadableRenewalLayers = Annotated[list[Layer], Depends(readable_renewal_layers)]


async def public() -> None:
    """Declaration of a route that returns nothing derived from layer data."""


async def plan_aggregates() -> None:
    """Declaration of a route that publishes plan aggregates only (see the module docstring)."""


Public: Final = Depends(public)
PlanAggregates: Final = Depends(plan_aggregates)
AdminOnly: Final = Depends(require_admin)
SignedIn: Final = Depends(require_authenticated)


# --------------------------------------------------------------------------- write rights


@dataclass(frozen=True)
class WriteAccess:
    """A caller allowed to write a layer, with the district scope every edit applies."""

    layer: Layer
    principal: Principal
    context: EditContext


def writable_layer(
    request: Request,
    collection_id: Annotated[str, Path(description="Layer (collection) id, e.g. old_compounds")],
) -> WriteAccess:
    """401 for anonymous callers, 403 for viewers and for editors on reference layers.

    District scope: the returned context carries the editor's districts; :mod:`layers.editing`
    and the importer refuse any feature outside them, before and after the change.
    """
    registry: Registry = request.app.state.registry
    layer = registry.get(collection_id)
    principal = get_principal(request)
    require_editor_of(principal, layer)
    if principal.role == "editor" and layer.requires_review and request.app.state.settings.review_required:
        raise PermissionDeniedError(
            f"Layer '{layer.id}' ({layer.title}) requires review: editors report changes as submissions "
            f"(POST /collections/{layer.id}/items/{{featureId}}/submissions, or /collections/{layer.id}/submissions "
            "for a new feature), which a reviewer approves. 此图层的变更需提交审核。",
            detail={"layer": layer.id, "submissions": f"/collections/{layer.id}/submissions"})
    ctx = EditContext(actor=principal.name, channel="api", request_id=get_request_id(request),
                      districts=principal.district_scope)
    return WriteAccess(layer, principal, ctx)


WritableLayer = Annotated[WriteAccess, Depends(writable_layer)]


# --------------------------------------------------------------------------- submissions and review


def _reviewer_of(request: Request, principal: Principal) -> Reviewer:
    return Reviewer(name=principal.name, districts=principal.district_scope, request_id=get_request_id(request),
                    may_review=principal.role in ("reviewer", "admin"))


def submission_reader(request: Request) -> Reviewer:
    """Editors, reviewers and administrators (401 anonymous, 403 viewers); scope from their districts."""
    principal = require_authenticated(request)
    if principal.role not in ("editor", "reviewer", "admin"):
        raise PermissionDeniedError(
            f"User '{principal.name}' ({principal.role}) cannot report or review; ask an administrator for the "
            "editor or reviewer role.")
    return _reviewer_of(request, principal)


def submittable_layer(
    request: Request,
    collection_id: Annotated[str, Path(description="Layer (collection) id, e.g. old_compounds")],
) -> tuple[Layer, Reviewer]:
    """A layer an editor may report on (404 unknown, 403 reference layers for non-admins) and the caller."""
    who = submission_reader(request)
    layer: Layer = request.app.state.registry.get(collection_id)
    require_editor_of(get_principal(request), layer)
    return layer, who


def reviewer_only(request: Request) -> Reviewer:
    """Reviewers and administrators (401 anonymous, 403 others)."""
    principal = require_authenticated(request)
    if principal.role not in ("reviewer", "admin"):
        raise PermissionDeniedError(f"User '{principal.name}' ({principal.role}) is not a reviewer.")
    return _reviewer_of(request, principal)


Submitter = Annotated[tuple[Layer, Reviewer], Depends(submittable_layer)]
SubmissionReader = Annotated[Reviewer, Depends(submission_reader)]
ReviewerOnly = Annotated[Reviewer, Depends(reviewer_only)]


# --------------------------------------------------------------------------- installation

DECLARATIONS: Final[frozenset[Callable[..., Any]]] = frozenset(
    {public, plan_aggregates, read_access, writable_layer, require_admin, require_authenticated,
     submission_reader, submittable_layer, reviewer_only})
"""A route is declared when one of these is in its dependency tree."""


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """``(path, methods, dependant)`` of every API route, also inside included routers.

    FastAPI (>= 0.16x) keeps included routers wrapped; their effective route contexts carry the
    path with its prefixes and the dependant with the router-level dependencies merged in.
    """

    def walk(routes: Iterable[Any]) -> Iterator[tuple[str, set[str], Dependant]]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods or ()), route.dependant
            elif hasattr(route, "effective_route_contexts"):
                for ctx in route.effective_route_contexts():
                    if ctx.dependant is not None:
                        yield ctx.path, set(ctx.methods or ()), ctx.dependant

    return walk(app.router.routes)


def declarations(dependant: Dependant) -> set[str]:
    """Names of the access declarations in a route's dependency tree."""
    return {c.__name__ for c in _calls(dependant) if c in DECLARATIONS}


def undeclared_routes(app: FastAPI) -> list[str]:
    """``METHOD path`` of every API route that declares no access rule."""
    return [f"{m} {path}" for path, methods, dep in api_routes(app) if not declarations(dep) for m in sorted(methods)]


def install_access(app: FastAPI) -> None:
    """Authenticate every request (middleware) and refuse routes without an access declaration."""
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError("Routes without an access declaration (see api/access.py): " + ", ".join(missing))
    app.state.credential_caches = CredentialCaches()
    app.add_middleware(AccessMiddleware)
