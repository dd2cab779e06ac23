"""Every change to users, API keys or sessions notifies ``renewal_credentials``, so every API process forgets its cached credentials.

Each API process (every worker of ``renewal serve``, every instance) caches verified API keys and
sign-in sessions for ``RENEWAL_AUTH_CACHE_TTL_S`` (30 s), because verifying a key (argon2) is slow.
A revocation, a disabled user, a new role or a sign-out made through one worker, another instance
or the ``renewal users`` command was honoured by the other processes until their entries expired.
Statement triggers on the three tables now send one notification per statement that changed rows
(delivered at commit, as NOTIFY is transactional); the processes' listeners clear their caches on it
(``api.auth.CredentialCaches``). New rows (a new user, key or session) invalidate nothing and notify
nothing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = ("users", "api_keys", "sessions")


def upgrade():
    # Only a statement that changed rows notifies: a sign-out with an unknown cookie changes none, and
    # must not let anybody empty every process's caches (each key would then be verified again).
    op.execute(
        """
        CREATE FUNCTION renewal.notify_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('renewal_credentials', TG_TABLE_NAME);
          ELSIF EXISTS (SELECT 1 FROM old_rows) THEN
            PERFORM pg_notify('renewal_credentials', TG_TABLE_NAME);
          END IF;
          RETURN NULL;
        END $$;
        """
    )
    for table in TABLES:
        for event in ("UPDATE", "DELETE"):  # a trigger with a transition table has one event
            op.execute(
                f"CREATE TRIGGER {table}_credentials_{event.lower()} AFTER {event} ON renewal.{table} "
                "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION renewal.notify_credentials()"
            )
        op.execute(
            f"CREATE TRIGGER {table}_credentials_truncate AFTER TRUNCATE ON renewal.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION renewal.notify_credentials()"
        )


def downgrade():
    for table in TABLES:
        for event in ("update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_credentials_{event} ON renewal.{table}")
    op.execute("DROP FUNCTION renewal.notify_credentials()")
