"""Editing features: OGC API Features Part 4 (Create, Replace, Update, Delete).

* ``POST /collections/{id}/items``: a GeoJSON Feature → 201, ``Location``, ``ETag``.
* ``PUT /collections/{id}/items/{featureId}``: replace properties and geometry.
* ``PATCH /collections/{id}/items/{featureId}``: JSON merge patch (RFC 7396,
  ``application/merge-patch+json``) of ``properties`` and/or ``geometry``.
* ``DELETE /collections/{id}/items/{featureId}``: soft delete (tombstone) → 204.

* ``OPTIONS`` on ``/collections/{id}/items`` and ``/items/{featureId}``: the ``Allow`` header
  lists the methods *this caller* may use on this layer (and feature). QGIS's OAPIF provider
  sends these before it enables editing (POST on the items; PUT, PATCH, DELETE on one item).

Optimistic locking: with ``If-Match`` (the feature's ETag) a PUT, PATCH or DELETE happens only
if nobody changed the feature since (412 otherwise). ``If-Match`` is optional, because QGIS
never sends it; a client that does gets the protection. Coordinates are read in the
``Content-Crs`` CRS (``<uri>`` or bare; default CRS84; EPSG:4490 in its latitude, longitude
order, as QGIS sends it). A plain GeoJSON Feature is accepted: effective date, source
document, note and transition reason come from the body's ``change`` member or the
``X-Effective-Date`` / ``X-Source-Doc`` / ``X-Change-Note`` / ``X-Change-Reason`` headers, and a
missing effective date defaults to the request's day, noted in the history (see
:mod:`layers.editing`). Who may write is decided by :mod:`api.auth`; every write lands
in ``renewal.audit_log`` (and ``renewal.status_history`` for status changes) with the
request id.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from psycopg import sql
from starlette.responses import Response

from api.access import ReadableLayer, WritableLayer, WriteAccess, writable_layer
from api.asgi import SAFE_METHODS
from api.body import JsonBody, read_json_object
from api.deps import ContentCrsHeader, IfMatchHeader, PoolDep, SettingsDep
from api.ogc.links import base_url
from api.openapi import PROBLEM_CONTENT
from gis.errors import InvalidInputError
from layers.editing import (
    CHANGE_HEADERS,
    ChangeInfo,
    EditContext,
    check_district_scope,
    create_feature,
    delete_feature,
    parse_change,
    parse_content_crs,
    update_feature,
)
from layers.errors import AuthenticationError, PermissionDeniedError
from layers.models import Layer
from layers.query import parse_feature_id, table_sql

ORDER = 40
router = APIRouter(tags=["editing"])

GEOJSON: Final = "application/geo+json"

_PROBLEM: Final[dict[str, Any]] = {"content": PROBLEM_CONTENT}
"""Each listed error: problem+json as :mod:`api.openapi` documents it."""
_FEATURE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "geometry": {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {"type": {"type": "string"}, "coordinates": {"type": "array"}},
        },
        "properties": {"type": "object"},
        "change": {
            "type": "object",
            "description": "Change metadata: effective_date (YYYY-MM-DD), source_doc, note, reason.",
            "properties": {k: {"type": "string"} for k in CHANGE_HEADERS},
        },
    },
}
_PATCH_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "geometry": _FEATURE_SCHEMA["properties"]["geometry"],
        "properties": {"type": "object"},
        "change": _FEATURE_SCHEMA["properties"]["change"],
    },
}


def _body_doc(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {t: {"schema": schema} for t in types}}}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": d, **_PROBLEM} for c, d in {
        400: "Invalid feature, geometry, CRS or change metadata", 401: "Not signed in",
        403: "Role or district scope does not allow this edit", 404: "No such collection or feature",
        409: "Duplicate code or a lifecycle move that needs a reason and a source document",
        412: "If-Match does not match the feature's current ETag", 413: "Body too large",
        415: "Body is not JSON", 428: "If-Match header missing", 503: "Database unavailable",
    }.items() if c in codes}


_FEATURE_RESPONSE: Final[dict[str, Any]] = {"content": {GEOJSON: {"schema": {"type": "object"}}}}


FEATURE_BODY: Final = JsonBody(
    what="a single feature", example='{"type": "Feature", "geometry": {...}, "properties": {...}}',
    media_types=f"{GEOJSON}, application/merge-patch+json or application/json",
    too_large_hint="use the import endpoint for bulk data.")
"""The body of a create, replace or patch (:func:`api.body.read_json_object` enforces it)."""


def _headers_for_change(request: Request) -> dict[str, str]:
    return {h: request.headers[h] for h in CHANGE_HEADERS.values() if h in request.headers}


def _change(request: Request, body: Any) -> ChangeInfo:
    """The change metadata of a create or update; no effective date means the request's day."""
    member = body.get("change") if isinstance(body, dict) else None
    return parse_change(member, _headers_for_change(request)).or_request_day()


