"""Reporting and review (填报与审核): submissions, their approval or return, and their evidence.

* ``POST /collections/{id}/items/{featureId}/submissions``: propose a change to a feature (a
  GeoJSON Feature with only the members that change, plus ``change``: ``effective_date``,
  ``document``, ``note``) → 201 with ``Location``.
* ``POST /collections/{id}/submissions``: propose a new feature → 201.
* ``GET /submissions?status=&district=&collection=``, ``GET /submissions/{sid}``.
* ``POST /submissions/{sid}/approve`` (applies it: the feature changes, ``/progress`` follows),
  ``POST /submissions/{sid}/return`` (with a ``comment``), ``POST /submissions/{sid}/resubmit``
  (the submitter's corrected proposal).
* ``POST /submissions/{sid}/attachments``: multipart, the file in the form field ``file``;
  answers its SHA-256. ``GET /attachments/{sha256}`` serves it (or its thumbnail) to callers
  who may read the feature.

The rules live in :mod:`layers.submissions` and :mod:`layers.attachments`; who may call what
is declared with :mod:`api.access`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response

from api.access import Public, ReadableLayer, ReadAccessDep, ReviewerOnly, SubmissionReader, Submitter
from api.body import JsonBody, read_json_object
from api.city import CityDep
from api.db import connect_sync
from api.deps import ContentCrsHeader, PoolDep, registry_of, settings_of
from api.params import AsOf, check_district
from gis.errors import InvalidInputError, NotFoundError
from layers import attachments as att
from layers import submissions as sub
from layers.due import due_list, due_xlsx
from layers.editing import parse_content_crs, required_properties, writable_properties
from layers.export import writer_for
from layers.progress import parse_as_of
from layers.query import parse_feature_id

ORDER = 45
router = APIRouter(tags=["submissions"])
XLSX: Final = writer_for("xlsx").media_type


SUBMISSION_BODY: Final = JsonBody(
    what="a submission", example='{"type": "Feature", "properties": {...}, "change": {"effective_date": "..."}}',
    empty_is_object=True)
"""A proposed feature or change. An empty body reads as ``{}`` (the proposal's own check then says
what is missing)."""
DECISION_BODY: Final = JsonBody(what="the decision", example='{"comment": "..."}', empty_is_object=True)
"""Approve or return: an optional comment, so an empty body is an approval without one."""


async def _created(request: Request, pool: Any, sid: int, who: sub.Reviewer) -> Response:
    async with pool.connection() as conn:
        body = await sub.get_submission(conn, registry_of(request), sid, scope=None, caller=who.name,
                                        max_distance_m=settings_of(request).photo_max_distance_m)
    location = str(request.url_for("get_submission", sid=str(sid)))
    return JSONResponse(body, status_code=201, headers={"Location": location})


_SUBMISSION_BODY: Final[dict[str, Any]] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "properties": {"type": "object"},
        "geometry": {"type": "object"},
        "change": {"type": "object", "properties": {k: {"type": "string"} for k in
                                                    ("effective_date", "document", "note", "reason")}}}}}}}}


@router.post("/collections/{collection_id}/items/{feature_id}/submissions", status_code=201,
             summary="Propose a change to a feature (waits for review)", openapi_extra=_SUBMISSION_BODY)
async def submit_change(
    request: Request, grant: Submitter, pool: PoolDep, feature_id: str,
    content_crs: ContentCrsHeader = None,
) -> Response:
    """Record the proposed properties/geometry/status with effective date, document and note."""
    layer, who = grant
    fid = parse_feature_id(layer, feature_id)
    body = await read_json_object(request, SUBMISSION_BODY)
    async with pool.connection() as conn:
        sid = await sub.create_submission(conn, layer, fid, body, who, parse_content_crs(content_crs))
    return await _created(request, pool, sid, who)


@router.post("/collections/{collection_id}/submissions", status_code=201,
             summary="Propose a new feature (waits for review)", openapi_extra=_SUBMISSION_BODY)
async def submit_new(
    request: Request, grant: Submitter, pool: PoolDep,
    content_crs: ContentCrsHeader = None,
) -> Response:
    """A complete GeoJSON Feature (geometry and required properties) plus ``change``."""
    layer, who = grant
    body = await read_json_object(request, SUBMISSION_BODY)
    async with pool.connection() as conn:
        sid = await sub.create_submission(conn, layer, None, body, who, parse_content_crs(content_crs))
    return await _created(request, pool, sid, who)


@router.get("/submissions", summary="Submissions you may see (your districts), newest first")
async def list_submissions(
    request: Request, who: SubmissionReader, pool: PoolDep,
    status: Annotated[str | None, Query(description="pending, returned or approved", max_length=16)] = None,
    district: Annotated[str | None, Query(description="District adcode", max_length=6)] = None,
    collection: Annotated[str | None, Query(description="Layer id", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """Filter by status, district and layer; editors see their districts, city reviewers everything."""
    async with pool.connection() as conn:
        items = await sub.list_submissions(conn, registry_of(request), scope=who.districts, caller=who.name,
                                           status=status or None, district=district or None,
                                           collection=collection or None, limit=limit)
    return JSONResponse({"submissions": items, "numberReturned": len(items)})


def _sid(sid: str) -> int:
    if not (sid.isascii() and sid.isdigit()) or len(sid) > 18:  # "¹".isdigit(), but int("¹") fails
        raise sub.SubmissionNotFoundError(f"There is no submission '{sid[:32]}'.")
    return int(sid)


@router.get("/submissions/{sid}", summary="One submission: before, proposal, trail and evidence")
async def get_submission(request: Request, who: SubmissionReader, pool: PoolDep, sid: str) -> JSONResponse:
    """The feature before, the proposed change, every step of its review, and its attachments."""
    async with pool.connection() as conn:
        body = await sub.get_submission(conn, registry_of(request), _sid(sid), scope=who.districts, caller=who.name,
                                        max_distance_m=settings_of(request).photo_max_distance_m)
    return JSONResponse(body)


def _comment(body: dict[str, Any]) -> str | None:
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidInputError("comment must be text.")
    return comment


@router.post("/submissions/{sid}/approve", summary="Approve: apply the change (history and audit)")
async def approve(request: Request, who: ReviewerOnly, pool: PoolDep, sid: str) -> JSONResponse:
    """409 when it is no longer pending or the feature changed after it was submitted."""
    comment = _comment(await read_json_object(request, DECISION_BODY))
    async with pool.connection() as conn:
        out = await sub.approve_submission(conn, registry_of(request), _sid(sid), who, comment)
    return JSONResponse(out)


@router.post("/submissions/{sid}/return", summary="Return to the submitter with a comment")
async def return_(request: Request, who: ReviewerOnly, pool: PoolDep, sid: str) -> JSONResponse:
    """The comment (required) tells the submitter what to correct."""
    comment = _comment(await read_json_object(request, DECISION_BODY))
    async with pool.connection() as conn:
        await sub.return_submission(conn, _sid(sid), who, comment)
    return JSONResponse({"submission": int(sid), "status": "returned"})


@router.post("/submissions/{sid}/resubmit", summary="Correct a returned submission and resubmit it",
             openapi_extra=_SUBMISSION_BODY)
async def resubmit(
    request: Request, who: SubmissionReader, pool: PoolDep, sid: str,
    content_crs: ContentCrsHeader = None,
) -> JSONResponse:
    """The corrected proposal replaces the returned one; the submission is pending again."""
    body = await read_json_object(request, SUBMISSION_BODY)
    async with pool.connection() as conn:
        await sub.resubmit_submission(conn, registry_of(request), _sid(sid), body, who, parse_content_crs(content_crs))
        out = await sub.get_submission(conn, registry_of(request), _sid(sid), scope=None, caller=who.name,
                                       max_distance_m=settings_of(request).photo_max_distance_m)
    return JSONResponse(out)


@router.post("/submissions/{sid}/attachments", status_code=201,
             summary="Attach a photo (JPEG, PNG, HEIC) or PDF; answers its SHA-256")
async def upload(request: Request, who: SubmissionReader, pool: PoolDep, sid: str, file: UploadFile) -> JSONResponse:
    """Multipart form with the field ``file``; types are recognised from the bytes."""
    settings = settings_of(request)
    number = _sid(sid)
    async with pool.connection() as conn:  # refuse before anything is written to the storage
        await sub.check_attachable(conn, number, who)
    data = await file.read(settings.attachment_max_bytes + 1)
    info = await asyncio.to_thread(att.store_file, settings.storage_dir, data, file.filename,
                                   max_bytes=settings.attachment_max_bytes)
    async with pool.connection() as conn:
        await att.record_attachment(conn, info, who.name)
        await sub.attach_file(conn, number, info.sha256, who)
    body = info.as_json()
    body["href"] = f"/attachments/{info.sha256}"
    return JSONResponse(body, status_code=201, headers={"Location": str(request.url_for("get_attachment",
                                                                                        sha256=info.sha256))})


@router.get("/attachments/{sha256}", summary="An attachment or thumbnail, for callers who may read its feature")
async def get_attachment(request: Request, access: ReadAccessDep, pool: PoolDep, sha256: str) -> Response:
    """404 unless the file belongs to a submission of a layer the caller may read (pending ones: signed in)."""
    path = att.attachment_path(settings_of(request).storage_dir, sha256.lower())
    async with pool.connection() as conn:
        media = await sub.may_read_attachment(conn, sha256.lower(), [lyr.id for lyr in access.readable()],
                                              signed_in=not access.principal.is_anonymous)
    if media is None or not path.is_file():
        raise NotFoundError("No attachment with this hash that you may read.")
    return FileResponse(path, media_type=media, headers={
        "Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline"})


@router.get("/collections/{collection_id}/submission-form",
            summary="What the reporting form of a layer offers: fields, labels, statuses and allowed transitions")
async def submission_form(layer: ReadableLayer) -> JSONResponse:
    """Built from the layer registry, so the viewer's form never repeats a field, a label or a rule."""
    writable = set(writable_properties(layer))
    required = required_properties(layer)
    fields: list[dict[str, Any]] = [{"name": n, "label": layer.labels.get(n, n), "label_en": n, "type": "text",
                                     "required": n in required} for n in ("code", "name")]
    for f in layer.fields:
        if f.name in writable:
            fields.append({"name": f.name, "label": f.label, "label_en": f.label_en, "type": f.type, "unit": f.unit,
                           "min": f.min, "max": f.max, "required": f.required,
                           "choices": [c.model_dump() for c in f.choices] if f.choices else None})
    lifecycle = None
    if layer.lifecycle is not None:
        lc = layer.lifecycle
        lifecycle = {"label": lc.label, "label_en": lc.label_en,
                     "statuses": [{"code": s.code, "label": s.label, "label_en": s.label_en, "color": s.color}
                                  for s in lc.statuses],
                     "transitions": {c: lc.allowed_next(c) for c in lc.codes}}
    return JSONResponse({"collection": layer.id, "title": layer.title, "title_en": layer.title_en,
                         "requires_review": layer.requires_review, "geometry_type": layer.geometry_type,
                         "fields": fields, "lifecycle": lifecycle,
                         "change": {"effective_date": "生效日期", "document": "文件/批复号", "note": "说明"}})


