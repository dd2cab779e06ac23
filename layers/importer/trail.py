"""The audit log and status history of an import written set-based (see :class:`SetBasedTrail`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from layers.importer.options import ImportOptions
from layers.models import Layer

TRAIL_NOTE = "Audit log and status history written set-based by the importer (row triggers off for this import)."

_SETTING = "nullif(current_setting({}, true), '')"


def _setting(name: str) -> sql.Composable:
    return sql.SQL(_SETTING).format(sql.Literal(name))


def _row_json(alias: str, columns: list[str]) -> sql.Composable:
    """The audit trigger's image of a row: every column, the geometry as GeoJSON (``renewal.audit_row()``).

    The trigger writes ``(to_jsonb(row) - 'geom') || {'geom': ST_AsGeoJSON(geom)}``; ``to_jsonb(row)``
    turns the geometry into GeoJSON once more only to drop it (PostGIS' jsonb cast), which costs
    four times the rest. Building the object from the other columns by name gives the same jsonb
    (``jsonb_build_object`` converts each value with ``to_jsonb``, as ``to_jsonb(row)`` does).
    """
    a = sql.Identifier(alias)
    parts = [
        sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}.{}").format(sql.Literal(c), a, sql.Identifier(c)) for c in columns[i : i + 40]
            )
        )
        for i in range(0, len(columns), 40)
    ]
    parts.append(sql.SQL("jsonb_build_object('geom', ST_AsGeoJSON({}.geom)::jsonb)").format(a))
    return sql.SQL("(") + sql.SQL(" || ").join(parts) + sql.SQL(")")


@dataclass(frozen=True)
class SetBasedTrail:
    """The audit log and status history written set-based, in the statement that changes the layer.

    The row triggers (``renewal.audit_row()``, ``renewal.track_status()``) cost a PL/pgSQL call, a
    ``to_jsonb`` and an ``ST_AsGeoJSON`` per row and feature, about 80 % of a large insert. When the
    database role may switch them off (the data owner: CLI imports; never the API's ``renewal_app``,
    migration 0006), the importer sets ``renewal.audit_mode = 'off'`` and ``renewal.history_mode =
    'manual'`` for its transaction and writes the same rows itself with ``INSERT ... SELECT`` from the
    ``RETURNING`` of the data-modifying statement: the same columns, the same settings, the same
    before/after images (all columns, generated ones included, geometry as GeoJSON).
    """

    layer: Layer
    columns: list[str]
    """The layer table's columns but the geometry, in table order."""

    @classmethod
    def start(cls, cur: psycopg.Cursor[Any], layer: Layer, opts: ImportOptions) -> SetBasedTrail | None:
        """Switch the triggers off for this transaction if the role may; None (triggers stay on) otherwise."""
        cur.execute(
            "SELECT set_config('renewal.audit_mode', 'off', true), set_config('renewal.history_mode', 'manual', true), "
            "renewal.bypass_allowed('renewal.audit_mode', 'off') AND "
            "renewal.bypass_allowed('renewal.history_mode', 'manual')"
        )
        row = cur.fetchone()
        if row and row[2]:
            cur.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attname <> 'geom' ORDER BY attnum",
                (f"{layer.schema_name}.{layer.table}",),
            )
            return cls(layer, [str(r[0]) for r in cur.fetchall()])
        cur.execute("SELECT set_config('renewal.audit_mode', '', true), set_config('renewal.history_mode', '', true)")
        return None

    def old_columns(self) -> sql.Composable:
        """Extra ``RETURNING`` columns of an UPDATE joined to the old row ``o``: its image and status."""
        status = sql.SQL("o.status") if self.layer.has_status else sql.SQL("NULL::text")
        return sql.SQL("{} AS audit_before__, {} AS status_before__").format(_row_json("o", self.columns), status)

    def wrap(self, statement: sql.Composable, action: Literal["INSERT", "UPDATE", "DELETE"]) -> sql.Composed:
        """``statement ... RETURNING t.*`` wrapped so that its rows land in the audit log and status history.

        The rowcount of the result is the number of audit rows, i.e. of features written.
        """
        table = sql.Literal(self.layer.table)
        ctes: list[sql.Composable] = [sql.SQL("w AS ({})").format(statement)]
        if self.layer.has_status and action != "DELETE":
            from_status = sql.SQL("w.status_before__") if action == "UPDATE" else sql.SQL("NULL::text")
            changed = sql.SQL("WHERE w.status IS DISTINCT FROM w.status_before__" if action == "UPDATE" else "")
            ctes.append(
                sql.SQL(
                    "h AS (INSERT INTO renewal.status_history "
                    "(layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by) "
                    "SELECT {table}, w.id, w.code, {from_status}, w.status, "
                    "coalesce({eff}::date, current_date), {src}, {note}, coalesce({actor}, current_user) "
                    "FROM w {changed} RETURNING 1)"
                ).format(
                    table=table,
                    from_status=from_status,
                    eff=_setting("renewal.effective_date"),
                    src=_setting("renewal.source_doc"),
                    note=_setting("renewal.note"),
                    actor=_setting("renewal.actor"),
                    changed=changed,
                )
            )
        image = _row_json("w", self.columns)
        before = {"INSERT": sql.SQL("NULL::jsonb"), "UPDATE": sql.SQL("w.audit_before__"), "DELETE": image}[action]
        after = sql.SQL("NULL::jsonb") if action == "DELETE" else image
        return sql.SQL(
            "WITH {ctes} INSERT INTO renewal.audit_log "
            "(actor, channel, action, layer, feature_id, code, before, after, request_id, source_doc, note) "
            "SELECT coalesce({actor}, current_user), {channel}, {action}, {table}, w.id, w.code, {before}, {after}, "
            "{request}, {src}, {note} FROM w"
        ).format(
            ctes=sql.SQL(", ").join(ctes),
            actor=_setting("renewal.actor"),
            channel=_setting("renewal.channel"),
            action=sql.Literal(action),
            table=table,
            before=before,
            after=after,
            request=_setting("renewal.request_id"),
            src=_setting("renewal.source_doc"),
            note=_setting("renewal.note"),
        )
