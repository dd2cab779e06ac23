"""City profile: areas and lengths planar in the city's zone, or geodesic on the spheroid.

A city too wide for one 3-degree Gauss-Krüger zone (Harbin, Chongqing: up to 0.16 % off at
its edges, bench/bench_area.py) measures ``area_mu``/``length_m`` on the CGCS2000 spheroid
instead (``renewal city create`` decides). Every existing database keeps ``zone``.

Shijiazhuang's seeded zoom becomes 10.5, where its viewer has always opened (tiles and maps
round it up to 11, as before).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from alembic import op

revision = "0011"
down_revision = "0010"
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
    op.execute("UPDATE renewal.city SET zoom = 10.5 WHERE adcode = '130100' AND zoom = 11")


def downgrade():
    op.execute("UPDATE renewal.city SET zoom = 11 WHERE adcode = '130100' AND zoom = 10.5")
    op.execute("ALTER TABLE renewal.city DROP COLUMN measure")
