"""Validated, audited writes to layer features (OGC API Features Part 4 semantics).

Used by the API (``api/routers/edit.py``) and usable from scripts and the CLI: every
function takes an open psycopg ``AsyncConnection`` and runs its own transaction.

What a write guarantees
-----------------------
* Properties are checked against the layer registry: known names only, types, ``choices``
  (code or Chinese label), ``min``/``max``, ``max_length``, required fields; generated and
  read-only properties (``area_mu``, ``length_m``, ``created_at``, ``updated_at``,
  ``status_label``) are ignored so a feature read from the API can be sent back unchanged.
* The geometry must be of the layer's type (a Polygon is promoted to MultiPolygon, a
  LineString to MultiLineString), valid, finite and inside the city's extent after conversion from
  the input CRS (``Content-Crs``; default CRS84, axis order as the CRS defines it; CGCS2000,
  Gauss-Krüger, Web Mercator, GCJ-02 and BD-09 accepted).
* A status may move only along the registry's lifecycle (:meth:`layers.models.Lifecycle.allowed_next`);
  any other move needs a reason *and* a source document. A status change (and a creation
  with a status) needs an effective date. The date, document, note and actor go into
  transaction-local settings that the database triggers copy into ``renewal.status_history``
  and ``renewal.audit_log`` (so the trail cannot be forgotten by any write path).
* Optimistic concurrency: each feature has an ETag (:func:`etag_sql`, from the row version
  ``xmin``, which changes with every committed write). Updates and deletes lock the row
  (``SELECT ... FOR UPDATE``) and compare the caller's ``If-Match`` inside the same
  transaction, so two writers can never both succeed from the same version (no lost update).
* Editors are scoped to districts: the feature's geometry before and after the edit must
  share interior with one of the editor's districts (``renewal.districts``).
* Deletes are soft: the last state goes to ``renewal.tombstones`` (and the audit log keeps
  the before image); the row leaves the layer table, so tiles, progress and exports need
  no special case.

Change metadata
---------------
:class:`ChangeInfo` comes from a ``"change"`` member of the request body (a GeoJSON foreign
member: ``{"effective_date": "2024-05-01", "source_doc": "石政办〔2024〕12号", "note": "...",
"reason": "..."}``) or from the headers ``X-Effective-Date``, ``X-Source-Doc``,
``X-Change-Note``, ``X-Change-Reason`` (UTF-8, percent-encoded if not ASCII); the body wins.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import shapely
import shapely.geometry
from psycopg import AsyncConnection, sql

from gis.crs import CRS84, CrsRef, Extent, outside_city, parse_crs, to_storage
from gis.errors import ConflictError, GeometryError, InvalidInputError
from layers import city
from layers.errors import PermissionDeniedError, PreconditionFailedError, UnknownFieldError, UnknownStatusError
from layers.history import LOCAL_TIMEZONE
from layers.models import Layer
from layers.query.builder import etag_sql
from layers.values import EXPECTED, ConversionError, convert

__all__ = [
    "DEFAULTED_DATE_NOTE",
    "ChangeInfo",
    "EditContext",
    "EditResult",
    "check_if_match",
    "create_feature",
    "delete_feature",
    "parse_change",
    "parse_content_crs",
    "parse_geometry",
    "update_feature",
    "validate_properties",
]

CHANGE_MEMBER: Final = "change"
CHANGE_HEADERS: Final[dict[str, str]] = {
    "effective_date": "x-effective-date",
    "source_doc": "x-source-doc",
    "note": "x-change-note",
    "reason": "x-change-reason",
}
_MAX_LEN: Final = {"source_doc": 200, "note": 2000, "reason": 2000}
_EARLIEST_DATE: Final = dt.date(1949, 10, 1)
_DISTRICT_RE: Final = re.compile(r"^\d{6}$")
_PROMOTE: Final[dict[str, tuple[str, ...]]] = {
    "MultiPolygon": ("Polygon", "MultiPolygon"),
    "MultiLineString": ("LineString", "MultiLineString"),
    "MultiPoint": ("Point", "MultiPoint"),
    "Polygon": ("Polygon",),
    "LineString": ("LineString",),
    "Point": ("Point",),
}


@dataclass(frozen=True)
class EditContext:
    """Who writes, through which channel, in which request, and within which districts.

    ``districts`` None means unrestricted (administrators, the CLI); an empty set means the
    editor has no district and may edit nothing.
    """

    actor: str
    channel: str = "api"
    request_id: str | None = None
    districts: frozenset[str] | None = None


@dataclass(frozen=True)
class ChangeInfo:
    """Why and as of when: the effective date, source document (文件/批复号), note and reason."""

    effective_date: dt.date | None = None
    source_doc: str | None = None
    note: str | None = None
    reason: str | None = None
    effective_date_defaulted: bool = False
    """True when the client gave no date and :meth:`or_request_day` filled in the request's day."""

    @property
    def note_with_reason(self) -> str | None:
        """The note stored in the history; a transition reason and a defaulted date are kept in it."""
        note = self.note
        if self.reason:
            note = f"{note or ''} [理由 reason: {self.reason}]".strip()
        if self.effective_date_defaulted:
            note = f"{note or ''} {DEFAULTED_DATE_NOTE}".strip()
        return note

    def or_request_day(self, today: dt.date | None = None) -> ChangeInfo:
        """The same change, dated the request's local day (Asia/Shanghai) when it names no effective date.

        Why: a plain GeoJSON Feature (what QGIS and other OGC API Part 4 clients send) carries no
        ``change`` member; refusing it would make those clients unable to edit lifecycle layers.
        The history notes that the date was defaulted (:data:`DEFAULTED_DATE_NOTE`), so a reviewer
        can tell it from a date an officer gave.
        """
        if self.effective_date is not None:
            return self
        day = today or dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).date()
        return replace(self, effective_date=day, effective_date_defaulted=True)


