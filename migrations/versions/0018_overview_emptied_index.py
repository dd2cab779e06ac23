"""A partial index on the overview cells whose count fell to zero, so the trigger's clean-up reads no table.

Every statement on ``land_parcels`` ends its overview trigger (0012, 0017) with ``DELETE FROM
land_parcels_overview WHERE n <= 0``. Without an index that filter reads the whole overview: about
270,000 cells for the million-parcel demo, 11 ms added to each edit of a single parcel. The rows it
looks for are few and short-lived (a cell whose last parcel moved away, removed by the same
statement), so an index holding only them is nearly always empty: the clean-up becomes one probe of
that index (0.05 ms measured, same plan inside the trigger). The trigger itself is unchanged.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE INDEX land_parcels_overview_emptied_idx ON renewal.land_parcels_overview (z) WHERE n <= 0"
    )


def downgrade():
    op.execute("DROP INDEX renewal.land_parcels_overview_emptied_idx")
