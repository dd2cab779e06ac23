"""A change to the city profile notifies ``renewal_city``, so every API process reads it again.

Each API process reads the profile (extent, area CRS, titles, the plan catalog) once and keeps it.
``renewal city create`` or a plain UPDATE of ``renewal.city`` on a database a server is serving was
seen by no running worker until it restarted; now each one's listener drops the profile on the
notification and the next request reads it (``api.city.forget_city``). The profile is one row
changed at set-up, so every statement notifies.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION renewal.notify_city() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('renewal_city', TG_OP);
          RETURN NULL;
        END $$;
        CREATE TRIGGER city_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON renewal.city
          FOR EACH STATEMENT EXECUTE FUNCTION renewal.notify_city();
        """
    )


def downgrade():
    op.execute("DROP TRIGGER city_notify ON renewal.city; DROP FUNCTION renewal.notify_city()")