DEFAULTED_DATE_NOTE: Final = "[生效日期未填，默认为提交当日 effective date defaulted to the request day]"
"""Kept in the history note of a change whose effective date was defaulted (:meth:`ChangeInfo.or_request_day`)."""


@dataclass(frozen=True)
class EditResult:
    """Outcome of a write: the feature id, its new ETag (None after a delete) and its GeoJSON text."""

    feature_id: int
    etag: str | None
    feature: str | None = None
    tombstone_id: int | None = None


# --------------------------------------------------------------------------- ETags


def check_if_match(header: str, current: str) -> None:
    """Compare an ``If-Match`` header with the current ETag (strong comparison, ``*`` matches).

    Raises
    ------
    PreconditionFailedError
        The feature changed since the caller read it (HTTP 412).
    """
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if "*" in tags or current in tags:
        return
    raise PreconditionFailedError(
        "The feature was changed by someone else after you read it (its ETag is now "
        f"{current}). Reload it, re-apply your change and send the new ETag in If-Match.",
        detail={"etag": current},
    )


# --------------------------------------------------------------------------- change metadata


def _header_text(value: str) -> str:
    """A header value as text: raw UTF-8 (decoded as latin-1 by the server) or percent-encoded."""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return unquote(value).strip()


def parse_change(member: Any, headers: Mapping[str, str] | None = None, *, today: dt.date | None = None) -> ChangeInfo:
    """Build :class:`ChangeInfo` from a body's ``change`` member and/or request headers.

    Raises
    ------
    InvalidInputError
        Unknown keys, non-text values, a malformed or future effective date, over-long text.
    """
    values: dict[str, str] = {}
    for key, header in CHANGE_HEADERS.items():
        raw = (headers or {}).get(header)
        if raw:
            values[key] = _header_text(raw)
    if member is not None:
        if not isinstance(member, dict):
            raise InvalidInputError(
                "'change' must be an object such as {\"effective_date\": \"2024-05-01\", \"source_doc\": \"...\"}."
            )
        unknown = sorted(set(member) - set(CHANGE_HEADERS))
        if unknown:
            raise InvalidInputError(
                f"'change' has unknown keys {unknown}; allowed: {', '.join(CHANGE_HEADERS)}."
            )
        for key, value in member.items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidInputError(f"change.{key} must be text.")
            values[key] = value.strip()
    for key, limit in _MAX_LEN.items():
        if len(values.get(key, "")) > limit:
            raise InvalidInputError(f"change.{key} is longer than {limit} characters.")
    eff: dt.date | None = None
    if values.get("effective_date"):
        text = values["effective_date"]
        try:
            eff = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(
                f"Effective date '{text}' is not a date; write it as YYYY-MM-DD, e.g. 2024-05-01."
            ) from None
        latest = (today or dt.date.today()) + dt.timedelta(days=1)
        if not _EARLIEST_DATE <= eff <= latest:
            raise InvalidInputError(
                f"Effective date {eff} must lie between {_EARLIEST_DATE} and today; a change cannot take "
                "effect in the future."
            )
    return ChangeInfo(
        effective_date=eff,
        source_doc=values.get("source_doc") or None,
        note=values.get("note") or None,
        reason=values.get("reason") or None,
    )


