"""``renewal import`` and ``renewal export``: GIS files in and out of the layers.

Exit codes: 0 applied (or a clean dry run), 1 rejected (the report lists every problem; nothing
was written), 2 a file or option that cannot be used at all (printed as one clear line).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.settings import Settings


def _print_report(report: Any, as_json: bool) -> None:
    from api.cli import console

    if as_json:
        console.print_json(json.dumps(report.as_dict(), ensure_ascii=False, default=str))
        return
    c = report.counts
    colour = {"applied": "green", "dry_run": "cyan", "rejected": "red"}.get(report.status, "red")
    console.print(
        f"[bold {colour}]{report.status}[/] import #{report.import_id or '-'} of '{report.file_name}' "
        f"into {report.layer} ({report.mode}, {report.source_format}, {report.source_crs})"
    )
    console.print(
        f"  read {c['read']:,} · added {c['added']:,} · updated {c['updated']:,} · unchanged "
        f"{c['unchanged']:,} · deleted {c['deleted']:,} · rejected {c['rejected']:,} · repaired "
        f"{c['repaired']:,}"
    )
    if report.mapping:
        console.print("  columns: " + ", ".join(f"{src} → {dst}" for dst, src in report.mapping.items()))
    if report.unmapped_columns:
        console.print("  [yellow]not imported (no matching field):[/] " + ", ".join(report.unmapped_columns))
    for note in report.notes:
        console.print(f"  [dim]{note}[/]")
    for field, values in report.unknown_values.items():
        shown = ", ".join(f"{v} ({n})" for v, n in list(values.items())[:20])
        console.print(f"  [red]unknown {field} values:[/] {shown}")
    if report.errors:
        table = Table("row", "code", "field", "problem", title=f"Problems ({sum(report.error_counts.values())})")
        for e in report.errors[:20]:
            table.add_row(
                str(e.get("row") or ""), str(e.get("code") or ""), str(e.get("field") or ""), str(e["message"])
            )
        console.print(table)
        if len(report.errors) > 20:
            console.print(f"  ... {len(report.errors) - 20} more listed with --json")
    for w in report.warnings[:20]:
        console.print(f"  [yellow]row {w['row']}:[/] {w['message']}")
    if report.message:
        console.print(f"  {report.message}")


def import_cmd(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. old_compounds (renewal layers list)")],
    file: Annotated[Path, typer.Argument(help="Shapefile (.shp/.zip), .gpkg, .geojson/.json, .kml/.kmz, .csv, .xlsx")],
    crs: Annotated[
        str | None, typer.Option("--crs", help="CRS when the file has none: EPSG:4547, EPSG:4490, gcj02...")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Attribute encoding (GBK, UTF-8); detected if omitted")
    ] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML: columns/values/defaults")] = None,
    mode: Annotated[str, typer.Option("--mode", help="append | upsert | replace")] = "append",
    on_invalid: Annotated[str, typer.Option("--on-invalid", help="repair (ST_MakeValid) | reject")] = "repair",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and count; write nothing")] = False,
    layer_name: Annotated[
        str | None, typer.Option("--layer-name", help="GeoPackage layer / KML folder / sheet")
    ] = None,
    drop_z: Annotated[
        bool, typer.Option("--drop-z", help="Drop heights of 3-D files instead of rejecting them")
    ] = False,
    effective_date: Annotated[
        str | None, typer.Option("--effective-date", help="Date of status changes (YYYY-MM-DD)")
    ] = None,
    source_doc: Annotated[str | None, typer.Option("--source-doc", help="Document behind the changes (文号)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """Import a GIS file or ledger into a layer (validated; all or nothing)."""
    from api.cli import console
    from gis.errors import InvalidInputError
    from layers.importer import ImportOptions, Mode, OnInvalid, run_import

    try:
        eff = dt.date.fromisoformat(effective_date) if effective_date else None
    except ValueError:
        raise InvalidInputError(f"--effective-date '{effective_date}' is not a date (YYYY-MM-DD).") from None
    opts = ImportOptions(
        mode=cast(Mode, mode),
        on_invalid=cast(OnInvalid, on_invalid),
        crs=crs,
        encoding=encoding,
        mapping=mapping,
        layer_name=layer_name,
        dry_run=dry_run,
        drop_z=drop_z,
        effective_date=eff,
        source_doc=source_doc,
        channel="import",
    )
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report_progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        report = run_import(Settings().owner_url, layer, file, opts, progress=report_progress)
    _print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


def export_cmd(
    layer: Annotated[str, typer.Argument(help="Layer id")],
    out: Annotated[
        Path, typer.Argument(help="Output file; format from the extension (.gpkg .zip .geojson .csv .xlsx .kml)")
    ],
    crs: Annotated[
        str | None, typer.Option("--crs", help="Output CRS (default EPSG:4490; CRS84 for GeoJSON/KML); gcj02")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Shapefile/CSV encoding (GBK for old software)")
    ] = None,
    filter_text: Annotated[
        str | None, typer.Option("--filter", help="CQL2 text, e.g. \"status = 'completed'\"")
    ] = None,
) -> None:
    """Export a layer (or the features matching a CQL2 filter) to a file."""
    from api.cli import console
    from layers.export import export_to_path, whole_layer
    from layers.query import parse_filter
    from layers.registry import get_registry

    lyr = get_registry().get(layer)
    query = whole_layer(lyr, parse_filter(lyr, filter_text) if filter_text else None)
    with console.status(f"Exporting {layer} to {out.name} ..."):
        count = export_to_path(Settings().owner_url, query, out, crs=crs, encoding=encoding)
    console.print(f"[green]{count:,} features[/] of {layer} written to {out} ({out.stat().st_size:,} bytes).")


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to the root CLI."""
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
