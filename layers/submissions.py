"""Submissions (填报) and their review (审核): an editor's change waits until a reviewer approves it.

Why a separate resource and not a flag on the feature: a pending change must not count. It
is kept here, outside the layer table, so progress, maps, ledgers and tiles, which read the
layer tables only, count approved changes without a special case. Approval applies the change
through the normal write path (:func:`layers.editing.update_feature` / ``create_feature``),
so the status history, the audit log and the layer version are written exactly as for any
other edit; the note of the history entry names the submission, the submitter and the reviewer.

Life of a submission
--------------------
``pending`` --approve--> ``approved`` (the feature changes)
``pending`` --return (comment)--> ``returned`` --resubmit (corrected)--> ``pending``

Every step appends to ``renewal.submission_events`` (who, when, what, why).

Concurrency
-----------
The submission row is locked (``FOR UPDATE``) while it is approved or returned, so two
reviewers cannot both decide it: the second gets a 409 naming who decided first. The
feature's ETag at submission time (``base_etag``) is the ``If-Match`` of the approval, so a
submission whose feature changed since (another approved submission, a reviewer's direct
edit) is not applied over that change: 409, return it so the editor can check and resubmit.

Scope
-----
Editors submit for features inside their districts only (the same geometric check as direct
edits, :func:`layers.editing.check_district_scope`, before and after). Reviewers with
districts review those districts; city reviewers and administrators review everything. No
one reviews their own submission.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import shapely.geometry
from psycopg import AsyncConnection

from gis.crs import CRS84, CrsRef
from gis.errors import ConflictError, InvalidInputError, NotFoundError
from layers import city
from layers.editing import (
    ChangeInfo,
    EditContext,
    _check_required,
    _lifecycle_checks,
    _split_feature,
    _wkb,
    check_district_scope,
    create_feature,
    parse_change,
    parse_geometry,
    read_feature_row,
    update_feature,
    validate_properties,
)
from layers.errors import PermissionDeniedError, PreconditionFailedError
from layers.models import Layer
from layers.registry import Registry

__all__ = [
    "STATUSES",
    "Reviewer",
    "SubmissionNotFoundError",
    "approve_submission",
    "attach_file",
    "create_submission",
    "get_submission",
    "list_submissions",
    "may_read_attachment",
    "counted_changes",
    "pending_applied",
    "resubmit_submission",
    "return_submission",
]

STATUSES: Final = ("pending", "returned", "approved")
STATUS_LABELS: Final = {"pending": "待审核", "returned": "已退回", "approved": "已通过"}
_CHANGE_KEYS: Final = {"effective_date", "document", "source_doc", "note", "reason"}


class SubmissionNotFoundError(NotFoundError):
    """No submission with this id that the caller may see (HTTP 404)."""

    title = "Submission not found"


@dataclass(frozen=True)
class Reviewer:
    """Who acts on submissions: the name, the district scope (None: the whole city) and the request."""

    name: str
    districts: frozenset[str] | None
    request_id: str | None = None
    may_review: bool = False

    @property
    def context(self) -> EditContext:
        """The edit context whose district scope a submission is checked against."""
        return EditContext(actor=self.name, channel="review", request_id=self.request_id, districts=self.districts)


# --------------------------------------------------------------------------- proposals


def _change_of(member: Any) -> tuple[ChangeInfo, dict[str, Any]]:
    """Parse the ``change`` object (``effective_date``, ``document``, ``note``; ``reason``)."""
    if member is None:
        member = {}
    if not isinstance(member, dict):
        raise InvalidInputError("'change' must be an object such as {\"effective_date\": \"2024-05-01\", "
                                "\"document\": \"石政办〔2024〕12号\", \"note\": \"...\"}.")
    unknown = sorted(set(member) - _CHANGE_KEYS)
    if unknown:
        raise InvalidInputError(f"'change' has unknown keys {unknown}; allowed: effective_date, document, note, "
                                "reason.")
    doc = member.get("document", member.get("source_doc"))
    info = parse_change({"effective_date": member.get("effective_date"), "source_doc": doc,
                         "note": member.get("note"), "reason": member.get("reason")})
    stored = {"effective_date": info.effective_date.isoformat() if info.effective_date else None,
              "document": info.source_doc, "note": info.note, "reason": info.reason}
    return info, stored


def _stored_change(stored: dict[str, Any]) -> ChangeInfo:
    eff = stored.get("effective_date")
    return ChangeInfo(effective_date=dt.date.fromisoformat(eff) if eff else None, source_doc=stored.get("document"),
                      note=stored.get("note"), reason=stored.get("reason"))


async def _proposal(conn: AsyncConnection[Any], layer: Layer, feature_id: int | None, body: Any, ctx: EditContext,
                    crs: CrsRef) -> dict[str, Any]:
    """Validate a proposed change exactly as a direct write would be; return the columns of the row."""
    props, geometry, member = _split_feature(body, geometry_required=feature_id is None)
    change, stored_change = _change_of(member)
    values = validate_properties(layer, props)
    geom = parse_geometry(layer, geometry, (await city.load_async(conn)).bbox, crs) if geometry is not None else None
    if feature_id is not None and not values and geom is None:
        raise InvalidInputError("The submission changes nothing: send the properties and/or geometry that change.")
    proposal: dict[str, Any] = {"type": "Feature", "properties": values}
    if geom is not None:
        proposal["geometry"] = shapely.geometry.mapping(geom)
    before = base_etag = None
    if feature_id is not None:
        seen = await read_feature_row(conn, layer, feature_id, lock=False, with_geometry=True)
        current, base_etag = seen.properties, seen.etag
        await check_district_scope(conn, layer, ctx, seen.wkb, "before")
        _lifecycle_checks(layer, current.get("status"), values.get("status", current.get("status")), change)
        before = {"type": "Feature", "id": feature_id, "geometry": seen.geometry,
                  "properties": {k: v for k, v in current.items() if k != "id"}}
        district = current.get("district_code")
    else:
        _check_required(layer, values)
        _lifecycle_checks(layer, None, values.get("status"), change)
        district = values.get("district_code")
    if geom is not None:
        wkb = _wkb(geom)
        await check_district_scope(conn, layer, ctx, wkb, "after")
        if district is None:
            cur = await conn.execute(
                "SELECT d.code FROM renewal.districts AS d WHERE ST_Intersects(d.geom, "
                "ST_PointOnSurface(ST_SetSRID(ST_GeomFromWKB(%s), 4490))) ORDER BY d.code LIMIT 1", (wkb,))
            row = await cur.fetchone()
            district = row[0] if row else None
    return {"proposal": proposal, "change": stored_change, "before": before, "base_etag": base_etag,
            "district_code": district}


async def _event(conn: AsyncConnection[Any], sid: int, actor: str, action: str, comment: str | None = None,
                 detail: dict[str, Any] | None = None, request_id: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO renewal.submission_events (submission_id, actor, action, comment, detail, request_id) "
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
        (sid, actor, action, comment, json.dumps(detail, ensure_ascii=False) if detail else None, request_id))


async def create_submission(conn: AsyncConnection[Any], layer: Layer, feature_id: int | None, body: Any,
                            who: Reviewer, crs: CrsRef = CRS84) -> int:
    """Record a proposed change to a feature (or a new feature when ``feature_id`` is None); return its id.

    Raises 400 (the change would be refused as a direct write), 403 (outside the caller's
    districts), 404 (no such feature), 409 (a lifecycle skip without reason and document).
    """
    cols = await _proposal(conn, layer, feature_id, body, who.context, crs)
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO renewal.submissions (layer, feature_id, district_code, proposal, change, before, base_etag, "
            "submitted_by) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s) RETURNING id",
            (layer.id, feature_id, cols["district_code"], json.dumps(cols["proposal"], ensure_ascii=False),
             json.dumps(cols["change"], ensure_ascii=False),
             json.dumps(cols["before"], ensure_ascii=False) if cols["before"] else None, cols["base_etag"], who.name))
        row = await cur.fetchone()
        assert row is not None
        sid = int(row[0])
        await _event(conn, sid, who.name, "submit", cols["change"].get("note"), request_id=who.request_id)
    return sid


# --------------------------------------------------------------------------- reading


_COLUMNS: Final = (
    "s.id, s.layer, s.feature_id, s.district_code, s.proposal, s.change, s.before, s.status, s.revision, "
    "s.submitted_by, s.submitted_at, s.reviewed_by, s.reviewed_at, s.comment, s.result_feature_id, s.base_etag, "
    "(SELECT d.name FROM renewal.districts AS d WHERE d.code = s.district_code), "
    "(SELECT count(*) FROM renewal.submission_attachments AS sa WHERE sa.submission_id = s.id)"
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _as_json(row: Any, registry: Registry | None = None) -> dict[str, Any]:
    layer = registry.get(row[1]) if registry is not None and row[1] in registry else None
    out: dict[str, Any] = {
        "id": row[0], "collection": row[1], "featureId": row[2], "district": row[3], "district_name": row[16],
        "status": row[7], "status_label": STATUS_LABELS[row[7]], "revision": row[8], "proposal": row[4],
        "change": row[5], "before": row[6], "submitted_by": row[9], "submitted_at": _iso(row[10]),
        "reviewed_by": row[11], "reviewed_at": _iso(row[12]), "comment": row[13], "result_feature_id": row[14],
        "attachment_count": row[17],
    }
    if layer is not None:
        out["collection_title"] = layer.title
        out["collection_title_en"] = layer.title_en
        name = (row[4].get("properties") or {}).get("name") or ((row[6] or {}).get("properties") or {}).get("name")
        out["feature_name"] = name
    return out


def _scope_sql(scope: frozenset[str] | None, own: str | None) -> tuple[str, list[Any]]:
    """Which submissions a caller sees: all (None), or those in their districts (and their own)."""
    if scope is None:
        return "TRUE", []
    return "(s.district_code = ANY(%s) OR s.submitted_by = %s)", [sorted(scope), own or ""]


async def list_submissions(conn: AsyncConnection[Any], registry: Registry, *, scope: frozenset[str] | None,
                           caller: str, status: str | None = None, district: str | None = None,
                           collection: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Submissions the caller may see, newest first, filtered by status, district and layer."""
    where, params = _scope_sql(scope, caller)
    clauses = [where]
    if status is not None:
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}; got '{status[:32]}'.")
        clauses.append("s.status = %s")
        params.append(status)
    if district is not None:
        clauses.append("s.district_code = %s")
        params.append(district)
    if collection is not None:
        registry.get(collection)
        clauses.append("s.layer = %s")
        params.append(collection)
    params.append(limit)
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM renewal.submissions AS s WHERE {' AND '.join(clauses)} "  # noqa: S608 - fixed SQL
        "ORDER BY s.submitted_at DESC, s.id DESC LIMIT %s", params)
    return [_as_json(r, registry) for r in await cur.fetchall()]