@router.post(
    "/collections/{collection_id}/items",
    summary="Create a feature (OGC API Features Part 4)",
    status_code=201,
    responses={201: {"description": "Created", **_FEATURE_RESPONSE}, **_errors(400, 401, 403, 404, 409, 413, 415, 503)},
    openapi_extra=_body_doc(_FEATURE_SCHEMA, GEOJSON, "application/json"),
)
async def create_item(
    request: Request,
    grant: WritableLayer,
    pool: PoolDep,
    settings: SettingsDep,
    content_crs: ContentCrsHeader = None,
) -> Response:
    """Create a feature from a plain GeoJSON Feature; ``Location`` names the new feature's URL.

    ``change.effective_date`` (or ``X-Effective-Date``) dates the first status; without it the
    request's day is used and the history says so.
    """
    layer, ctx = grant.layer, grant.context
    body = await read_json_object(request, FEATURE_BODY)
    crs = parse_content_crs(content_crs)
    change = _change(request, body)
    async with pool.connection() as conn:
        result = await create_feature(conn, layer, body, ctx, change, crs)
    assert result.feature is not None and result.etag is not None
    # the public base URL (never the request's query string, so no API key can leak into it)
    location = f"{base_url(request, settings)}/collections/{layer.id}/items/{result.feature_id}"
    return Response(result.feature, status_code=201, media_type=GEOJSON,
                    headers={"ETag": result.etag, "Location": location})


async def _update(request: Request, grant: WriteAccess, pool: Any, feature_id: str, if_match: str | None,
                  content_crs: str | None, merge: bool) -> Response:
    layer, ctx = grant.layer, grant.context
    fid = parse_feature_id(layer, feature_id)
    body = await read_json_object(request, FEATURE_BODY)
    crs = parse_content_crs(content_crs)
    change = _change(request, body)
    async with pool.connection() as conn:
        result = await update_feature(conn, layer, fid, body, ctx, merge=merge, if_match=if_match, change=change,
                                      crs=crs)
    assert result.feature is not None and result.etag is not None
    return Response(result.feature, media_type=GEOJSON, headers={"ETag": result.etag})


@router.put(
    "/collections/{collection_id}/items/{feature_id}",
    summary="Replace a feature",
    responses={200: {"description": "Replaced", **_FEATURE_RESPONSE},
               **_errors(400, 401, 403, 404, 409, 412, 413, 415, 503)},
    openapi_extra=_body_doc(_FEATURE_SCHEMA, GEOJSON, "application/json"),
)
async def replace_item(
    request: Request,
    grant: WritableLayer,
    pool: PoolDep,
    feature_id: str,
    if_match: IfMatchHeader = None,
    content_crs: ContentCrsHeader = None,
) -> Response:
    """Replace every property and the geometry; properties left out become empty."""
    return await _update(request, grant, pool, feature_id, if_match, content_crs, merge=False)


