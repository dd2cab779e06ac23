"""Administration: the audit trail, tombstones, users, a feature's history, the caller's identity.

* ``GET /audit?feature=&user=&since=&layer=&action=&before=&limit=`` (admins): the append-only
  audit log (who, when, what before and after, request id, source document), newest first.
* ``GET /collections/{id}/tombstones`` (admins): features deleted through the API.
* ``GET /collections/{id}/items/{featureId}/history``: the status history of one feature
  (anyone who may read the layer) plus, for admins, its audit records (the popup reads it).
* ``GET /auth/whoami``: the caller's name, role and districts.
* ``GET /admin/users`` (admins); ``POST /admin/keys/{key_id}/revoke`` (admins).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from psycopg import sql
from starlette.responses import Response

from api.access import AdminOnly, Public, ReadableLayer
from api.auth import KeyCache, get_principal
from api.deps import LayerDep, PoolDep, RegistryDep
from gis.errors import InvalidInputError, NotFoundError
from layers.query import parse_feature_id

ORDER = 90
router = APIRouter(tags=["admin"])

JSON: Final = "application/json"
_FEATURE_RE: Final = re.compile(r"^(?:([a-z][a-z0-9_]*)/)?(\d{1,18})$")


def _since(text: str | None) -> dt.datetime | None:
    if text is None or not text.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"since='{text}' is not a date or date-time (e.g. 2024-05-01 or "
                                "2024-05-01T08:00:00+08:00).") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


@router.get("/audit", summary="Audit trail (admins)", response_class=Response, dependencies=[AdminOnly],
            responses={200: {"content": {JSON: {"schema": {"type": "object"}}}}})
async def audit(
    request: Request,
    pool: PoolDep,
    registry: RegistryDep,
    feature: Annotated[str | None, Query(description="Feature id, '<layer>/<id>' or a feature code",
                                         max_length=200)] = None,
    user: Annotated[str | None, Query(description="Actor (user name)", max_length=200)] = None,
    since: Annotated[str | None, Query(description="Only records at or after this date/date-time",
                                       max_length=64)] = None,
    layer: Annotated[str | None, Query(description="Layer id", max_length=64)] = None,
    action: Annotated[str | None, Query(description="INSERT, UPDATE or DELETE", max_length=16)] = None,
    before: Annotated[int | None, Query(description="Records with an id below this (paging)", ge=1,
                                        le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Newest first; ``next_before`` pages backwards."""
    conds: list[sql.Composable] = [sql.SQL("TRUE")]
    params: dict[str, Any] = {"limit": limit}
    if layer is not None:
        registry.get(layer)
        conds.append(sql.SQL("a.layer = %(layer)s"))
        params["layer"] = registry.get(layer).table
    if feature is not None:
        m = _FEATURE_RE.match(feature.strip())
        if m:
            if m.group(1):
                conds.append(sql.SQL("a.layer = %(flayer)s"))
                params["flayer"] = registry.get(m.group(1)).table
            conds.append(sql.SQL("a.feature_id = %(fid)s"))
            params["fid"] = int(m.group(2))
        else:
            conds.append(sql.SQL("a.code = %(fcode)s"))
            params["fcode"] = feature.strip()
    if user is not None:
        conds.append(sql.SQL("a.actor = %(user)s"))
        params["user"] = user
    since_ts = _since(since)
    if since_ts is not None:
        conds.append(sql.SQL("a.occurred_at >= %(since)s"))
        params["since"] = since_ts
    if action is not None:
        if action.upper() not in ("INSERT", "UPDATE", "DELETE"):
            raise InvalidInputError("action must be INSERT, UPDATE or DELETE.")
        conds.append(sql.SQL("a.action = %(action)s"))
        params["action"] = action.upper()
    if before is not None:
        conds.append(sql.SQL("a.id < %(before)s"))
        params["before"] = before
    stmt = sql.SQL(
        "SELECT json_build_object('records', coalesce(json_agg(r ORDER BY r.id DESC), '[]'::json), "
        "'numberReturned', count(*), 'next_before', min(r.id))::text "
        "FROM (SELECT a.id, a.occurred_at, a.actor, a.channel, a.action, a.layer, a.feature_id, a.code, "
        "a.before, a.after, a.request_id, a.source_doc, a.note FROM renewal.audit_log AS a "
        "WHERE {} ORDER BY a.id DESC LIMIT %(limit)s) AS r"
    ).format(sql.SQL(" AND ").join(conds))
    async with pool.connection() as conn:
        cur = await conn.execute(stmt, params)
        row = await cur.fetchone()
    assert row is not None
    return Response(row[0], media_type=JSON)


@router.get("/collections/{collection_id}/tombstones", summary="Deleted features of a layer (admins)",
            response_class=Response, dependencies=[AdminOnly],
            responses={200: {"content": {JSON: {"schema": {"type": "object"}}}}})
