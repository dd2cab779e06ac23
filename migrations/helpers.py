"""DDL helpers shared by migrations.

A migration freezes the columns it creates; these helpers only add what every layer
table has in common (key, code, name, district, status, geometry, measures,
timestamps, indexes and triggers), so layer migrations stay short and uniform.
"""

from alembic import op
from sqlalchemy import text

SCHEMA = "renewal"
PRE_PROFILE_SRID = 4547
"""Before migration 0007 every database was Shijiazhuang, measured in its zone (EPSG:4547)."""


def _measure_expressions():
    """(area, length) SQL as the database's city profile measures them (layers/city.py MEASURE_COLUMNS)."""
    bind = op.get_bind()
    row = None
    if bind.execute(text("SELECT to_regclass('renewal.city') IS NOT NULL")).scalar():
        # to_jsonb: the measure column arrives in 0011, after migrations that may create tables
        row = bind.execute(text("SELECT area_srid, to_jsonb(c) ->> 'measure' FROM renewal.city c")).first()
    srid, measure = (int(row[0]), row[1] or "zone") if row else (PRE_PROFILE_SRID, "zone")
    if measure == "geodesic":
        return "ST_Area(geom::geography) * 0.0015", "ST_Length(geom::geography)"
    return f"ST_Area(ST_Transform(geom, {srid})) * 0.0015", f"ST_Length(ST_Transform(geom, {srid}))"


def _quote_list(values):
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def create_layer_table(table, geometry_type, columns=(), measure=None, statuses=None):
    """Create ``renewal.<table>`` with the common columns, ``columns`` and the indexes.

    measure: "area" adds ``area_mu``, "length" adds ``length_m``, both computed by the
    database (in the city's Gauss-Krüger zone, or on the spheroid, as its profile says) so
    they can never disagree with the geometry.
    statuses: lifecycle codes; adds ``status`` with a CHECK and the history trigger.
    """
    parts = [
        "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "code text NOT NULL CHECK (length(btrim(code)) > 0)",
        "name text NOT NULL CHECK (length(name) <= 200)",
        "district_code text",
    ]
    if statuses:
        parts.append(f"status text NOT NULL CHECK (status IN ({_quote_list(statuses)}))")
    parts.extend(columns)
    area_sql, length_sql = _measure_expressions() if measure else (None, None)
    if measure == "area":
        parts.append(f"area_mu double precision GENERATED ALWAYS AS ({area_sql}) STORED")
    elif measure == "length":
        parts.append(f"length_m double precision GENERATED ALWAYS AS ({length_sql}) STORED")
    parts += [
        f"geom geometry({geometry_type}, 4490) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))",
        "created_at timestamptz NOT NULL DEFAULT now()",
        "updated_at timestamptz NOT NULL DEFAULT now()",
        f"CONSTRAINT {table}_code_key UNIQUE (code)",
    ]
    op.execute(f"CREATE TABLE {SCHEMA}.{table} (\n  " + ",\n  ".join(parts) + "\n)")
    op.execute(f"CREATE INDEX {table}_geom_idx ON {SCHEMA}.{table} USING gist (geom)")
    op.execute(f"CREATE INDEX {table}_district_idx ON {SCHEMA}.{table} (district_code)")
    op.execute(
        f"CREATE TRIGGER {table}_touch BEFORE UPDATE ON {SCHEMA}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.touch_updated_at()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {SCHEMA}.{table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.bump_layer_version()"
    )
    if statuses:
        op.execute(f"CREATE INDEX {table}_status_idx ON {SCHEMA}.{table} (status)")
    if _has_statement_trail():
        statement_trail_triggers(table, bool(statuses))
    else:
        row_trail_triggers(table, bool(statuses))


def _has_statement_trail():
    """Whether migration 0009 (statement-level audit and history triggers) has run in this database."""
    row = op.get_bind().exec_driver_sql("SELECT to_regprocedure('renewal.audit_rows()') IS NOT NULL").fetchone()
    return bool(row and row[0])


def row_trail_triggers(table, has_status):
    """The row-level audit and history triggers of migrations 0001-0008 (kept for upgrading through them)."""
    op.execute(
        f"CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {SCHEMA}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.audit_row()"
    )
    if has_status:
        op.execute(
            f"CREATE TRIGGER {table}_status_history AFTER INSERT OR UPDATE OF status ON {SCHEMA}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.track_status()"
        )


def drop_row_trail_triggers(table):
    """Drop the row-level audit and history triggers (migration 0009 replaces them)."""
    op.execute(f"DROP TRIGGER IF EXISTS {table}_audit ON {SCHEMA}.{table}")
    op.execute(f"DROP TRIGGER IF EXISTS {table}_status_history ON {SCHEMA}.{table}")


def statement_trail_triggers(table, has_status):
    """The audit and history triggers from migration 0009 on: per statement, set-based, over transition tables.

    One trigger per event, because a trigger with transition tables fires on one event only
    when it has an OLD TABLE; the function tells the events apart by ``TG_OP``.
    """
    q = f"{SCHEMA}.{table}"
    op.execute(
        f"CREATE TRIGGER {table}_audit_ins AFTER INSERT ON {q} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.audit_rows()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_audit_upd AFTER UPDATE ON {q} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.audit_rows()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_audit_del AFTER DELETE ON {q} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.audit_rows()"
    )
    if has_status:
        op.execute(
            f"CREATE TRIGGER {table}_history_ins AFTER INSERT ON {q} REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.track_status_rows()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_history_upd AFTER UPDATE ON {q} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.track_status_rows()"
        )


def drop_layer_table(table):
    """Drop a layer table and its history rows."""
    op.execute(f"DELETE FROM {SCHEMA}.status_history WHERE layer = '{table}'")
    op.execute(f"DELETE FROM {SCHEMA}.layer_version WHERE layer = '{table}'")
    op.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")


def append_only_trail(table, trail):
    """Make ``renewal.<table>`` append-only for everyone: UPDATE, DELETE and TRUNCATE raise.

    Why one helper: the audit log (0005) and the review trail (0015) keep the same promise
    (全过程留痕) with the same statement-level trigger; ``trail`` names it in the error's hint.
    """
    op.execute(
        f"""
        CREATE FUNCTION renewal.{table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'renewal.{table} is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The {trail} (全过程留痕) can only be appended to.';
        END $$;
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON renewal.{table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION renewal.{table}_append_only()"
    )