@router.patch(
    "/collections/{collection_id}/items/{feature_id}",
    summary="Update a feature with a JSON merge patch",
    responses={200: {"description": "Updated", **_FEATURE_RESPONSE},
               **_errors(400, 401, 403, 404, 409, 412, 413, 415, 503)},
    openapi_extra=_body_doc(_PATCH_SCHEMA, "application/merge-patch+json", "application/json"),
)
async def patch_item(
    request: Request,
    grant: WritableLayer,
    pool: PoolDep,
    feature_id: str,
    if_match: IfMatchHeader = None,
    content_crs: ContentCrsHeader = None,
) -> Response:
    """Change only what the patch names (``null`` clears a property); e.g. a status with its effective date."""
    return await _update(request, grant, pool, feature_id, if_match, content_crs, merge=True)


@router.delete(
    "/collections/{collection_id}/items/{feature_id}",
    summary="Delete a feature (soft: a tombstone is kept)",
    status_code=204,
    responses={204: {"description": "Deleted"}, **_errors(400, 401, 403, 404, 412, 503)},
)
async def delete_item(
    request: Request,
    grant: WritableLayer,
    pool: PoolDep,
    feature_id: str,
    if_match: IfMatchHeader = None,
) -> Response:
    """Remove the feature from the layer, keeping its last state in ``renewal.tombstones``."""
    layer, ctx = grant.layer, grant.context
    fid = parse_feature_id(layer, feature_id)
    change = parse_change(None, _headers_for_change(request))
    async with pool.connection() as conn:
        result = await delete_feature(conn, layer, fid, ctx, if_match=if_match, change=change)
    return Response(status_code=204, headers={"X-Tombstone-Id": str(result.tombstone_id)})


# --------------------------------------------------------------------------- OPTIONS (what this caller may do)



def _edit_context(request: Request, layer: Layer) -> EditContext | None:
    """The caller's edit context on ``layer``, or None when role, review or layer forbid any edit.

    The rule is the write routes' own (:func:`api.access.writable_layer`), so Allow never promises
    a method the route would refuse.
    """
    try:
        grant = writable_layer(request, layer.id)
    except (AuthenticationError, PermissionDeniedError):
        return None
    scope = grant.context.districts
    if scope is not None and not scope:
        return None  # an editor without districts can edit nothing
    return grant.context


def _allow(methods: tuple[str, ...]) -> Response:
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})


@router.options("/collections/{collection_id}/items", summary="Methods this caller may use on the items",
                responses={204: {"description": "Allow lists GET, HEAD, OPTIONS and, for editors, POST"}})
async def items_options(request: Request, layer: ReadableLayer) -> Response:
    """``Allow``: GET, HEAD, OPTIONS for every reader; POST too when the caller may create features here."""
    ctx = _edit_context(request, layer)
    return _allow((*SAFE_METHODS, "POST") if ctx is not None else SAFE_METHODS)


@router.options("/collections/{collection_id}/items/{feature_id}", summary="Methods this caller may use on a feature",
                responses={204: {"description": "Allow lists GET, HEAD, OPTIONS and, for editors, PUT, PATCH, DELETE"}})
async def item_options(request: Request, layer: ReadableLayer, feature_id: str, pool: PoolDep) -> Response:
    """``Allow`` for one feature: PUT, PATCH and DELETE when the caller's role and districts cover it.

    A district editor gets them only for a feature inside their districts. An id that names no
    feature (QGIS asks about ``unknown_id`` on an empty layer) is answered by role alone.
    """
    ctx = _edit_context(request, layer)
    if ctx is None:
        return _allow(SAFE_METHODS)
    writes = ("PUT", "PATCH", "DELETE")
    if ctx.districts is None:
        return _allow((*SAFE_METHODS, *writes))
    try:
        fid = parse_feature_id(layer, feature_id)
    except InvalidInputError:
        return _allow((*SAFE_METHODS, *writes))
    async with pool.connection() as conn:
        cur = await conn.execute(sql.SQL("SELECT ST_AsBinary(geom) FROM {} AS t WHERE t.id = %s").format(
            table_sql(layer)), (fid,))
        row = await cur.fetchone()
        if row is None:
            return _allow((*SAFE_METHODS, *writes))
        try:
            await check_district_scope(conn, layer, ctx, bytes(row[0]), "before")
        except PermissionDeniedError:
            return _allow(SAFE_METHODS)
    return _allow((*SAFE_METHODS, *writes))
