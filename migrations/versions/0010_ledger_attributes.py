"""Ledger attributes of the plan layers, the core-area projects of task 8, district indicator reports.

Issue 17. A supervision ledger (督导台账) records, for every project, who carries it out
(实施主体), the planned and completed investment (万元) and where the money comes from
(资金来源, including 专项债, which tasks 44–45 steer to urban renewal); old compounds also
carry the renovation class (基础类 / 完善类 / 提升类). The columns are nullable: an import
that lacks them still loads.

``core_area_projects`` holds the 280 mu beside 解放大街, the 3.6 km² core road network and
the central green axis (task 8). ``indicator_reports`` gains ``district_code`` and
``district_quota`` so a district can report its own value against its share of a target
(任务分解); city-wide reports keep ``district_code`` NULL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from alembic import op

from migrations.helpers import create_layer_table, drop_layer_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LEDGER_LAYERS = (
    "vacated_land", "urban_villages", "old_compounds", "planned_roads", "parking_sites", "resettlement_housing",
    "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets",
)
FUNDING = ("fiscal", "special_bond", "higher_grant", "social", "mixed")
LEDGER_COLUMNS = (
    "implementing_unit text CHECK (length(implementing_unit) <= 100)",
    "investment_planned double precision CHECK (investment_planned >= 0)",
    "investment_completed double precision CHECK (investment_completed >= 0)",
    "funding_source text CHECK (funding_source IN ({}))".format(", ".join(f"'{f}'" for f in FUNDING)),
)


def upgrade():
    for table in LEDGER_LAYERS:
        op.execute(f"ALTER TABLE renewal.{table} " + ", ".join(f"ADD COLUMN {c}" for c in LEDGER_COLUMNS))
    op.execute(
        "ALTER TABLE renewal.old_compounds ADD COLUMN renovation_class text "
        "CHECK (renovation_class IN ('basic', 'improvement', 'upgrade'))"
    )
    create_layer_table(
        "core_area_projects", "MultiPolygon",
        columns=[
            "project_type text NOT NULL CHECK (project_type IN ('jiefang_land', 'core_roads', 'green_axis'))",
            *LEDGER_COLUMNS,
        ],
        measure="area",
        statuses=["planned", "started", "relocation", "construction", "completed"],
    )
    op.execute(
        "ALTER TABLE renewal.indicator_reports ADD COLUMN district_code text, "
        "ADD COLUMN district_quota double precision CHECK (district_quota > 0), "
        "ADD CONSTRAINT indicator_reports_district_quota CHECK ((district_code IS NULL) = (district_quota IS NULL))"
    )
    op.execute(
        "CREATE INDEX indicator_reports_district_idx ON renewal.indicator_reports (indicator_id, district_code, "
        "report_date, id) WHERE district_code IS NOT NULL"
    )


def downgrade():
    op.execute("DROP INDEX IF EXISTS renewal.indicator_reports_district_idx")
    op.execute("ALTER TABLE renewal.indicator_reports DISABLE TRIGGER indicator_reports_append_only")
    op.execute("DELETE FROM renewal.indicator_reports WHERE district_code IS NOT NULL")
    op.execute("ALTER TABLE renewal.indicator_reports ENABLE TRIGGER indicator_reports_append_only")
    op.execute(
        "ALTER TABLE renewal.indicator_reports DROP CONSTRAINT indicator_reports_district_quota, "
        "DROP COLUMN district_quota, DROP COLUMN district_code"
    )
    drop_layer_table("core_area_projects")
    op.execute("ALTER TABLE renewal.old_compounds DROP COLUMN renovation_class")
    for table in LEDGER_LAYERS:
        op.execute(
            f"ALTER TABLE renewal.{table} DROP COLUMN implementing_unit, DROP COLUMN investment_planned, "
            "DROP COLUMN investment_completed, DROP COLUMN funding_source"
        )