# --------------------------------------------------------------------------- properties


def read_only_properties(layer: Layer) -> set[str]:
    """Properties the server computes; ignored on input."""
    out = {"id", "status_label", "created_at", "updated_at"}
    out |= {f.name for f in layer.fields if f.generated}
    if layer.measure_field:
        out.add(layer.measure_field)
    return out


def writable_properties(layer: Layer) -> list[str]:
    """Properties a client may set, in display order."""
    names = ["code", "name", "district_code"]
    if layer.has_status:
        names.append("status")
    return names + [f.name for f in layer.fields if not f.generated]


def required_properties(layer: Layer) -> list[str]:
    """Properties every feature must have."""
    names = ["code", "name"]
    if layer.has_status:
        names.append("status")
    return names + [f.name for f in layer.fields if f.required and not f.generated]


def _bad(layer: Layer, name: str, value: Any, expected: str) -> InvalidInputError:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    label = layer.labels.get(name, name)
    return InvalidInputError(
        f"Property '{name}' ({label}) of layer '{layer.id}' must be {expected}; got {shown}.",
        detail={"layer": layer.id, "property": name},
    )


def _text(layer: Layer, name: str, value: Any, max_length: int) -> str:
    try:
        text: str = convert("text", value)
    except ConversionError:
        raise _bad(layer, name, value, "text") from None
    if len(text) > max_length:
        raise _bad(layer, name, value, f"at most {max_length} characters")
    return text


def _value(layer: Layer, name: str, value: Any) -> Any:  # noqa: C901 - one branch per registry type
    """One property value, checked and normalised to what the column stores."""
    if value is None:
        return None
    if name == "status":
        assert layer.lifecycle is not None
        if not isinstance(value, str):
            raise _bad(layer, name, value, "a status code or label")
        code = layer.lifecycle.by_label().get(value.strip().lower())
        if code is None:
            raise UnknownStatusError(layer.id, value, layer.lifecycle.codes)
        return code
    if name in ("code", "name"):
        text = _text(layer, name, value, 100 if name == "code" else 200)
        if not text:
            raise _bad(layer, name, value, "non-empty text")
        return text
    if name == "district_code":
        text = _text(layer, name, value, 6)
        if not _DISTRICT_RE.match(text):
            raise _bad(layer, name, value, "a 6-digit administrative code (adcode) such as 130108")
        return text
    f = layer.field(name)
    if f.type == "text":
        text = _text(layer, name, value, f.max_length or 2000)
        if f.choices:
            for c in f.choices:
                if text in (c.code, c.label) or (c.label_en and text.lower() == c.label_en.lower()):
                    return c.code
            raise _bad(layer, name, value, "one of " + ", ".join(f"{c.code} ({c.label})" for c in f.choices))
        return text
    try:
        num = convert(f.type, value)  # one rule set for URLs, JSON bodies and file cells
    except ConversionError:
        raise _bad(layer, name, value, EXPECTED[f.type]) from None
    if f.type not in ("integer", "number"):
        return num
    if f.type == "integer" and abs(num) > 2**31 - 1:
        raise _bad(layer, name, value, "a whole number from -2147483648 to 2147483647")
    if f.min is not None and num < f.min:
        raise _bad(layer, name, value, f"at least {f.min:g}" + (f" {f.unit}" if f.unit else ""))
    if f.max is not None and num > f.max:
        raise _bad(layer, name, value, f"at most {f.max:g}" + (f" {f.unit}" if f.unit else ""))
    return num


