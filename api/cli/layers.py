"""``renewal layers list``: the registry, with live feature counts."""

from __future__ import annotations

import psycopg
import typer
from psycopg import sql
from rich.table import Table

from api.settings import Settings
from layers.registry import get_registry

layers_app = typer.Typer(help="Layer registry.", no_args_is_help=True)


def feature_counts(database_url: str) -> dict[str, int]:
    """Feature count per layer id."""
    registry = get_registry()
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::text, count(*) FROM {}.{}").format(
            sql.Literal(layer.id), sql.Identifier(layer.schema_name), sql.Identifier(layer.table)
        )
        for layer in registry
    )
    with psycopg.connect(database_url) as conn:
        return {name: n for name, n in conn.execute(query).fetchall()}


@layers_app.command("list")
def list_cmd() -> None:
    """Print every layer with its geometry type, lifecycle and count."""
    from api.cli import console

    counts = feature_counts(Settings().owner_url)
    table = Table(title="图层 Layers")
    for col in ("id", "名称", "Title", "Geometry", "Statuses", "Count"):
        table.add_column(col)
    for layer in get_registry():
        statuses = " → ".join(s.label for s in layer.lifecycle.statuses) if layer.lifecycle else "—"
        table.add_row(
            layer.id, layer.title, layer.title_en, layer.geometry_type, statuses, f"{counts.get(layer.id, 0):,}"
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``layers`` to the root CLI."""
    app.add_typer(layers_app, name="layers")
