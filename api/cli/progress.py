"""``renewal progress``, ``renewal ranking``, ``renewal map progress|layer`` and ``renewal ledger target|layer``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import psycopg
import typer
from rich.table import Table

from api.settings import Settings
from gis.errors import InvalidInputError

if TYPE_CHECKING:
    import folium

from layers.progress import STATUS_COLORS, STATUS_LABELS, Quarter, parse_as_of, progress_as_of, ranking, select_targets

T = TypeVar("T")

map_app = typer.Typer(help="Folium maps (offline: libraries inlined into the file).", no_args_is_help=True)
ledger_app = typer.Typer(help="XLSX ledgers (台账).", no_args_is_help=True)

AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default today)")]
PendingOpt = Annotated[bool, typer.Option(
    "--include-pending", help="Also count pending submissions, as /progress?include_pending=true does (the output "
    "says so). Default: approved changes only.")]


def progress_cmd(
    as_of: AsOfOpt = None,
    district: Annotated[str | None, typer.Option(help="adcode, e.g. 130102")] = None,
    task: Annotated[int | None, typer.Option(help="Task number 1–45")] = None,
    programme: Annotated[int | None, typer.Option(help="Programme number 1–9")] = None,
) -> None:
    """Print the progress of every plan target as of a date (a rich table)."""
    from api.cli import console

    date = parse_as_of(as_of)
    targets = select_targets(task=task, programme=programme)
    with psycopg.connect(Settings().owner_url) as conn:
        records = progress_as_of(conn, date, targets, district=district)
    scope = f" · 区县 {district}" if district else ""
    table = Table(title=f"规划目标进度 截至 {date.isoformat()}{scope}")
    for col, justify in (("任务", "right"), ("目标", "left"), ("目标值", "right"), ("完成值", "right"),
                         ("完成率", "right"), ("应完成", "right"), ("截止", "left"), ("评价", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in records:
        color = STATUS_COLORS[r.status]
        table.add_row(
            str(r.target.task), r.target.title, f"{r.goal:,.1f} {r.target.unit}", f"{r.actual:,.1f}",
            f"{r.percent:.1f}%", f"{r.expected:,.1f}", r.target.deadline.isoformat(),
            f"[{color}]{STATUS_LABELS[r.status]}[/]",
        )
    console.print(table)


def ranking_cmd(
    quarter: Annotated[str, typer.Argument(help="e.g. 2022Q3")],
    target: Annotated[str | None, typer.Option(help="One target id")] = None,
    programme: Annotated[int | None, typer.Option(help="Programme number 1–9")] = None,
) -> None:
    """Print the quarterly ranking of districts (每季度督导排位)."""
    from api.cli import console

    q = Quarter.parse(quarter)
    with psycopg.connect(Settings().owner_url) as conn:
        result = ranking(conn, q, select_targets(programme=programme, target=target))
    table = Table(title=f"{q} 区县督导排位（{len(result['targets'])} 项在期目标）")
    for col in ("名次", "区县", "得分", "上季度名次", "变化"):
        table.add_column(col)
    for row in result["ranking"]:
        change = row["change"]
        arrow = "—" if change is None else ("↑" + str(change) if change > 0 else "↓" + str(-change) if change else "=")
        table.add_row(str(row["rank"]), row["district_name"], f"{row['score']:.1f}",
                      str(row["previous_rank"] or "—"), arrow)
    console.print(table)


def _counted(include_pending: bool,
             make: Callable[[psycopg.AsyncConnection[Any], str | None], Awaitable[T]]) -> T:
    """Run ``make(conn, pending_notice)`` on one connection, inside the switch of /progress (api.pending)."""
    from api.pending import pending_notice
    from layers.registry import get_registry
    from layers.submissions import counted_changes

    async def run() -> T:
        async with await psycopg.AsyncConnection.connect(Settings().owner_url) as conn:
            async with counted_changes(conn, get_registry(), include_pending) as applied:
                return await make(conn, pending_notice(applied))

    return asyncio.run(run())


def _write_map(output: Path, make: Callable[[psycopg.AsyncConnection[Any], str | None], Awaitable[folium.Map]],
               include_pending: bool = False) -> None:
    """Build a folium map on one connection and write it as a stand-alone HTML file (libraries inlined)."""
    from api.cli import console
    from layers.maps import render

    async def build(conn: psycopg.AsyncConnection[Any], notice: str | None) -> str:
        return render(await make(conn, notice), inline=True)

    output.write_text(_counted(include_pending, build), encoding="utf-8")
    console.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


@map_app.command("progress")
def map_progress(
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write")],
    as_of: AsOfOpt = None,
    target: Annotated[str | None, typer.Option(help="Target id (default: the whole plan)")] = None,
    basemap: Annotated[str, typer.Option(help="none, osm, tianditu or gaode")] = "none",
    include_pending: PendingOpt = False,
) -> None:
    """Write a stand-alone progress map (libraries inlined: opens with no internet and no server)."""
    from layers.maps import progress_map

    date = parse_as_of(as_of)
    settings = Settings()
    _write_map(
        output,
        lambda conn, notice: progress_map(conn, date, target, basemap=basemap, tianditu_key=settings.tianditu_key,
                                          pending_notice=notice),
        include_pending,
    )


@map_app.command("layer")
def map_layer(
    layer_id: Annotated[str, typer.Argument(help="Layer id, e.g. old_compounds")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write")],
    as_of: AsOfOpt = None,
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses")] = None,
    include_pending: PendingOpt = False,
) -> None:
    """Write a stand-alone map of one layer coloured by status."""
    from layers.maps import layer_map
    from layers.registry import get_registry

    layer = get_registry().get(layer_id)
    date = parse_as_of(as_of)
    if status and layer.lifecycle is None:
        raise InvalidInputError(f"Layer '{layer.id}' has no status to filter on.")

    _write_map(output, lambda conn, notice: layer_map(conn, layer, date, status or None, pending_notice=notice),
               include_pending)


@ledger_app.command("target")
def ledger_target(
    target: Annotated[str, typer.Argument(help="Target id, e.g. compounds_renovated_2021")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write: .xlsx, .docx (Word) or .pdf")],
    as_of: AsOfOpt = None,
    include_pending: PendingOpt = False,
) -> None:
    """Write the ledger of one target: summary by district and the features of each district."""
    from api.cli import console
    from layers.ledger import atarget_ledger_xlsx, target_ledger

    t = select_targets(target=target)[0]
    if include_pending:
        if output.suffix.lower() in (".docx", ".pdf"):
            raise InvalidInputError("--include-pending writes the XLSX ledger only; name an .xlsx output.")
        output.write_bytes(_counted(True, lambda conn, notice: atarget_ledger_xlsx(
            conn, t, parse_as_of(as_of), pending_notice=notice)))
        console.print(f"wrote {output} (含待审核 includes pending submissions)")
        return
    with psycopg.connect(Settings().owner_url) as conn:
        if output.suffix.lower() in (".docx", ".pdf"):
            from layers.reports import target_ledger_document
            from layers.reports.render import parse_format

            doc = target_ledger_document(conn, t, parse_as_of(as_of), fmt=parse_format(output.suffix))
            output.write_bytes(doc.content)
        else:
            target_ledger(conn, t, parse_as_of(as_of), output)
    console.print(f"wrote {output}")


@ledger_app.command("layer")
def ledger_layer(
    layer_id: Annotated[str, typer.Argument(help="Layer id, e.g. pipe_renewals")],
    output: Annotated[Path, typer.Option("-o", "--output", help="XLSX file to write")],
    as_of: AsOfOpt = None,
    include_pending: PendingOpt = False,
) -> None:
    """Write the ledger of one layer (status as of the date), one sheet per district."""
    from api.cli import console
    from layers.ledger import alayer_ledger_xlsx, layer_ledger
    from layers.registry import get_registry

    if include_pending:
        layer = get_registry().get(layer_id)
        output.write_bytes(_counted(True, lambda conn, notice: alayer_ledger_xlsx(
            conn, layer, parse_as_of(as_of), pending_notice=notice)))
        console.print(f"wrote {output} (含待审核 includes pending submissions)")
        return
    with psycopg.connect(Settings().owner_url) as conn:
        layer_ledger(conn, get_registry().get(layer_id), parse_as_of(as_of), output)
    console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``progress``, ``ranking``, ``map`` and ``ledger`` to the root CLI."""
    app.command("progress")(progress_cmd)
    app.command("ranking")(ranking_cmd)
    app.add_typer(map_app, name="map")
    app.add_typer(ledger_app, name="ledger")
