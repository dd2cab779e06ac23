"""Audit log and status history written per statement, set-based: one definition for every writer.

Until now the trail had two definitions: the row triggers (``renewal.audit_row()``,
``renewal.track_status()``, a PL/pgSQL call, a ``to_jsonb`` and an ``ST_AsGeoJSON`` per row) and a
copy of their SQL in the importer, which switched the triggers off for large loads and wrote the
same rows itself. From here on every layer table has statement-level AFTER triggers with
transition tables (``REFERENCING NEW TABLE/OLD TABLE``) that write the same rows for all the
rows of a statement in one ``INSERT ... SELECT``: the API, the CLI, the importer and psql all go
through them, and nobody keeps a copy.

The rows are the same as the row triggers wrote (same columns, same transaction-local settings,
before/after images of every column with the geometry as GeoJSON, a history row for every insert
and every status change), with one addition for bulk loads:

``renewal.audit_mode = 'summary'`` (only the data owner, never ``renewal_app``: see
``renewal.bypass_allowed``) makes an INSERT statement write **one** audit row for the statement
(``feature_id`` NULL, ``after`` = ``{"bulk_insert": true, "features": n, "first_id", "last_id"}``)
instead of one full image per row. Nothing is lost: the inserted rows are the layer rows with
those ids as they were inserted (any later change writes its own audit row with the full
``before`` image), each still gets its status-history row, and the import itself (file, SHA-256,
who, counts) is the ``renewal.imports`` row named in the audit row's ``note``. Updates and deletes
always write full images.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from alembic import op

from migrations.helpers import drop_row_trail_triggers, row_trail_triggers, statement_trail_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SETTING = "nullif(current_setting('{}', true), '')"
ACTOR = "coalesce(" + SETTING.format("renewal.actor") + ", current_user)"


def upgrade():
    op.execute(
        """
        CREATE FUNCTION renewal.audit_image_sql(rel regclass, alias text) RETURNS text
        LANGUAGE sql STABLE AS $$
          -- The audit image of a row of rel named alias: every column by name and the geometry as
          -- GeoJSON, i.e. (to_jsonb(row) - 'geom') || {'geom': ST_AsGeoJSON(geom)} without
          -- to_jsonb turning the geometry into GeoJSON a second time only to drop it.
          SELECT '(' || string_agg(chunk, ' || ' ORDER BY grp)
                 || ' || jsonb_build_object(''geom'', ST_AsGeoJSON(' || quote_ident(alias) || '.geom)::jsonb))'
          FROM (
            SELECT grp, 'jsonb_build_object('
                   || string_agg(format('%L, %I.%I', attname, alias, attname), ', ' ORDER BY attnum) || ')' AS chunk
            FROM (
              SELECT attname, attnum, (row_number() OVER (ORDER BY attnum) - 1) / 40 AS grp
              FROM pg_attribute
              WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped AND attname <> 'geom'
            ) AS a
            GROUP BY grp
          ) AS c
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION renewal.audit_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          src text;
          before_image text := 'NULL::jsonb';
          after_image text := 'NULL::jsonb';
          r text := 'n';
        BEGIN
          IF renewal.bypass_allowed('renewal.audit_mode', 'off') THEN
            RETURN NULL;
          END IF;
          IF TG_OP = 'INSERT' AND renewal.bypass_allowed('renewal.audit_mode', 'summary') THEN
            INSERT INTO renewal.audit_log (actor, channel, action, layer, feature_id, code, before, after,
                                           request_id, source_doc, note)
            SELECT {ACTOR}, {SETTING.format("renewal.channel")}, 'INSERT', TG_TABLE_NAME, NULL, NULL, NULL,
                   jsonb_build_object('bulk_insert', true, 'features', count(*), 'first_id', min(n.id),
                                      'last_id', max(n.id)),
                   {SETTING.format("renewal.request_id")}, {SETTING.format("renewal.source_doc")},
                   {SETTING.format("renewal.note")}
            FROM new_rows AS n HAVING count(*) > 0;
            RETURN NULL;
          END IF;
          IF TG_OP = 'INSERT' THEN
            src := 'new_rows AS n';
            after_image := renewal.audit_image_sql(TG_RELID, 'n');
          ELSIF TG_OP = 'UPDATE' THEN
            src := 'new_rows AS n JOIN old_rows AS o ON o.id = n.id';
            before_image := renewal.audit_image_sql(TG_RELID, 'o');
            after_image := renewal.audit_image_sql(TG_RELID, 'n');
          ELSE
            src := 'old_rows AS o';
            r := 'o';
            before_image := renewal.audit_image_sql(TG_RELID, 'o');
          END IF;
          EXECUTE format(
            'INSERT INTO renewal.audit_log (actor, channel, action, layer, feature_id, code, before, after, '
            'request_id, source_doc, note) '
            'SELECT {ACTOR.replace("'", "''")}, {SETTING.format("renewal.channel").replace("'", "''")}, %L, %L, '
            '%I.id, %I.code, %s, %s, {SETTING.format("renewal.request_id").replace("'", "''")}, '
            '{SETTING.format("renewal.source_doc").replace("'", "''")}, '
            '{SETTING.format("renewal.note").replace("'", "''")} FROM %s',
            TG_OP, TG_TABLE_NAME, r, r, before_image, after_image, src);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION renewal.track_status_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF renewal.bypass_allowed('renewal.history_mode', 'manual') THEN
            RETURN NULL;
          END IF;
          IF TG_OP = 'INSERT' THEN
            INSERT INTO renewal.status_history
              (layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by)
            SELECT TG_TABLE_NAME, n.id, n.code, NULL, n.status,
                   coalesce({SETTING.format("renewal.effective_date")}::date, current_date),
                   {SETTING.format("renewal.source_doc")}, {SETTING.format("renewal.note")}, {ACTOR}
            FROM new_rows AS n;
          ELSE
            INSERT INTO renewal.status_history
              (layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by)
            SELECT TG_TABLE_NAME, n.id, n.code, o.status, n.status,
                   coalesce({SETTING.format("renewal.effective_date")}::date, current_date),
                   {SETTING.format("renewal.source_doc")}, {SETTING.format("renewal.note")}, {ACTOR}
            FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
            WHERE n.status IS DISTINCT FROM o.status;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    for table, has_status in _layer_tables():
        drop_row_trail_triggers(table)
        statement_trail_triggers(table, has_status)


def downgrade():
    for table, has_status in _layer_tables():
        for suffix in ("audit_ins", "audit_upd", "audit_del", "history_ins", "history_upd"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix} ON renewal.{table}")
        row_trail_triggers(table, has_status)
    op.execute("DROP FUNCTION renewal.track_status_rows()")
    op.execute("DROP FUNCTION renewal.audit_rows()")
    op.execute("DROP FUNCTION renewal.audit_image_sql(regclass, text)")


def _layer_tables():
    """(table, has status column) of every table that has the row audit trigger (upgrade) or its successor."""
    rows = op.get_bind().exec_driver_sql(
        """
        SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'status'
                                  AND NOT a.attisdropped)
        FROM pg_class AS c JOIN pg_namespace AS s ON s.oid = c.relnamespace
        WHERE s.nspname = 'renewal' AND c.relkind = 'r' AND EXISTS (
          SELECT 1 FROM pg_trigger AS t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
            AND t.tgfoid IN ('renewal.audit_row()'::regprocedure, 'renewal.audit_rows()'::regprocedure))
        ORDER BY c.relname
        """
    ).fetchall()
    return [(str(r[0]), bool(r[1])) for r in rows]
