"""City profile: areas and lengths planar in the city's zone, or geodesic on the spheroid.

A city too wide for one 3-degree Gauss-Krüger zone (Harbin, Chongqing: up to 0.16 % off at
its edges, bench/bench_area.py) measures ``area_mu``/``length_m`` on the CGCS2000 spheroid
instead (``renewal city create`` decides). Every existing database keeps ``zone``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "ALTER TABLE renewal.city ADD COLUMN measure text NOT NULL DEFAULT 'zone' "
        "CHECK (measure IN ('zone', 'geodesic'))"
    )
    op.execute(
        "COMMENT ON COLUMN renewal.city.measure IS "
        "'zone: area_mu/length_m planar in area_srid; geodesic: on the spheroid (layers/city.py)'"
    )


def downgrade():
    op.execute("ALTER TABLE renewal.city DROP COLUMN measure")
