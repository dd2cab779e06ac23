"""The API's own login: ``renewal_api``, not a superuser, owning nothing, a member of renewal_app.

The API used to log in as whoever ran ``make db`` (in a default set-up a superuser) and switch to
``renewal_app`` with SET ROLE, which a plain RESET ROLE undoes. From here on the API logs in as
``renewal_api`` (``DATABASE_URL``'s default): a LOGIN role with no attributes that inherits
exactly the grants of ``renewal_app`` (migration 0005) and owns no object, so even RESET ROLE
leaves it unprivileged. Migrations and the owner's bulk loads keep the owner's login
(``RENEWAL_OWNER_DATABASE_URL``). The history/audit bypass guard (0006) now refuses both roles,
by current and by session user.

Creating the role needs CREATEROLE; ``scripts/provision-db.sh`` creates it too, so an owner
without CREATEROLE can migrate once the role exists. Roles are cluster-wide: creation and
membership tolerate a concurrent migration of another database.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LOGIN = "renewal_api"
APP_ROLE = "renewal_app"
GUARD = "renewal.bypass_allowed"


def upgrade():
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LOGIN}') THEN
            BEGIN
              CREATE ROLE {LOGIN} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
          END IF;
          IF NOT pg_has_role('{LOGIN}', '{APP_ROLE}', 'MEMBER') THEN
            BEGIN
              GRANT {APP_ROLE} TO {LOGIN};
            EXCEPTION WHEN OTHERS THEN
              IF NOT pg_has_role('{LOGIN}', '{APP_ROLE}', 'MEMBER') THEN RAISE; END IF;
            END;
          END IF;
          EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {LOGIN}', current_database());
        END
        $$;
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {GUARD}(setting text, value text) RETURNS boolean
        LANGUAGE sql STABLE AS $$
          SELECT coalesce(current_setting(setting, true), '') = value
             AND current_user NOT IN ('{APP_ROLE}', '{LOGIN}') AND session_user <> '{LOGIN}'
        $$;
        """
    )


def downgrade():
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {GUARD}(setting text, value text) RETURNS boolean
        LANGUAGE sql STABLE AS $$
          SELECT coalesce(current_setting(setting, true), '') = value AND current_user <> '{APP_ROLE}'
        $$;
        """
    )
    op.execute(f"DO $$ BEGIN EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM {LOGIN}', "
               f"current_database()); END $$")
    # the role is cluster-wide and may serve other databases: it is left in place
