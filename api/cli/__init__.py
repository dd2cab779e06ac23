"""The ``renewal`` command line (typer + rich).

Each module in this package exposes ``register(app)`` and adds its commands or
sub-apps, so a new command family is a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from gis.errors import RenewalError

app = typer.Typer(
    name="renewal",
    help="城市更新工具 Urban-renewal toolkit (one database per city: `renewal city show`).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

@app.callback()
def _city(ctx: typer.Context) -> None:
    """Run every command as the city its database holds (its plan catalog, names, extent)."""
    from api.settings import Settings
    from layers import city

    try:
        profile = city.for_conninfo(Settings().owner_url, connect_timeout=3)
    except RenewalError:
        return  # commands that need the database say so themselves
    token = city.use(profile)
    ctx.call_on_close(lambda: city.release(token))


for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.startswith("_"):
        continue
    _m = importlib.import_module(f"{__name__}.{_mod.name}")
    if hasattr(_m, "register"):
        _m.register(app)


def database_problem(exc: BaseException) -> str | None:
    """One line saying what is wrong with the database and what to run, or None if it is not that.

    Covers a server that cannot be reached, a database that does not exist, one that has not been
    migrated, and one without PostGIS (SQLAlchemy/alembic errors are unwrapped to psycopg's).
    """
    import psycopg

    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.UndefinedFunction | psycopg.errors.UndefinedObject) and (
            "geometry" in text or "postgis" in text.lower() or "st_" in text.lower()):
        return ("PostGIS is not installed in this database: run `make db` (or, as a superuser, "
                "CREATE EXTENSION postgis), then `renewal db upgrade`.")
    errs = psycopg.errors
    if isinstance(exc, errs.UndefinedTable | errs.InvalidSchemaName | errs.UndefinedColumn):
        return f"The database has not been migrated ({text}): run `renewal db upgrade` (or `make db`)."
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return (f"The database login may not do this ({text}): run the command as the data owner "
                "(RENEWAL_OWNER_DATABASE_URL).")
    if isinstance(exc, psycopg.OperationalError):
        if "does not exist" in text and "database" in text:
            return f"{text}: create it with `make db` (or createdb, then `renewal db upgrade`), or fix DATABASE_URL."
        if "role" in text and "does not exist" in text:
            return f"{text}: run `make db` (scripts/provision-db.sh creates the roles), or fix DATABASE_URL."
        return (f"Cannot reach the database ({text}). Start PostgreSQL with `make db`, or set DATABASE_URL / "
                "RENEWAL_OWNER_DATABASE_URL to a reachable server.")
    return None


def main() -> None:
    """Entry point: run the CLI, printing domain and database errors as one clear line and exiting 2."""
    try:
        app()
    except RenewalError as exc:
        cause = exc.__cause__ or exc.__context__
        line = database_problem(cause) if cause is not None else None
        err_console.print(f"[bold red]Error:[/] {line or exc.message}", soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - database problems become one line; anything else re-raised
        line = database_problem(exc)
        if line is None:
            raise
        err_console.print(f"[bold red]Error:[/] {line}", soft_wrap=True)
        sys.exit(2)