async def _row(conn: AsyncConnection[Any], sid: int, scope: frozenset[str] | None, caller: str, *,
               lock: bool = False) -> Any:
    where, params = _scope_sql(scope, caller)
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM renewal.submissions AS s WHERE s.id = %s AND {where}"  # noqa: S608 - fixed SQL
        + (" FOR UPDATE OF s" if lock else ""), [sid, *params])
    row = await cur.fetchone()
    if row is None:
        raise SubmissionNotFoundError(f"There is no submission #{sid} that you may see.", detail={"submission": sid})
    return row


async def get_submission(conn: AsyncConnection[Any], registry: Registry, sid: int, *, scope: frozenset[str] | None,
                         caller: str, max_distance_m: float = 500.0) -> dict[str, Any]:
    """One submission with its trail and attachments; photos far from the feature carry a warning."""
    out = _as_json(await _row(conn, sid, scope, caller), registry)
    cur = await conn.execute(
        "SELECT occurred_at, actor, action, comment, detail FROM renewal.submission_events "
        "WHERE submission_id = %s ORDER BY occurred_at, id", (sid,))
    out["events"] = [{"at": _iso(r[0]), "actor": r[1], "action": r[2], "comment": r[3], "detail": r[4]}
                     for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT a.sha256, a.media_type, a.size_bytes, a.file_name, a.width, a.height, a.taken_at, "
        "ST_X(a.gps), ST_Y(a.gps), a.thumb_sha256, sa.added_by, sa.added_at, "
        "round(ST_Distance(ST_SetSRID(a.gps, 4326)::geography, ST_SetSRID(ST_GeomFromGeoJSON(g.g), 4326)::geography)) "
        "FROM renewal.submission_attachments AS sa JOIN renewal.attachments AS a ON a.sha256 = sa.sha256 "
        "JOIN renewal.submissions AS s ON s.id = sa.submission_id "
        "CROSS JOIN LATERAL (SELECT coalesce(s.proposal -> 'geometry', s.before -> 'geometry')::text AS g) AS g "
        "WHERE sa.submission_id = %s ORDER BY sa.added_at, a.sha256", (sid,))
    atts = []
    for r in await cur.fetchall():
        item: dict[str, Any] = {
            "sha256": r[0], "media_type": r[1], "size_bytes": r[2], "file_name": r[3], "width": r[4], "height": r[5],
            "taken_at": _iso(r[6]), "position": [r[7], r[8]] if r[7] is not None else None, "thumbnail": r[9],
            "added_by": r[10], "added_at": _iso(r[11]), "distance_m": float(r[12]) if r[12] is not None else None,
            "href": f"/attachments/{r[0]}", "thumbnail_href": f"/attachments/{r[9]}" if r[9] else None,
        }
        if item["distance_m"] is not None and item["distance_m"] > max_distance_m:
            d = item["distance_m"]
            item["warning"] = (f"照片拍摄位置距离要素 {d:.0f} 米 (photo taken {d:.0f} m from the feature; "
                               f"more than {max_distance_m:g} m)")
        atts.append(item)
    out["attachments"] = atts
    return out


