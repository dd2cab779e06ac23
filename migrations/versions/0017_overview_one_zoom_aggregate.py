"""The parcel overview trigger aggregates the parcels once, at zoom 12, and derives zooms 11 and 10 from the cells.

0016 computes each parcel's Web Mercator centroid once; the trigger still made three rows per
parcel (one per zoom) and aggregated them all: three million rows through a hash aggregate for a
million-parcel load. A cell at zoom z - 1 is the cell at zoom z with its column and row halved
(rounded down): the cell size at each zoom is CIRC / 2^(z + 6), a power-of-two fraction of the
same length, so in floating point x / (2s) is exactly (x / s) / 2, and floor(v / 2) =
floor(floor(v) / 2). Counting at zoom 12 and then summing those counts into the zoom 11 and 10
cells (``>> 1``, ``>> 2``) gives exactly 0012's cells and counts from one aggregate over the
parcels and two over the (far fewer) zoom-12 cells.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ZOOMS = (10, 11, 12)
HALF = 20037508.342789244
CIRC = 40075016.685578488


def _points(source: str, sign: str) -> str:
    """(x, y, class, +-1) of every row of ``source``: its centroid in Web Mercator, computed once (0016)."""
    return f"""
        SELECT ST_X(c.p) AS x, ST_Y(c.p) AS y, c.cls, {sign} AS d
        FROM (SELECT ST_Transform(ST_Centroid(geom), 3857) AS p, land_use_code AS cls FROM {source} OFFSET 0) AS c"""


def _apply(parts: list[str]) -> str:
    finest = max(ZOOMS)
    size = f"({CIRC} / 2 ^ ({finest} + 6))"
    coarser = " ".join(
        f"UNION ALL SELECT {z}, cx >> {finest - z}, cy >> {finest - z}, cls, n FROM cells" for z in ZOOMS if z != finest
    )
    return f"""
          INSERT INTO renewal.land_parcels_overview AS o (z, cx, cy, land_use_code, n)
          WITH cells AS (
            SELECT floor((x + {HALF}) / {size})::int AS cx, floor(({HALF} - y) / {size})::int AS cy, cls,
                   sum(d) AS n
            FROM ({" UNION ALL ".join(parts)}) AS pt
            GROUP BY 1, 2, 3
          )
          SELECT z::smallint, cx, cy, cls, sum(n)::bigint
          FROM (SELECT {finest} AS z, cx, cy, cls, n FROM cells {coarser}) AS ch
          GROUP BY z, cx, cy, cls HAVING sum(n)::bigint <> 0
          ON CONFLICT (z, cx, cy, land_use_code) DO UPDATE SET n = o.n + excluded.n;
          DELETE FROM renewal.land_parcels_overview WHERE n <= 0;"""


def _cells_0016(source: str, sign: str) -> str:
    """0016's cells, for the downgrade."""
    return f"""
        SELECT z.z::smallint AS z,
               floor((ST_X(c.p) + {HALF}) / ({CIRC} / 2 ^ (z.z + 6)))::int AS cx,
               floor(({HALF} - ST_Y(c.p)) / ({CIRC} / 2 ^ (z.z + 6)))::int AS cy,
               c.cls, {sign} AS d
        FROM (SELECT ST_Transform(ST_Centroid(geom), 3857) AS p, land_use_code AS cls FROM {source} OFFSET 0) AS c
        CROSS JOIN (VALUES {", ".join(f"({z})" for z in ZOOMS)}) AS z(z)"""


def _apply_0016(parts: list[str]) -> str:
    return f"""
          INSERT INTO renewal.land_parcels_overview AS o (z, cx, cy, land_use_code, n)
          SELECT z, cx, cy, cls, sum(d) FROM ({" UNION ALL ".join(parts)}) AS ch
          GROUP BY z, cx, cy, cls HAVING sum(d) <> 0
          ON CONFLICT (z, cx, cy, land_use_code) DO UPDATE SET n = o.n + excluded.n;
          DELETE FROM renewal.land_parcels_overview WHERE n <= 0;"""


def _function(apply, rows) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION renewal.land_parcels_overview_apply() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = renewal, public AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            {apply([rows("new_rows", "1")])}
          ELSIF TG_OP = 'UPDATE' THEN
            {apply([rows("new_rows", "1"), rows("old_rows", "-1")])}
          ELSIF TG_OP = 'DELETE' THEN
            {apply([rows("old_rows", "-1")])}
          ELSE
            DELETE FROM renewal.land_parcels_overview;
          END IF;
          RETURN NULL;
        END $$;
        """


def upgrade():
    op.execute(_function(_apply, _points))


def downgrade():
    op.execute(_function(_apply_0016, _cells_0016))
