"""Users, API keys, tombstones; an application role; an append-only audit log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

* ``renewal.users`` / ``renewal.api_keys``: who may read and write (viewer, editor scoped to
  districts, admin); API keys are stored as argon2 hashes, looked up by a public key id.
* ``renewal.tombstones``: the last state of every feature deleted through the API (soft
  delete: the row leaves the layer table, so tiles/progress/exports need no change, but
  the record stays, with who, when and why).
* ``renewal_app``: a NOLOGIN role the API switches to on every pooled connection
  (``SET ROLE``). It may read and write the layer tables but only INSERT and SELECT the
  audit log. Roles are cluster-wide and test databases are created in parallel, so the
  role is created only if missing and is never dropped by the downgrade (other databases
  on the server may use it); the downgrade only revokes what it granted here.
* A statement trigger on ``renewal.audit_log`` rejects UPDATE, DELETE and TRUNCATE for
  everyone, the owner included, so the trail cannot be rewritten silently.
"""
from alembic import op

from migrations.helpers import append_only_trail

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APP_ROLE = "renewal_app"


def upgrade():
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            BEGIN
              CREATE ROLE {APP_ROLE} NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
              NULL;  -- created concurrently by another database's migration
            END;
          END IF;
          -- The migrating (and connecting) user must be able to SET ROLE to it.
          IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
          END IF;
        END $$;
        """
    )
    op.execute(
        """
        CREATE TABLE renewal.users (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
          role text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
          districts text[] NOT NULL DEFAULT '{}',
          display_name text,
          created_at timestamptz NOT NULL DEFAULT now(),
          disabled_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE renewal.api_keys (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES renewal.users (id),
          key_id text NOT NULL UNIQUE,
          key_hash text NOT NULL,
          label text,
          created_at timestamptz NOT NULL DEFAULT now(),
          revoked_at timestamptz
        )
        """
    )
    op.execute("COMMENT ON COLUMN renewal.api_keys.key_hash IS 'argon2id hash of the secret part of the key'")
    op.execute(
        """
        CREATE TABLE renewal.tombstones (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          layer text NOT NULL,
          feature_id bigint NOT NULL,
          code text,
          feature jsonb NOT NULL,
          deleted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          deleted_by text NOT NULL,
          request_id text,
          effective_date date,
          source_doc text,
          note text
        )
        """
    )
    op.execute("CREATE INDEX tombstones_layer_idx ON renewal.tombstones (layer, deleted_at)")
    op.execute("CREATE INDEX tombstones_feature_idx ON renewal.tombstones (layer, feature_id)")

    append_only_trail("audit_log", "audit trail")

    # Privileges of the application role: everything in the schema (also tables other
    # branches create later, through default privileges), except rewriting the trail.
    op.execute(f"GRANT USAGE, CREATE ON SCHEMA renewal TO {APP_ROLE}")
    op.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA renewal TO {APP_ROLE}")
    op.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA renewal TO {APP_ROLE}")
    op.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA renewal TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal GRANT ALL ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal GRANT ALL ON SEQUENCES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal GRANT EXECUTE ON FUNCTIONS TO {APP_ROLE}")
    for table in ("audit_log", "tombstones"):
        op.execute(f"REVOKE ALL ON renewal.{table} FROM {APP_ROLE}")
        op.execute(f"GRANT SELECT, INSERT ON renewal.{table} TO {APP_ROLE}")
    op.execute(f"REVOKE DELETE, TRUNCATE ON renewal.users, renewal.api_keys FROM {APP_ROLE}")


def downgrade():
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal REVOKE ALL ON TABLES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal REVOKE ALL ON SEQUENCES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA renewal REVOKE EXECUTE ON FUNCTIONS FROM {APP_ROLE}")
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON renewal.audit_log")
    op.execute("DROP FUNCTION IF EXISTS renewal.audit_log_append_only()")
    op.execute("DROP TABLE IF EXISTS renewal.tombstones")
    op.execute("DROP TABLE IF EXISTS renewal.api_keys")
    op.execute("DROP TABLE IF EXISTS renewal.users")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA renewal FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA renewal FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA renewal FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA renewal FROM {APP_ROLE}")