# --------------------------------------------------------------------------- decisions


def _check_reviewer(row: Any, who: Reviewer, verb: str) -> None:
    if not who.may_review:
        raise PermissionDeniedError(f"User '{who.name}' is not a reviewer and cannot {verb} submissions.")
    if who.districts is not None and row[3] not in who.districts:
        raise PermissionDeniedError(
            f"User '{who.name}' reviews districts {', '.join(sorted(who.districts)) or 'none'} only; submission "
            f"#{row[0]} is for district {row[3]}.", detail={"district": row[3]})
    if row[9] == who.name:
        raise PermissionDeniedError(f"Submission #{row[0]} is your own; another reviewer must {verb} it.")


def _check_pending(row: Any) -> None:
    if row[7] != "pending":
        by = f" by {row[11]} at {_iso(row[12])}" if row[11] else ""
        raise ConflictError(f"Submission #{row[0]} is no longer pending: it was {row[7]}{by}.",
                            detail={"submission": row[0], "status": row[7], "reviewed_by": row[11]})


async def approve_submission(conn: AsyncConnection[Any], registry: Registry, sid: int, who: Reviewer,
                             comment: str | None = None) -> dict[str, Any]:
    """Apply a pending submission through the normal write path; return what it wrote.

    Raises 403 (not a reviewer of its district, or one's own submission), 404, and 409 when it
    is no longer pending or the feature changed after it was submitted.
    """
    from layers.query import FeatureNotFoundError

    async with conn.transaction():
        row = await _row(conn, sid, None, who.name, lock=True)
        _check_reviewer(row, who, "approve")
        _check_pending(row)
        layer = registry.get(row[1])
        change = _stored_change(row[5])
        note = f"{change.note or ''} [填报 submission #{sid} by {row[9]}, 审核通过 approved by {who.name}]".strip()
        change = ChangeInfo(change.effective_date, change.source_doc, note, change.reason)
        ctx = EditContext(actor=who.name, channel="review", request_id=who.request_id, districts=None)
        body = dict(row[4])
        try:
            if row[2] is None:
                result = await create_feature(conn, layer, body, ctx, change)
            else:
                result = await update_feature(conn, layer, int(row[2]), body, ctx, merge=True, if_match=row[15],
                                              change=change)
        except (PreconditionFailedError, FeatureNotFoundError):
            raise ConflictError(
                f"The feature changed (or was deleted) after submission #{sid} was made, so it cannot be applied "
                "as submitted. Return it to the submitter to check against the current feature and resubmit.",
                detail={"submission": sid, "feature": row[2]}) from None
        await conn.execute(
            "UPDATE renewal.submissions SET status = 'approved', reviewed_by = %s, reviewed_at = clock_timestamp(), "
            "comment = coalesce(%s, comment), result_feature_id = %s, updated_at = clock_timestamp() WHERE id = %s",
            (who.name, comment, result.feature_id, sid))
        await _event(conn, sid, who.name, "approve", comment, {"feature": result.feature_id, "etag": result.etag},
                     who.request_id)
    return {"submission": sid, "status": "approved", "collection": layer.id, "featureId": result.feature_id,
            "etag": result.etag}