def validate_properties(layer: Layer, props: Any) -> dict[str, Any]:
    """Check and normalise client properties; read-only ones are dropped.

    Raises
    ------
    InvalidInputError
        Unknown property, wrong type, out of range, not in the vocabulary (HTTP 400).
    """
    if not isinstance(props, dict):
        raise InvalidInputError("'properties' must be an object of property names and values.")
    writable = writable_properties(layer)
    skip = read_only_properties(layer)
    out: dict[str, Any] = {}
    for name, value in props.items():
        if name in skip:
            continue
        if name not in writable:
            raise UnknownFieldError(layer.id, str(name)[:64], writable)
        out[name] = _value(layer, name, value)
    return out


def _check_required(layer: Layer, row: Mapping[str, Any]) -> None:
    missing = [n for n in required_properties(layer) if row.get(n) is None]
    if missing:
        labels = ", ".join(f"{n} ({layer.labels.get(n, n)})" for n in missing)
        raise InvalidInputError(
            f"A feature of layer '{layer.id}' needs {labels}.", detail={"layer": layer.id, "missing": missing}
        )


# --------------------------------------------------------------------------- geometry


def parse_content_crs(header: str | None) -> CrsRef:
    """The CRS of incoming coordinates from a ``Content-Crs`` header (``<uri>`` or bare); CRS84 by default."""
    if header is None or not header.strip():
        return CRS84
    return parse_crs(header.strip().strip("<>"))


def _lat_first(crs: CrsRef) -> bool:
    from layers.query import axis_swapped

    return axis_swapped(crs)


def parse_geometry(layer: Layer, value: Any, extent: Extent, crs: CrsRef = CRS84) -> shapely.Geometry:
    """A GeoJSON geometry in ``crs`` (its own axis order) as a valid 2-D CGCS2000 lon/lat geometry of the layer's type.

    Raises
    ------
    GeometryError
        Malformed, empty, non-finite, of the wrong type, invalid, or outside the city's ``extent`` (HTTP 400).
    """
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise GeometryError("'geometry' must be a GeoJSON geometry object with a 'type' and 'coordinates'.")
    try:
        geom = shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises many types for malformed input
        raise GeometryError(
            f"The geometry is not valid GeoJSON ({type(exc).__name__}): check its coordinates."
        ) from None
    if geom.is_empty:
        raise GeometryError("The geometry is empty.")
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise GeometryError("The geometry has non-finite coordinates (NaN or infinity).")
    geom = shapely.force_2d(geom)
    accepted = _PROMOTE[layer.geometry_type]
    if geom.geom_type not in accepted:
        raise GeometryError(
            f"Layer '{layer.id}' ({layer.title}) stores {layer.geometry_type} geometries; got {geom.geom_type}. "
            f"Send one of: {', '.join(accepted)}.",
            detail={"layer": layer.id, "expected": layer.geometry_type, "got": geom.geom_type},
        )
    if geom.geom_type != layer.geometry_type:
        cls = {"MultiPolygon": shapely.MultiPolygon, "MultiLineString": shapely.MultiLineString,
               "MultiPoint": shapely.MultiPoint}[layer.geometry_type]
        geom = cls([geom])
    if _lat_first(crs):
        geom = shapely.transform(geom, lambda c: c[:, ::-1])
    if crs.kind != "crs84" and not (crs.kind == "epsg" and crs.epsg in (4326, 4490)):
        geom = to_storage(geom, crs)
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all() or outside_city(xy[:, 0], xy[:, 1], extent).any():
        minx, miny, maxx, maxy = extent.as_tuple()
        raise GeometryError(
            f"The geometry lies (partly) outside {extent.name} (lon {minx}–{maxx}, lat {miny}–{maxy}) when read as "
            f"{crs.label}. Check the Content-Crs header and the axis order (CRS84: lon,lat; EPSG:4490: lat,lon).",
            detail={"crs": crs.label},
        )
    if not shapely.is_valid(geom):
        raise GeometryError(
            f"The geometry is not valid: {shapely.is_valid_reason(geom)}. Fix self-intersections or ring order "
            "in your GIS (e.g. QGIS 'Fix geometries') and send it again.",
        )
    return geom


