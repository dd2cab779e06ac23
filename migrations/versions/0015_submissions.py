"""Submissions (填报) awaiting review (审核), their evidence (attachments) and their trail; the reviewer role.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01

* ``renewal.users.role`` also allows ``reviewer``; users may have a sign-in password
  (argon2id hash) and ``renewal.sessions`` holds viewer sign-ins (hash of the cookie only).
* ``renewal.submissions``: a proposed change to a feature (``feature_id``) or a new feature
  (``feature_id`` NULL): the GeoJSON Feature members that change (``proposal``), the change
  metadata (effective date, document, note), the feature as it was when submitted (``before``,
  ``base_etag``: approval applies only if the feature has not changed since), and the review
  state ``pending`` -> ``approved`` | ``returned`` (-> ``pending`` again when resubmitted).
  A pending submission writes nothing to the layer, so progress, maps and ledgers count
  approved changes only.
* ``renewal.submission_events``: who did what to a submission, when and why (submit,
  resubmit, attach, approve, return), append-only like ``renewal.audit_log``. The feature
  change itself is audited by the layer triggers when the approval applies it.
* ``renewal.attachments``: photos and PDFs addressed by SHA-256; the bytes live in
  ``RENEWAL_STORAGE_DIR`` (never in rows, never at a path taken from a file name), with the
  EXIF time and position of photos and the hash of their thumbnail.
  ``renewal.submission_attachments`` links them to submissions (and so to the feature).
"""
from alembic import op

from migrations.helpers import append_only_trail

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APP_ROLE = "renewal_app"


def upgrade():
    op.execute("ALTER TABLE renewal.users DROP CONSTRAINT IF EXISTS users_role_check")
    op.execute(
        "ALTER TABLE renewal.users ADD CONSTRAINT users_role_check "
        "CHECK (role IN ('viewer', 'editor', 'reviewer', 'admin'))"
    )
    op.execute("ALTER TABLE renewal.users ADD COLUMN password_hash text")
    op.execute("COMMENT ON COLUMN renewal.users.password_hash IS 'argon2id hash of the viewer sign-in password'")
    op.execute(
        """
        CREATE TABLE renewal.sessions (
          id_hash text PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES renewal.users (id),
          csrf text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz
        )
        """
    )
    op.execute("COMMENT ON TABLE renewal.sessions IS 'viewer sign-ins; only a SHA-256 of the cookie value is stored'")
    op.execute(
        """
        CREATE TABLE renewal.submissions (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          layer text NOT NULL,
          feature_id bigint,
          district_code text,
          proposal jsonb NOT NULL,
          change jsonb NOT NULL DEFAULT '{}'::jsonb,
          before jsonb,
          base_etag text,
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'returned', 'approved')),
          revision integer NOT NULL DEFAULT 1,
          submitted_by text NOT NULL,
          submitted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          reviewed_by text,
          reviewed_at timestamptz,
          comment text,
          result_feature_id bigint,
          updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX submissions_status_idx ON renewal.submissions (status, district_code, layer)")
    op.execute("CREATE INDEX submissions_feature_idx ON renewal.submissions (layer, feature_id)")
    op.execute(
        """
        CREATE TABLE renewal.submission_events (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          submission_id bigint NOT NULL REFERENCES renewal.submissions (id),
          occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          actor text NOT NULL,
          action text NOT NULL CHECK (action IN ('submit', 'resubmit', 'attach', 'approve', 'return')),
          comment text,
          detail jsonb,
          request_id text
        )
        """
    )
    op.execute("CREATE INDEX submission_events_idx ON renewal.submission_events (submission_id, occurred_at)")
    append_only_trail("submission_events", "review trail")
    op.execute(
        """
        CREATE TABLE renewal.attachments (
          sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
          media_type text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'image/heic', 'application/pdf')),
          size_bytes bigint NOT NULL CHECK (size_bytes > 0),
          file_name text,
          width integer,
          height integer,
          taken_at timestamp,
          gps geometry(Point, 4490),
          thumb_sha256 text CHECK (thumb_sha256 ~ '^[0-9a-f]{64}$'),
          uploaded_by text NOT NULL,
          uploaded_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("COMMENT ON COLUMN renewal.attachments.file_name IS 'as sent by the client; shown, never used as a path'")
    op.execute("COMMENT ON COLUMN renewal.attachments.taken_at IS 'EXIF DateTimeOriginal (camera local time)'")
    op.execute(
        """
        CREATE TABLE renewal.submission_attachments (
          submission_id bigint NOT NULL REFERENCES renewal.submissions (id),
          sha256 text NOT NULL REFERENCES renewal.attachments (sha256),
          added_by text NOT NULL,
          added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          PRIMARY KEY (submission_id, sha256)
        )
        """
    )
    op.execute("CREATE INDEX submission_attachments_sha_idx ON renewal.submission_attachments (sha256)")
    for table in ("submissions", "attachments", "submission_attachments", "sessions"):
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON renewal.{table} TO {APP_ROLE}")
    op.execute(f"REVOKE ALL ON renewal.submission_events FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON renewal.submission_events TO {APP_ROLE}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA renewal TO {APP_ROLE}")


def downgrade():
    op.execute("DROP TABLE IF EXISTS renewal.submission_attachments")
    op.execute("DROP TABLE IF EXISTS renewal.attachments")
    op.execute("DROP TABLE IF EXISTS renewal.submission_events")
    op.execute("DROP FUNCTION IF EXISTS renewal.submission_events_append_only()")
    op.execute("DROP TABLE IF EXISTS renewal.submissions")
    op.execute("DROP TABLE IF EXISTS renewal.sessions")
    op.execute("ALTER TABLE renewal.users DROP COLUMN IF EXISTS password_hash")
    op.execute("UPDATE renewal.users SET role = 'viewer' WHERE role = 'reviewer'")
    op.execute("ALTER TABLE renewal.users DROP CONSTRAINT IF EXISTS users_role_check")
    op.execute(
        "ALTER TABLE renewal.users ADD CONSTRAINT users_role_check CHECK (role IN ('viewer', 'editor', 'admin'))"
    )