async def return_submission(conn: AsyncConnection[Any], sid: int, who: Reviewer, comment: str | None) -> None:
    """Send a pending submission back to its submitter with a comment (required: say what to correct)."""
    text = (comment or "").strip()
    if not text:
        raise InvalidInputError("A returned submission needs a comment saying what to correct (退回意见).")
    if len(text) > 2000:
        raise InvalidInputError("The comment is longer than 2000 characters.")
    async with conn.transaction():
        row = await _row(conn, sid, None, who.name, lock=True)
        _check_reviewer(row, who, "return")
        _check_pending(row)
        await conn.execute(
            "UPDATE renewal.submissions SET status = 'returned', reviewed_by = %s, reviewed_at = clock_timestamp(), "
            "comment = %s, updated_at = clock_timestamp() WHERE id = %s", (who.name, text, sid))
        await _event(conn, sid, who.name, "return", text, request_id=who.request_id)


async def resubmit_submission(conn: AsyncConnection[Any], registry: Registry, sid: int, body: Any, who: Reviewer,
                              crs: CrsRef = CRS84) -> None:
    """Replace a returned submission's proposal with a corrected one and make it pending again.

    Only its submitter may do so; the proposal is checked again against the feature as it is
    now (which becomes the new ``before``).
    """
    row = await _row(conn, sid, who.districts, who.name)
    if row[9] != who.name:
        raise PermissionDeniedError(f"Only {row[9]}, who made submission #{sid}, can correct and resubmit it.")
    if row[7] != "returned":
        raise ConflictError(f"Submission #{sid} is {row[7]}; only a returned submission can be resubmitted.",
                            detail={"submission": sid, "status": row[7]})
    layer = registry.get(row[1])
    cols = await _proposal(conn, layer, row[2], body, who.context, crs)
    async with conn.transaction():
        locked = await _row(conn, sid, None, who.name, lock=True)
        if locked[7] != "returned":
            raise ConflictError(f"Submission #{sid} is {locked[7]}; only a returned submission can be resubmitted.")
        await conn.execute(
            "UPDATE renewal.submissions SET proposal = %s::jsonb, change = %s::jsonb, before = %s::jsonb, "
            "base_etag = %s, district_code = %s, status = 'pending', revision = revision + 1, "
            "updated_at = clock_timestamp() WHERE id = %s",
            (json.dumps(cols["proposal"], ensure_ascii=False), json.dumps(cols["change"], ensure_ascii=False),
             json.dumps(cols["before"], ensure_ascii=False) if cols["before"] else None, cols["base_etag"],
             cols["district_code"], sid))
        await _event(conn, sid, who.name, "resubmit", cols["change"].get("note"), request_id=who.request_id)


