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


def main() -> None:
    """Entry point: run the CLI, printing domain errors as one clear line and exiting 2."""
    try:
        app()
    except RenewalError as exc:
        err_console.print(f"[bold red]Error:[/] {exc.message}")
        sys.exit(2)