def _wkb(geom: shapely.Geometry) -> bytes:
    return bytes(shapely.to_wkb(geom, output_dimension=2))


_GEOM_PARAM: Final = sql.SQL("ST_SetSRID(ST_GeomFromWKB(%(geom)s), 4490)")


# --------------------------------------------------------------------------- SQL helpers


async def _set_context(conn: AsyncConnection[Any], ctx: EditContext, change: ChangeInfo) -> None:
    """Transaction-local settings the history and audit triggers read."""
    await conn.execute(
        "SELECT set_config('renewal.actor', %s, true), set_config('renewal.channel', %s, true), "
        "set_config('renewal.request_id', %s, true), set_config('renewal.effective_date', %s, true), "
        "set_config('renewal.source_doc', %s, true), set_config('renewal.note', %s, true), "
        "set_config('renewal.history_mode', '', true), set_config('renewal.audit_mode', '', true)",
        (
            ctx.actor,
            ctx.channel,
            ctx.request_id or "",
            change.effective_date.isoformat() if change.effective_date else "",
            change.source_doc or "",
            change.note_with_reason or "",
        ),
    )


async def check_district_scope(conn: AsyncConnection[Any], layer: Layer, ctx: EditContext, wkb: bytes,
                               when: str) -> None:
    """Raise 403 unless the geometry shares interior with one of the editor's districts.

    ``when`` ("before" / "after" the edit) only shapes the message.
    """
    if ctx.districts is None:
        return
    if ctx.districts:
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM renewal.districts AS d WHERE d.code = ANY(%(codes)s) "
            "AND ST_Intersects(d.geom, g.g) AND NOT ST_Touches(d.geom, g.g)) "
            "FROM (SELECT ST_SetSRID(ST_GeomFromWKB(%(geom)s), 4490) AS g) AS g",
            {"codes": sorted(ctx.districts), "geom": wkb},
        )
        row = await cur.fetchone()
        if row and row[0]:
            return
    scope = ", ".join(sorted(ctx.districts)) or "none"
    raise PermissionDeniedError(
        f"User '{ctx.actor}' may edit features in districts {scope} only; this feature's geometry "
        f"{'is' if when == 'before' else 'would be'} outside them {when} the edit.",
        detail={"districts": sorted(ctx.districts), "when": when},
    )


def _db_error(layer: Layer, exc: psycopg.Error) -> Exception:
    """A database constraint violation as a domain error a GIS officer can act on."""
    diag = exc.diag
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return ConflictError(
            f"Layer '{layer.id}' already has a feature with this {layer.code_label} (code); codes are unique.",
            detail={"layer": layer.id, "constraint": diag.constraint_name or ""},
        )
    if isinstance(exc, psycopg.errors.NotNullViolation):
        col = diag.column_name or "?"
        return InvalidInputError(
            f"Property '{col}' ({layer.labels.get(col, col)}) of layer '{layer.id}' is required.",
            detail={"layer": layer.id, "property": col},
        )
    if isinstance(exc, psycopg.errors.CheckViolation | psycopg.errors.InvalidParameterValue
                  | psycopg.errors.DataException):
        return InvalidInputError(
            f"The database rejected the values for layer '{layer.id}' "
            f"({diag.constraint_name or diag.message_primary or 'constraint'}).",
            detail={"layer": layer.id},
        )
    return exc


def _table(layer: Layer) -> sql.Composable:
    return sql.Identifier(layer.schema_name, layer.table)


