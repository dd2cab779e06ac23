"""A generalised overview of land parcels for zooms 10-12, kept fresh by triggers.

Below zoom 13 a parcel tile would hold hundreds of thousands of parcels. Instead the map shows
a grid of cells (64 per tile side at zooms 10, 11 and 12, i.e. 611, 306 and 153 m squares in
Web Mercator) counting parcels per land-use class by the cell holding each parcel's centroid;
``layers/overview.py`` draws each cell in its dominant class. The counts are maintained
incrementally by statement-level triggers with transition tables (insert, update, delete;
truncate empties them), in the writing transaction, so the overview is never stale and
rides on the parcels' layer version (tile ETags, caches). Backfilled here from existing rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ZOOMS = (10, 11, 12)
HALF = 20037508.342789244
CIRC = 40075016.685578488


def _cells(source, sign):
    """(z, cx, cy, class, +-1) of every row of ``source`` at each overview zoom."""
    return f"""
        SELECT z.z::smallint AS z,
               floor((ST_X(c.p) + {HALF}) / ({CIRC} / 2 ^ (z.z + 6)))::int AS cx,
               floor(({HALF} - ST_Y(c.p)) / ({CIRC} / 2 ^ (z.z + 6)))::int AS cy,
               c.cls, {sign} AS d
        FROM (SELECT ST_Transform(ST_Centroid(geom), 3857) AS p, land_use_code AS cls FROM {source}) AS c
        CROSS JOIN (VALUES {", ".join(f"({z})" for z in ZOOMS)}) AS z(z)"""


def _apply(parts):
    return f"""
          INSERT INTO renewal.land_parcels_overview AS o (z, cx, cy, land_use_code, n)
          SELECT z, cx, cy, cls, sum(d) FROM ({" UNION ALL ".join(parts)}) AS ch
          GROUP BY z, cx, cy, cls HAVING sum(d) <> 0
          ON CONFLICT (z, cx, cy, land_use_code) DO UPDATE SET n = o.n + excluded.n;
          DELETE FROM renewal.land_parcels_overview WHERE n <= 0;"""


def upgrade():
    op.execute(
        """
        CREATE TABLE renewal.land_parcels_overview (
          z smallint NOT NULL,
          cx integer NOT NULL,
          cy integer NOT NULL,
          land_use_code text NOT NULL,
          n integer NOT NULL,
          PRIMARY KEY (z, cx, cy, land_use_code)
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION renewal.land_parcels_overview_apply() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = renewal, public AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            {_apply([_cells("new_rows", 1)])}
          ELSIF TG_OP = 'UPDATE' THEN
            {_apply([_cells("new_rows", 1), _cells("old_rows", -1)])}
          ELSIF TG_OP = 'DELETE' THEN
            {_apply([_cells("old_rows", -1)])}
          ELSE
            DELETE FROM renewal.land_parcels_overview;
          END IF;
          RETURN NULL;
        END $$;
        """
    )
    t = "renewal.land_parcels"
    op.execute(f"CREATE TRIGGER land_parcels_overview_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION renewal.land_parcels_overview_apply()")
    op.execute(f"CREATE TRIGGER land_parcels_overview_upd AFTER UPDATE ON {t} "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION renewal.land_parcels_overview_apply()")
    op.execute(f"CREATE TRIGGER land_parcels_overview_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION renewal.land_parcels_overview_apply()")
    op.execute(f"CREATE TRIGGER land_parcels_overview_trunc AFTER TRUNCATE ON {t} "
               "FOR EACH STATEMENT EXECUTE FUNCTION renewal.land_parcels_overview_apply()")
    op.execute(
        f"""
        INSERT INTO renewal.land_parcels_overview (z, cx, cy, land_use_code, n)
        SELECT z, cx, cy, cls, count(*) FROM ({_cells(t, 1)}) AS c GROUP BY z, cx, cy, cls
        """
    )
    op.execute("GRANT SELECT ON renewal.land_parcels_overview TO PUBLIC")


def downgrade():
    for suffix in ("ins", "upd", "del", "trunc"):
        op.execute(f"DROP TRIGGER IF EXISTS land_parcels_overview_{suffix} ON renewal.land_parcels")
    op.execute("DROP FUNCTION IF EXISTS renewal.land_parcels_overview_apply()")
    op.execute("DROP TABLE IF EXISTS renewal.land_parcels_overview")