@router.get("/viewer/report", include_in_schema=False, dependencies=[Public])
async def report_page() -> FileResponse:
    """The reporting and review page of the viewer (填报与审核)."""
    return FileResponse(Path(__file__).resolve().parent.parent / "viewer" / "report.html",
                        media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/due", summary="督办清单: targets past or within 30 days of their deadline, per district, with the "
                            "features lacking the required status (JSON or XLSX)",
            responses={200: {"content": {XLSX: {}}}})
async def due(
    request: Request, access: ReadAccessDep, city: CityDep,
    district: Annotated[str | None, Query(description="District adcode", max_length=6)] = None,
    as_of: AsOf = None,
    f: Annotated[str, Query(description="json or xlsx", pattern="^(json|xlsx)$")] = "json",
) -> Response:
    """Only targets of layers the caller may read; the XLSX is the same list, one line per feature."""
    day = parse_as_of(as_of)
    check_district(district or None, city)
    readable = {lyr.id for lyr in access.readable()}
    settings = settings_of(request)

    def build() -> list[dict[str, Any]]:
        with connect_sync(settings) as conn:
            return due_list(conn, day, district=district or None, layers=readable)

    rows = await run_in_threadpool(build)
    if f == "xlsx":
        name = f"due-{district or 'city'}-{day.isoformat()}.xlsx"
        return Response(due_xlsx(rows, day), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse({"as_of": day.isoformat(), "district": district, "count": len(rows), "items": rows})