_EDITED_MEMBERS: Final = ("properties", "geometry", CHANGE_MEMBER)
"""The members of a feature body that a create, replace or patch reads; others (``id``, ``bbox``,
``links``, foreign members, RFC 7946 §6.1) are accepted and ignored."""


def _split_feature(feature: Any, *, geometry_required: bool) -> tuple[dict[str, Any], Any, Any]:
    """(properties, geometry, change member) of a feature body.

    A body naming none of ``properties``, ``geometry`` and ``change`` but other members (a patch
    sent as ``{"propertis": ...}``, or the properties without their wrapper) would change nothing
    and answer 200 as if it had: it is refused, naming what was sent, so the officer sees the slip.
    """
    if not isinstance(feature, dict):
        raise InvalidInputError("The request body must be a GeoJSON Feature object.")
    if feature.get("type", "Feature") != "Feature":
        raise InvalidInputError("The request body must be a GeoJSON Feature (\"type\": \"Feature\").")
    others = sorted(k[:40] for k in feature if k not in ("type", "id", "bbox", "links"))  # quoted back: capped
    if others and not any(k in feature for k in _EDITED_MEMBERS):
        raise InvalidInputError(
            f"The body has no 'properties', 'geometry' or 'change' member, so it would change nothing; it has "
            f"{', '.join(repr(k) for k in others[:5])}. Put attribute values inside \"properties\": {{...}}.",
            detail={"members": others[:20]},
        )
    if geometry_required and feature.get("geometry") is None:
        raise GeometryError("A feature needs a geometry.")
    props = feature.get("properties") or {}
    return props, feature.get("geometry"), feature.get(CHANGE_MEMBER)


def _lifecycle_checks(layer: Layer, old: str | None, new: str | None, change: ChangeInfo) -> None:
    if layer.lifecycle is None or new is None or old == new:
        return
    lc = layer.lifecycle
    if change.effective_date is None:
        raise InvalidInputError(
            f"Setting the {lc.label} to {lc.get(new).label} ({new}) needs an effective date: send "
            "\"change\": {\"effective_date\": \"YYYY-MM-DD\"} in the body or an X-Effective-Date header.",
            detail={"layer": layer.id, "status": new},
        )
    if old is None:
        return
    allowed = lc.allowed_next(old)
    if new in allowed or (change.reason and change.source_doc):
        return
    allowed_txt = ", ".join(f"{lc.get(c).label} ({c})" for c in allowed) or "none"
    raise ConflictError(
        f"{layer.title}: moving from {lc.get(old).label} ({old}) to {lc.get(new).label} ({new}) skips the "
        f"lifecycle; allowed next: {allowed_txt}. To record it anyway give both a reason and a source "
        "document (change.reason and change.source_doc).",
        detail={"layer": layer.id, "from": old, "to": new, "allowed": allowed},
    )


async def _feature_text(conn: AsyncConnection[Any], layer: Layer, fid: int) -> str:
    from layers.query import fetch_feature

    return await fetch_feature(conn, layer, fid)


# --------------------------------------------------------------------------- writes


