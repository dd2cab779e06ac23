"""Every layer-version bump is announced with NOTIFY, so API processes cache versions in memory.

The statement-level trigger that bumps ``renewal.layer_version`` now also sends
``NOTIFY renewal_layer_version, '<table>:<version>'``. PostgreSQL delivers it at commit, to
every listening session on the primary: each API worker (``api/versions.py``) keeps the
versions in memory and needs no version lookup per tile or per collection document, and a
write through any worker or instance reaches every other one's caches at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE OR REPLACE FUNCTION renewal.bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          v bigint;
        BEGIN
          INSERT INTO renewal.layer_version AS lv (layer, version, changed_at)
          VALUES (TG_TABLE_NAME, 1, now())
          ON CONFLICT (layer) DO UPDATE SET version = lv.version + 1, changed_at = now()
          RETURNING version INTO v;
          PERFORM pg_notify('renewal_layer_version', TG_TABLE_NAME || ':' || v);
          RETURN NULL;
        END $$;
        """
    )


def downgrade():
    op.execute(
        """
        CREATE OR REPLACE FUNCTION renewal.bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO renewal.layer_version AS v (layer, version, changed_at)
          VALUES (TG_TABLE_NAME, 1, now())
          ON CONFLICT (layer) DO UPDATE SET version = v.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        """
    )