# --------------------------------------------------------------------------- evidence


async def check_attachable(conn: AsyncConnection[Any], sid: int, who: Reviewer, *, lock: bool = False) -> None:
    """Refuse (403/404/409) unless ``who`` may attach files to submission ``sid`` now.

    The submitter (while pending or returned) and its reviewers may attach; an approved
    submission is closed. The upload route asks before it stores a file, so a refused caller
    leaves nothing on disk; :func:`attach_file` asks again under the row lock.
    """
    row = await _row(conn, sid, who.districts, who.name, lock=lock)
    if row[9] != who.name and not who.may_review:
        raise PermissionDeniedError(f"Only {row[9]}, who made submission #{sid}, or a reviewer can attach files.")
    if row[7] == "approved":
        raise ConflictError(f"Submission #{sid} is already approved; attach evidence to a new submission.")


async def attach_file(conn: AsyncConnection[Any], sid: int, sha256: str, who: Reviewer) -> None:
    """Link a stored file (:func:`layers.attachments.record_attachment`) to a submission (:func:`check_attachable`)."""
    async with conn.transaction():
        await check_attachable(conn, sid, who, lock=True)
        cur = await conn.execute(
            "INSERT INTO renewal.submission_attachments (submission_id, sha256, added_by) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING", (sid, sha256, who.name))
        if cur.rowcount:
            await _event(conn, sid, who.name, "attach", None, {"sha256": sha256}, who.request_id)