async def create_feature(conn: AsyncConnection[Any], layer: Layer, feature: Any, ctx: EditContext,
                         change: ChangeInfo | None = None, crs: CrsRef = CRS84) -> EditResult:
    """Insert a feature; returns its id, ETag and GeoJSON.

    ``change`` defaults to the body's ``change`` member. Raises 400 (validation), 403 (district
    scope), 409 (duplicate code).
    """
    props, geometry, member = _split_feature(feature, geometry_required=True)
    if change is None:
        change = parse_change(member)
    values = validate_properties(layer, props)
    _check_required(layer, values)
    _lifecycle_checks(layer, None, values.get("status"), change)
    geom = parse_geometry(layer, geometry, (await city.load_async(conn)).bbox, crs)
    wkb = _wkb(geom)
    try:
        async with conn.transaction():
            await _set_context(conn, ctx, change)
            await check_district_scope(conn, layer, ctx, wkb, "after")
            params: dict[str, Any] = {"geom": wkb}
            cols = list(values)
            district: sql.Composable
            if values.get("district_code") is None:
                cols = [c for c in cols if c != "district_code"]
                district = sql.SQL(
                    "(SELECT d.code FROM renewal.districts AS d WHERE ST_Intersects(d.geom, "
                    "ST_PointOnSurface({})) ORDER BY d.code LIMIT 1)"
                ).format(_GEOM_PARAM)
            else:
                district = sql.Placeholder("district_code")
                params["district_code"] = values["district_code"]
                cols = [c for c in cols if c != "district_code"]
            params.update({f"v_{c}": values[c] for c in cols})
            stmt = sql.SQL(
                "INSERT INTO {table} AS t ({cols}) VALUES ({vals}) RETURNING t.id, {etag}"
            ).format(
                table=_table(layer),
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in [*cols, "district_code", "geom"]),
                vals=sql.SQL(", ").join([*(sql.Placeholder(f"v_{c}") for c in cols), district, _GEOM_PARAM]),
                etag=etag_sql("t"),
            )
            cur = await conn.execute(stmt, params)
            row = await cur.fetchone()
            assert row is not None
            fid, etag = int(row[0]), str(row[1])
            text = await _feature_text(conn, layer, fid)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataException) as exc:
        raise _db_error(layer, exc) from None
    return EditResult(fid, etag, text)


_ROW_SQL: Final = (
    "SELECT (to_jsonb(t) - 'geom')::text, ST_AsBinary(t.geom), {etag}, {geojson} FROM {table} AS t WHERE t.id = %s"
)


@dataclass(frozen=True)
class FeatureRow:
    """A feature's current row as a change starts from it (see :func:`read_feature_row`)."""

    properties: dict[str, Any]
    wkb: bytes
    etag: str
    geometry: Any = None
    """The GeoJSON geometry (7 decimals), only when asked for (``with_geometry=True``)."""


async def read_feature_row(conn: AsyncConnection[Any], layer: Layer, fid: int, *, lock: bool,
                           with_geometry: bool = False) -> FeatureRow:
    """The feature's properties, WKB geometry and ETag; ``lock`` takes its row lock (``FOR UPDATE``).

    Why one function: a direct update or delete reads the row locked, inside its transaction
    (:func:`_open_change`); a submission reads it unlocked, to record the feature as the
    submitter saw it and its ETag as ``base_etag``, which is later the approval's ``If-Match``
    against the locked read here. Both must read the same image with the same ETag.
    Raises :class:`layers.query.FeatureNotFoundError` (404) when there is no such row.
    """
    from layers.query import FeatureNotFoundError

    stmt = sql.SQL(_ROW_SQL + (" FOR UPDATE" if lock else "")).format(
        etag=etag_sql("t"), table=_table(layer),
        geojson=sql.SQL("ST_AsGeoJSON(t.geom, 7, 0)" if with_geometry else "NULL"))
    cur = await conn.execute(stmt, (fid,))
    row = await cur.fetchone()
    if row is None:
        raise FeatureNotFoundError(layer.id, fid)
    return FeatureRow(json.loads(row[0]), bytes(row[1]), str(row[2]),
                      json.loads(row[3]) if row[3] is not None else None)


async def _open_change(conn: AsyncConnection[Any], layer: Layer, feature_id: int, ctx: EditContext,
                       change: ChangeInfo, if_match: str | None) -> dict[str, Any]:
    """First steps of a change to an existing feature, inside its transaction; returns its current properties.

    Set the trail context, lock the row, compare ``If-Match`` with the locked row's ETag (412),
    and check the editor's districts against the geometry before the change (403). Why one
    helper: update and delete must take these steps in this order, on the locked row.
    """
    await _set_context(conn, ctx, change)
    row = await read_feature_row(conn, layer, feature_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, row.etag)
    await check_district_scope(conn, layer, ctx, row.wkb, "before")
    return row.properties


