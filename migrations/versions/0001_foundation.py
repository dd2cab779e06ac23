"""Foundation: schema renewal, status history, reference and renewal layers.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from alembic import op

from migrations.helpers import create_layer_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LAYERS = [
    "districts", "ring_zones", "ring_roads", "hutuo_river", "hutuo_belt_zones", "land_parcels",
    "urban_villages", "old_compounds", "vacated_land", "planned_roads", "parking_sites",
]


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE SCHEMA IF NOT EXISTS renewal")
    op.execute(
        """
        CREATE FUNCTION renewal.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.updated_at := now();
          RETURN NEW;
        END $$;
        """
    )
    op.execute(
        """
        CREATE TABLE renewal.status_history (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          layer text NOT NULL,
          feature_id bigint NOT NULL,
          code text NOT NULL,
          from_status text,
          to_status text NOT NULL,
          effective_date date NOT NULL,
          source_doc text,
          note text,
          recorded_by text NOT NULL DEFAULT current_user,
          recorded_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX status_history_feature_idx ON renewal.status_history (layer, feature_id, effective_date)")
    op.execute("CREATE INDEX status_history_status_idx ON renewal.status_history (layer, to_status, effective_date)")
    op.execute(
        """
        COMMENT ON TABLE renewal.status_history IS
        'Every status change of every feature with its effective date (progress as of any date).'
        """
    )
    # Every write path (API, importer, CLI) goes through this trigger, so history cannot be
    # forgotten. Callers pass the effective date, source document, note and actor as
    # transaction-local settings (SET LOCAL renewal.effective_date = ...). Bulk loaders
    # that write their own history set renewal.history_mode = 'manual'.
    op.execute(
        """
        CREATE FUNCTION renewal.track_status() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF coalesce(current_setting('renewal.history_mode', true), '') = 'manual' THEN
            RETURN NULL;
          END IF;
          IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
            INSERT INTO renewal.status_history
              (layer, feature_id, code, from_status, to_status, effective_date, source_doc, note, recorded_by)
            VALUES (
              TG_TABLE_NAME, NEW.id, NEW.code,
              CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
              NEW.status,
              coalesce(nullif(current_setting('renewal.effective_date', true), '')::date, current_date),
              nullif(current_setting('renewal.source_doc', true), ''),
              nullif(current_setting('renewal.note', true), ''),
              coalesce(nullif(current_setting('renewal.actor', true), ''), current_user)
            );
          END IF;
          RETURN NULL;
        END $$;
        """
    )

    # Cache validators: a per-layer counter bumped by a statement-level trigger on every
    # write, so tile/feature ETags change the moment the data changes.
    op.execute(
        """
        CREATE TABLE renewal.layer_version (
          layer text PRIMARY KEY,
          version bigint NOT NULL DEFAULT 0,
          changed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION renewal.bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO renewal.layer_version AS v (layer, version, changed_at)
          VALUES (TG_TABLE_NAME, 1, now())
          ON CONFLICT (layer) DO UPDATE SET version = v.version + 1, changed_at = now();
          RETURN NULL;
        END $$;
        """
    )
    # Audit trail (全过程留痕): every row written to a layer table, by any path, appends a
    # record. Who/why come from transaction-local settings (renewal.actor, renewal.request_id,
    # renewal.source_doc, renewal.channel). Only the demo loader turns it off
    # (renewal.audit_mode = 'off') because synthetic data is not a change anyone made.
    op.execute(
        """
        CREATE TABLE renewal.audit_log (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          actor text NOT NULL,
          channel text,
          action text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
          layer text NOT NULL,
          feature_id bigint,
          code text,
          before jsonb,
          after jsonb,
          request_id text,
          source_doc text,
          note text
        )
        """
    )
    op.execute("CREATE INDEX audit_log_feature_idx ON renewal.audit_log (layer, feature_id, occurred_at)")
    op.execute("CREATE INDEX audit_log_actor_idx ON renewal.audit_log (actor, occurred_at)")
    op.execute(
        """
        CREATE FUNCTION renewal.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          b jsonb;
          a jsonb;
          r record;
        BEGIN
          IF coalesce(current_setting('renewal.audit_mode', true), '') = 'off' THEN
            RETURN NULL;
          END IF;
          IF TG_OP IN ('UPDATE', 'DELETE') THEN
            b := (to_jsonb(OLD) - 'geom') || jsonb_build_object('geom', ST_AsGeoJSON(OLD.geom)::jsonb);
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN
            a := (to_jsonb(NEW) - 'geom') || jsonb_build_object('geom', ST_AsGeoJSON(NEW.geom)::jsonb);
          END IF;
          IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
          INSERT INTO renewal.audit_log (actor, channel, action, layer, feature_id, code, before, after,
                                         request_id, source_doc, note)
          VALUES (
            coalesce(nullif(current_setting('renewal.actor', true), ''), current_user),
            nullif(current_setting('renewal.channel', true), ''),
            TG_OP, TG_TABLE_NAME, r.id, r.code, b, a,
            nullif(current_setting('renewal.request_id', true), ''),
            nullif(current_setting('renewal.source_doc', true), ''),
            nullif(current_setting('renewal.note', true), '')
          );
          RETURN NULL;
        END $$;
        """
    )

    create_layer_table("districts", "MultiPolygon", measure="area")
    create_layer_table(
        "ring_zones", "MultiPolygon", measure="area",
        columns=["zone text NOT NULL CHECK (zone IN ('inside_2nd', 'between_2nd_3rd', 'outside_3rd'))"],
    )
    create_layer_table("ring_roads", "MultiLineString", measure="length", columns=["ring integer NOT NULL"])
    create_layer_table("hutuo_river", "MultiLineString", measure="length")
    create_layer_table(
        "hutuo_belt_zones", "MultiPolygon", measure="area",
        columns=[
            "zone_type text NOT NULL CHECK (zone_type IN ('ecological', 'emerging_industry', 'digital_economy', "
            "'modern_services', 'urban_agriculture', 'flood_channel', 'water_source'))"
        ],
    )
    create_layer_table(
        "land_parcels", "MultiPolygon", measure="area",
        statuses=["existing", "reserved", "supplied", "built"],
        columns=[
            "land_use_code text NOT NULL",
            "land_use_label text",
            "far double precision CHECK (far >= 0 AND far <= 20)",
            "building_density double precision CHECK (building_density >= 0 AND building_density <= 100)",
            "owner_type text CHECK (owner_type IN ('state', 'collective'))",
            "supply_year integer",
        ],
    )
    create_layer_table(
        "urban_villages", "MultiPolygon", measure="area",
        statuses=["planned", "started", "acquisition", "demolition", "construction", "completed"],
        columns=["households integer CHECK (households >= 0)", "start_year integer", "target_year integer"],
    )
    create_layer_table(
        "old_compounds", "MultiPolygon", measure="area",
        statuses=["pending", "started", "completed"],
        columns=[
            "built_year integer",
            "buildings integer CHECK (buildings >= 0)",
            "households integer CHECK (households >= 0)",
            "floor_area_m2 double precision CHECK (floor_area_m2 >= 0)",
            "renovation_year integer",
        ],
    )
    create_layer_table(
        "vacated_land", "MultiPolygon", measure="area",
        statuses=["listed", "reported", "acquired", "handed_over", "under_development", "built"],
        columns=["former_owner text NOT NULL", "planned_use text"],
    )
    create_layer_table(
        "planned_roads", "MultiLineString", measure="length",
        statuses=["planned", "started", "opened"],
        columns=[
            "batch text CHECK (batch IN ('2021_open', '2021_start', '2022_start'))",
            "road_class text CHECK (road_class IN ('arterial', 'secondary', 'branch'))",
            "width_m double precision CHECK (width_m >= 0)",
        ],
    )
    create_layer_table(
        "parking_sites", "Point",
        statuses=["planned", "under_construction", "built"],
        columns=[
            "spaces integer NOT NULL CHECK (spaces >= 0)",
            "year integer",
            "site_type text CHECK (site_type IN ('surface', 'underground', 'multistorey'))",
        ],
    )
    op.execute("CREATE INDEX land_parcels_land_use_idx ON renewal.land_parcels (land_use_code)")


def downgrade():
    for table in reversed(LAYERS):
        op.execute(f"DROP TABLE IF EXISTS renewal.{table}")
    op.execute("DROP TABLE IF EXISTS renewal.status_history")
    op.execute("DROP TABLE IF EXISTS renewal.audit_log")
    op.execute("DROP TABLE IF EXISTS renewal.layer_version")
    op.execute("DROP FUNCTION IF EXISTS renewal.audit_row()")
    op.execute("DROP FUNCTION IF EXISTS renewal.bump_layer_version()")
    op.execute("DROP FUNCTION IF EXISTS renewal.track_status()")
    op.execute("DROP FUNCTION IF EXISTS renewal.touch_updated_at()")
    op.execute("DROP SCHEMA IF EXISTS renewal")
