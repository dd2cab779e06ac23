"""``renewal db upgrade|downgrade|status``: alembic migrations with the toolkit's settings."""

from __future__ import annotations

from pathlib import Path

import typer
from alembic import command
from alembic.config import Config

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
"""The checkout, or site-packages when installed: ``migrations`` is shipped as a package beside ``api``."""


def alembic_config(database_url: str | None = None) -> Config:
    """An alembic Config pointing at ``migrations/`` and the given (or configured) database.

    ``alembic.ini`` (logging, for the ``alembic`` command) exists only in a checkout; an
    installed package migrates without it.
    """
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini) if ini.is_file() else None)
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = database_url or Settings().owner_url
    return cfg


def upgrade(database_url: str | None = None, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (all heads by default)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_cmd(revision: str = typer.Argument("heads", help="Target revision")) -> None:
    """Apply migrations (idempotent)."""
    upgrade(revision=revision)


@db_app.command("downgrade")
def downgrade_cmd(revision: str = typer.Argument(..., help="Target revision, e.g. base or -1")) -> None:
    """Revert migrations."""
    downgrade(revision=revision)


@db_app.command("status")
def status_cmd() -> None:
    """Show the current revision and the heads."""
    cfg = alembic_config()
    command.current(cfg, verbose=False)
    command.heads(cfg)


def register(app: typer.Typer) -> None:
    """Add ``db`` to the root CLI."""
    app.add_typer(db_app, name="db")