async def update_feature(conn: AsyncConnection[Any], layer: Layer, feature_id: int, body: Any, ctx: EditContext, *,
                         merge: bool, if_match: str | None, change: ChangeInfo | None = None,
                         crs: CrsRef = CRS84) -> EditResult:
    """Replace (``merge=False``, PUT) or merge-patch (``merge=True``, RFC 7396 PATCH) a feature.

    With ``if_match`` the write happens only if the feature's ETag still matches (412 otherwise);
    the comparison runs on the locked row inside the transaction. In a merge patch, a property
    set to ``null`` is cleared and ``geometry`` (if present) replaces the geometry.
    """
    props, geometry, member = _split_feature(body, geometry_required=not merge)
    if change is None:
        change = parse_change(member)
    values = validate_properties(layer, props)
    geom = parse_geometry(layer, geometry, (await city.load_async(conn)).bbox, crs) if geometry is not None else None
    if merge and "geometry" in body and body["geometry"] is None:
        raise GeometryError("A feature's geometry cannot be removed; send a new geometry or leave it out.")
    try:
        async with conn.transaction():
            current = await _open_change(conn, layer, feature_id, ctx, change, if_match)
            if merge:
                new_values = values
                merged = {k: current.get(k) for k in writable_properties(layer)} | values
            else:
                new_values = {k: values.get(k) for k in writable_properties(layer)}
                merged = new_values
            _check_required(layer, merged)
            _lifecycle_checks(layer, current.get("status"), merged.get("status"), change)
            assigns: list[sql.Composable] = [
                sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(f"v_{k}")) for k in new_values
            ]
            params: dict[str, Any] = {f"v_{k}": v for k, v in new_values.items()}
            if geom is not None:
                wkb = _wkb(geom)
                await check_district_scope(conn, layer, ctx, wkb, "after")
                assigns.append(sql.SQL("geom = {}").format(_GEOM_PARAM))
                params["geom"] = wkb
            if not assigns:
                assigns.append(sql.SQL("name = t.name"))  # an empty patch still counts as a (touching) write
            params["fid"] = feature_id
            stmt = sql.SQL("UPDATE {table} AS t SET {assigns} WHERE t.id = %(fid)s RETURNING {etag}").format(
                table=_table(layer), assigns=sql.SQL(", ").join(assigns), etag=etag_sql("t"))
            cur = await conn.execute(stmt, params)
            row = await cur.fetchone()
            assert row is not None
            new_etag = str(row[0])
            text = await _feature_text(conn, layer, feature_id)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataException) as exc:
        raise _db_error(layer, exc) from None
    return EditResult(feature_id, new_etag, text)


async def delete_feature(conn: AsyncConnection[Any], layer: Layer, feature_id: int, ctx: EditContext, *,
                         if_match: str | None, change: ChangeInfo | None = None) -> EditResult:
    """Soft-delete a feature: its last state goes to ``renewal.tombstones``, then the row is removed.

    The audit log records the DELETE with the before image; the tombstone keeps who, when,
    why and the request id, for administrators (``/collections/{id}/tombstones``).
    """
    change = change or ChangeInfo()
    async with conn.transaction():
        await _open_change(conn, layer, feature_id, ctx, change, if_match)
        cur = await conn.execute(
            sql.SQL(
                "INSERT INTO renewal.tombstones (layer, feature_id, code, feature, deleted_by, request_id, "
                "effective_date, source_doc, note) "
                "SELECT %(layer)s, t.id, t.code, "
                "(to_jsonb(t) - 'geom') || jsonb_build_object('geometry', ST_AsGeoJSON(t.geom)::jsonb), "
                "%(actor)s, %(rid)s, %(eff)s, %(doc)s, %(note)s FROM {table} AS t WHERE t.id = %(fid)s RETURNING id"
            ).format(table=_table(layer)),
            {"layer": layer.id, "actor": ctx.actor, "rid": ctx.request_id, "eff": change.effective_date,
             "doc": change.source_doc, "note": change.note_with_reason, "fid": feature_id},
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(_table(layer)), (feature_id,))
    return EditResult(feature_id, None, None, tombstone_id=int(row[0]))
