"""Alembic environment: the URL comes from the toolkit's settings (or ``-x url=...``)."""

import sys
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.settings import Settings  # noqa: E402

config = context.config
# Any libpq connection string or URL works: psycopg connects, SQLAlchemy only wraps it.
url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
if not url:
    url = Settings().owner_url
if url.startswith("postgresql+psycopg://"):
    url = "postgresql://" + url[len("postgresql+psycopg://"):]


def run_migrations_offline():
    context.configure(url="postgresql+psycopg://", literal_binds=True, version_table_schema="public")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    import psycopg

    engine = create_engine("postgresql+psycopg://", poolclass=pool.NullPool, creator=lambda: psycopg.connect(url))
    with engine.connect() as connection:
        context.configure(connection=connection, version_table_schema="public", transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
