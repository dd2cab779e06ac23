"""City profile: one database holds one city, and this row says which.

``renewal.city`` holds the profile read by :mod:`layers.city` (name, adcode, extent,
area/length CRS, map centre and zoom, viewer title, plan catalog, demo generator). It is
seeded with Shijiazhuang, the city every database migrated so far holds, so nothing
changes for it; ``renewal city create`` rewrites the row (and rebuilds the generated
area/length columns in the new city's Gauss-Krüger zone) for another city.

The API's role may read the profile but not change it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE renewal.city (
          one boolean PRIMARY KEY DEFAULT true CHECK (one),
          name text NOT NULL CHECK (length(name) > 0),
          name_en text NOT NULL CHECK (length(name_en) > 0),
          adcode text NOT NULL CHECK (adcode ~ '^[0-9]{6}$'),
          extent double precision[] NOT NULL CHECK (cardinality(extent) = 4
            AND extent[1] < extent[3] AND extent[2] < extent[4]),
          area_srid integer NOT NULL,
          centre double precision[] NOT NULL CHECK (cardinality(centre) = 2),
          zoom double precision NOT NULL CHECK (zoom BETWEEN 0 AND 22),
          title text NOT NULL,
          title_en text NOT NULL,
          catalog text CHECK (catalog IN ('package', 'stored')),
          catalog_yaml text,
          demo text,
          CHECK ((catalog = 'stored') = (catalog_yaml IS NOT NULL))
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE renewal.city IS 'The city this database holds (one row): read by layers/city.py.'"
    )
    # The default profile: the same values as layers.city.SHIJIAZHUANG.
    op.execute(
        """
        INSERT INTO renewal.city (name, name_en, adcode, extent, area_srid, centre, zoom, title, title_en,
                                  catalog, demo)
        VALUES ('石家庄', 'Shijiazhuang', '130100', '{113.4, 37.4, 115.6, 38.8}', 4547, '{114.50, 38.04}', 11,
                '石家庄城市更新一张图', 'Shijiazhuang urban renewal map', 'package', 'shijiazhuang')
        """
    )
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'renewal_app') THEN
            REVOKE ALL ON renewal.city FROM renewal_app;
            GRANT SELECT ON renewal.city TO renewal_app;
          END IF;
        END $$;
        """
    )


def downgrade():
    op.execute("DROP TABLE IF EXISTS renewal.city")