async def may_read_attachment(conn: AsyncConnection[Any], sha256: str, readable_layers: list[str], *,
                              signed_in: bool) -> str | None:
    """The media type to serve a file (or its thumbnail) with, if the caller may read a feature it belongs to.

    Signed-in callers read every layer; anonymous callers see the evidence of approved
    changes of layers open to them only. None means: answer 404.
    """
    cur = await conn.execute(
        "SELECT CASE WHEN a.sha256 = %(sha)s THEN a.media_type ELSE 'image/jpeg' END "
        "FROM renewal.attachments AS a JOIN renewal.submission_attachments AS sa ON sa.sha256 = a.sha256 "
        "JOIN renewal.submissions AS s ON s.id = sa.submission_id "
        "WHERE (a.sha256 = %(sha)s OR a.thumb_sha256 = %(sha)s) AND s.layer = ANY(%(layers)s) "
        "AND (%(signed)s OR s.status = 'approved') LIMIT 1",
        {"sha": sha256, "layers": readable_layers, "signed": signed_in})
    row = await cur.fetchone()
    return str(row[0]) if row else None


# --------------------------------------------------------------------------- the picture with pending changes


PENDING_MARK: Final = "【含待审核】"
"""Put before the title of a map or ledger sheet that counts pending submissions."""
PENDING_NOTICE: Final = ("含待审核填报（未经审核，仅供参考） Includes pending submissions that no reviewer has "
                         "approved yet; the official figures count approved changes only.")


@asynccontextmanager
async def pending_applied(conn: AsyncConnection[Any], registry: Registry,
                          layers: Collection[str] | None = None) -> AsyncIterator[int]:
    """Inside the block, the layer tables read as if every pending submission were approved.

    ``layers`` (ids) limits that to the layers the answer reads: a one-layer map or ledger then
    applies, and locks, nothing elsewhere.

    The submissions are applied through the normal write path in a transaction that is always
    rolled back when the block ends (nothing is committed, no notification is sent); one that
    would fail now (the feature changed) is left out. Yields how many were applied. The rows
    stay locked for the block's duration, so keep it to one query.
    """
    from gis.errors import RenewalError

    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(
            "SELECT id, layer, feature_id, proposal, change FROM renewal.submissions WHERE status = 'pending' "
            "AND (%s::text[] IS NULL OR layer = ANY(%s)) ORDER BY submitted_at, id",
            (None if layers is None else list(layers),) * 2)
        applied = 0
        ctx = EditContext(actor="pending-preview", channel="preview", districts=None)
        for _sid, layer_id, fid, proposal, change in await cur.fetchall():
            if layer_id not in registry:
                continue
            layer = registry.get(layer_id)
            try:
                if fid is None:
                    await create_feature(conn, layer, dict(proposal), ctx, _stored_change(change))
                else:
                    await update_feature(conn, layer, int(fid), dict(proposal), ctx, merge=True, if_match=None,
                                         change=_stored_change(change))
            except RenewalError:
                continue
            applied += 1
        yield applied


@asynccontextmanager
async def counted_changes(conn: AsyncConnection[Any], registry: Registry, include_pending: bool,
                          layers: Collection[str] | None = None) -> AsyncIterator[int | None]:
    """The picture that progress, maps and ledgers count: the one switch between them.

    By default (``include_pending`` false) the layer tables as they are: approved changes only;
    yields None. With ``include_pending`` the block reads them through :func:`pending_applied`
    and yields how many pending submissions were applied; the output must then carry
    :data:`PENDING_NOTICE`.
    """
    if not include_pending:
        yield None
        return
    async with pending_applied(conn, registry, layers) as applied:
        yield applied
