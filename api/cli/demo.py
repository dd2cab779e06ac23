"""``renewal demo load``: the synthetic demo city."""

from __future__ import annotations

import psycopg
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from api.settings import Settings

demo_app = typer.Typer(help="Synthetic demo city (not official data).", no_args_is_help=True)


def database_has_data(database_url: str) -> bool:
    """Whether the demo (or any data) is already loaded: districts exist."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM renewal.districts)").fetchone()
    return bool(row and row[0])


@demo_app.command("load")
def load_cmd(
    scale: int = typer.Option(1, min=1, max=100, help="Multiply the parcel layer (40 ≈ 1 million parcels)"),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if the database already has data"),
) -> None:
    """(Re)load every demo layer, deterministically."""
    from api.cli import console
    from layers.demo import load_demo

    url = Settings().owner_url
    if if_empty and database_has_data(url):
        console.print("[green]Demo data already present; keeping it.[/] (renewal demo load to reload)")
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        counts = load_demo(url, scale=scale, progress=report)
    for layer_id, n in counts.items():
        console.print(f"  {layer_id:<20} {n:>10,}")
    console.print("[bold]Synthetic demo data loaded[/] (演示数据，非官方数据).")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root CLI."""
    app.add_typer(demo_app, name="demo")
