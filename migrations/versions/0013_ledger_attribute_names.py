"""Ledger attribute columns renamed so they stay distinct in a Shapefile's 10-character field names.

Migration 0010 named them ``investment_planned``/``investment_completed`` and
``renovation_class``; a Shapefile export cuts both investment columns to ``investment``
(and the class to ``renovation``, like ``renovation_year``), so a re-import could not tell
them apart. ``invest_planned``/``invest_completed``/``reno_class`` differ in their first
ten characters.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LEDGER_LAYERS = (
    "vacated_land", "urban_villages", "old_compounds", "planned_roads", "parking_sites", "resettlement_housing",
    "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets", "core_area_projects",
)
RENAMES = (("investment_planned", "invest_planned"), ("investment_completed", "invest_completed"))


def upgrade():
    for table in LEDGER_LAYERS:
        for old, new in RENAMES:
            op.execute(f"ALTER TABLE renewal.{table} RENAME COLUMN {old} TO {new}")
    op.execute("ALTER TABLE renewal.old_compounds RENAME COLUMN renovation_class TO reno_class")


def downgrade():
    op.execute("ALTER TABLE renewal.old_compounds RENAME COLUMN reno_class TO renovation_class")
    for table in LEDGER_LAYERS:
        for old, new in RENAMES:
            op.execute(f"ALTER TABLE renewal.{table} RENAME COLUMN {new} TO {old}")
