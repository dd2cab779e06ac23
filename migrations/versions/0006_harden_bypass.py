"""Only the data owner may switch off history or audit; the API's role cannot.

The demo loader turns the status-history trigger to 'manual' and the audit trigger 'off'
through transaction-local settings. Any session can set such a setting, so the API's
role (renewal_app, migration 0005) could have skipped the audit trail. From here on
both triggers ignore the bypass settings when the current role is renewal_app.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GUARD = "renewal.bypass_allowed"


def upgrade():
    op.execute(
        f"""
        CREATE FUNCTION {GUARD}(setting text, value text) RETURNS boolean
        LANGUAGE sql STABLE AS $$
          SELECT coalesce(current_setting(setting, true), '') = value AND current_user <> 'renewal_app'
        $$;
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION {GUARD}(text, text) TO PUBLIC")
    _swap("track_status", "coalesce(current_setting('renewal.history_mode', true), '') = 'manual'",
          f"{GUARD}('renewal.history_mode', 'manual')")
    _swap("audit_row", "coalesce(current_setting('renewal.audit_mode', true), '') = 'off'",
          f"{GUARD}('renewal.audit_mode', 'off')")


def downgrade():
    _swap("track_status", f"{GUARD}('renewal.history_mode', 'manual')",
          "coalesce(current_setting('renewal.history_mode', true), '') = 'manual'")
    _swap("audit_row", f"{GUARD}('renewal.audit_mode', 'off')",
          "coalesce(current_setting('renewal.audit_mode', true), '') = 'off'")
    op.execute(f"DROP FUNCTION IF EXISTS {GUARD}(text, text)")


def _swap(function, old, new):
    """Rewrite one condition in a trigger function's body, failing loudly if it is not there."""
    op.execute(
        f"""
        DO $do$
        DECLARE src text;
        BEGIN
          src := pg_get_functiondef('renewal.{function}()'::regprocedure);
          IF position($q${old}$q$ in src) = 0 THEN
            RAISE EXCEPTION 'renewal.{function}: expected condition not found';
          END IF;
          EXECUTE replace(src, $q${old}$q$, $q${new}$q$);
        END
        $do$;
        """
    )