async def tombstones(
    request: Request,
    layer: LayerDep,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The last state of each deleted feature, with who deleted it, when and why; newest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT json_build_object('tombstones', coalesce(json_agg(r ORDER BY r.id DESC), '[]'::json), "
            "'numberReturned', count(*))::text FROM (SELECT id, layer, feature_id, code, feature, deleted_at, "
            "deleted_by, request_id, effective_date, source_doc, note FROM renewal.tombstones "
            "WHERE layer = %s ORDER BY id DESC LIMIT %s) AS r",
            (layer.id, limit),
        )
        row = await cur.fetchone()
    assert row is not None
    return Response(row[0], media_type=JSON)


@router.get("/collections/{collection_id}/items/{feature_id}/history", summary="Status history of a feature",
            response_class=Response, responses={200: {"content": {JSON: {"schema": {"type": "object"}}}}})
async def feature_history(request: Request, layer: ReadableLayer, pool: PoolDep, feature_id: str) -> Response:
    """Status changes with effective dates and documents; admins also get the audit records."""
    fid = parse_feature_id(layer, feature_id)
    with_audit = get_principal(request).role == "admin"
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT json_build_object("
            "'status_history', (SELECT coalesce(json_agg(h ORDER BY h.effective_date, h.id), '[]'::json) FROM "
            "  (SELECT id, from_status, to_status, effective_date, source_doc, note, recorded_by, recorded_at "
            "   FROM renewal.status_history WHERE layer = %(table)s AND feature_id = %(fid)s) AS h), "
            "'audit', CASE WHEN %(audit)s THEN (SELECT coalesce(json_agg(a ORDER BY a.id), '[]'::json) FROM "
            "  (SELECT id, occurred_at, actor, channel, action, before, after, request_id, source_doc, note "
            "   FROM renewal.audit_log WHERE layer = %(table)s AND feature_id = %(fid)s) AS a) END, "
            "'feature_id', %(fid)s)::text, "
            "EXISTS (SELECT 1 FROM renewal.status_history WHERE layer = %(table)s AND feature_id = %(fid)s) "
            "OR EXISTS (SELECT 1 FROM renewal.audit_log WHERE layer = %(table)s AND feature_id = %(fid)s)",
            {"table": layer.table, "fid": fid, "audit": with_audit},
        )
        row = await cur.fetchone()
    assert row is not None
    # history outlives a deleted feature, so only a feature that never existed is a 404
    if not row[1] and not await _exists(pool, layer.schema_name, layer.table, fid):
        raise NotFoundError(f"Layer '{layer.id}' has no feature {fid} and no history for it.")
    return Response(row[0], media_type=JSON)


async def _exists(pool: Any, schema: str, table: str, fid: int) -> bool:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE id = %s)").format(sql.Identifier(schema, table)), (fid,))
        row = await cur.fetchone()
    return bool(row and row[0])


@router.get("/auth/whoami", summary="The caller's identity and role", dependencies=[Public])
async def whoami(request: Request) -> dict[str, Any]:
    """Name, role, districts and how the caller authenticated."""
    p = get_principal(request)
    return {"name": p.name, "role": p.role, "districts": sorted(p.districts), "via": p.via}


@router.get("/admin/users", summary="Users and their keys (admins)", response_class=Response, dependencies=[AdminOnly],
            responses={200: {"content": {JSON: {"schema": {"type": "object"}}}}})
async def users(request: Request, pool: PoolDep) -> Response:
    """Users with role, districts and key ids (never secrets)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT json_build_object('users', coalesce(json_agg(u ORDER BY u.name), '[]'::json))::text FROM ("
            "SELECT u.name, u.role, u.districts, u.display_name, u.created_at, u.disabled_at, "
            "(SELECT coalesce(json_agg(json_build_object('key_id', k.key_id, 'label', k.label, 'created_at', "
            "k.created_at, 'revoked_at', k.revoked_at) ORDER BY k.id), '[]'::json) FROM renewal.api_keys AS k "
            "WHERE k.user_id = u.id) AS keys FROM renewal.users AS u) AS u"
        )
        row = await cur.fetchone()
    assert row is not None
    return Response(row[0], media_type=JSON)


@router.post("/admin/keys/{key_id}/revoke", summary="Revoke an API key (admins)", status_code=204,
             response_class=Response, dependencies=[AdminOnly])
async def revoke_key(request: Request, pool: PoolDep, key_id: str) -> Response:
    """Revoke at once: this process clears its key cache, every other one on the database's notification."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE renewal.api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL RETURNING id",
            (key_id[:64],))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"No active API key with id '{key_id[:64]}'.")
    cache = request.scope.get("state", {}).get("key_cache")
    if isinstance(cache, KeyCache):
        cache.clear()
    return Response(status_code=204)
