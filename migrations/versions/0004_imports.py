"""Imports: one row per file import (who, when, file and hash, counts, the validation report).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE renewal.imports (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          layer text NOT NULL,
          mode text NOT NULL CHECK (mode IN ('append', 'upsert', 'replace')),
          status text NOT NULL CHECK (status IN ('applied', 'rejected', 'failed', 'dry_run')),
          dry_run boolean NOT NULL DEFAULT false,
          actor text NOT NULL,
          channel text NOT NULL DEFAULT 'import',
          file_name text NOT NULL,
          file_sha256 text,
          file_size bigint,
          source_format text,
          source_layer text,
          source_crs text,
          features_read integer NOT NULL DEFAULT 0,
          added integer NOT NULL DEFAULT 0,
          updated integer NOT NULL DEFAULT 0,
          unchanged integer NOT NULL DEFAULT 0,
          deleted integer NOT NULL DEFAULT 0,
          rejected integer NOT NULL DEFAULT 0,
          repaired integer NOT NULL DEFAULT 0,
          effective_date date,
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          report jsonb NOT NULL DEFAULT '{}'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX imports_layer_idx ON renewal.imports (layer, started_at DESC)")
    op.execute(
        "COMMENT ON TABLE renewal.imports IS "
        "'Every file import: who, when, file name and SHA-256, mode, counts and the validation report.'"
    )


def downgrade():
    op.execute("DROP TABLE IF EXISTS renewal.imports")
