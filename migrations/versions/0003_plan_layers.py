"""Plan layers (resettlement housing, utility tunnels, waterlogging points, pipe renewals,
beautiful streets, toll stations) and the reported indicator values of the plan.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op

from migrations.helpers import create_layer_table, drop_layer_table

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

LAYERS = [
    "resettlement_housing", "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets",
    "toll_stations",
]


def upgrade():
    create_layer_table(
        "resettlement_housing", "MultiPolygon", measure="area",
        statuses=["planned", "started", "completed"],
        columns=["units integer NOT NULL CHECK (units >= 0)", "start_year integer", "completion_year integer"],
    )
    create_layer_table(
        "utility_tunnels", "MultiLineString", measure="length",
        statuses=["planned", "under_construction", "completed"],
        columns=[
            "tunnel_type text CHECK (tunnel_type IN ('trunk', 'branch', 'cable'))",
            "cabins integer CHECK (cabins BETWEEN 1 AND 10)",
        ],
    )
    create_layer_table(
        "waterlogging_points", "Point",
        statuses=["identified", "under_works", "remediated"],
        columns=["max_depth_cm double precision CHECK (max_depth_cm >= 0)", "works text"],
    )
    create_layer_table(
        "pipe_renewals", "MultiLineString", measure="length",
        statuses=["planned", "under_construction", "completed"],
        columns=[
            "pipe_type text NOT NULL CHECK (pipe_type IN ('heating', 'water'))",
            "diameter_mm integer CHECK (diameter_mm >= 0)",
            "year integer",
        ],
    )
    create_layer_table(
        "beautiful_streets", "MultiLineString", measure="length",
        statuses=["planned", "under_works", "accepted"],
        columns=["kind text NOT NULL CHECK (kind IN ('block', 'street'))", "year integer"],
    )
    create_layer_table(
        "toll_stations", "Point",
        statuses=["operating", "removed"],
        columns=["expressway text"],
    )
    # Values of the plan's non-spatial indicators (GDP, PM2.5, urbanisation, ...) as officers
    # report them. Append-only: a correction is a new row; the value as of a date is the row
    # with the latest report_date <= that date (ties: the latest recorded). The indicator ids
    # and targets live in the plan catalog (layers/plan/catalog.yaml).
    op.execute(
        """
        CREATE TABLE renewal.indicator_reports (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          indicator_id text NOT NULL CHECK (indicator_id ~ '^[a-z][a-z0-9_]*$'),
          report_date date NOT NULL,
          value double precision NOT NULL CHECK (value = value AND value NOT IN ('Infinity', '-Infinity')),
          source_doc text,
          note text,
          reported_by text NOT NULL DEFAULT current_user,
          recorded_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX indicator_reports_idx ON renewal.indicator_reports (indicator_id, report_date, id)"
    )
    op.execute(
        """
        CREATE FUNCTION renewal.indicator_reports_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'indicator reports are append-only: record a correction as a new report';
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER indicator_reports_append_only BEFORE UPDATE OR DELETE ON renewal.indicator_reports "
        "FOR EACH ROW EXECUTE FUNCTION renewal.indicator_reports_append_only()"
    )


def downgrade():
    op.execute("DROP TABLE IF EXISTS renewal.indicator_reports")
    op.execute("DROP FUNCTION IF EXISTS renewal.indicator_reports_append_only()")
    for table in reversed(LAYERS):
        drop_layer_table(table)
