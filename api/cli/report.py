"""``renewal report quarterly 2022Q3 -o 通报.docx|.pdf``, ``renewal report district`` and ``renewal report ledger``.

The format follows the output file's suffix (.docx or .pdf); progress is shown as a bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.settings import Settings
from layers.progress import Quarter, parse_as_of

if TYPE_CHECKING:
    from layers.reports.render import Format, ReportFile

report_app = typer.Typer(help="Word/PDF reports for leaders (督导通报, 区县一页纸, 台账).", no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("-o", "--output", help="Output file: .docx (Word) or .pdf")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default today)")]


def _format(path: Path) -> Format:
    from layers.reports.render import parse_format  # matplotlib loads only when a report is made

    return parse_format(path.suffix or ".docx")


@report_app.command("quarterly")
def quarterly_cmd(
    quarter: Annotated[str | None, typer.Argument(help="e.g. 2022Q3 (as of its last day)")] = None,
    output: OutOpt = Path("督导通报.docx"),
    as_of: Annotated[str | None, typer.Option("--as-of", help="A date YYYY-MM-DD instead of a quarter")] = None,
    maps_dir: Annotated[Path | None, typer.Option("--maps-dir", help="Also write the map PNGs here")] = None,
) -> None:
    """The quarterly supervision report (督导通报) for a quarter or a date."""
    from api.cli import console
    from layers.reports import quarterly_report

    fmt = _format(output)
    q = Quarter.parse(quarter) if quarter else None
    day = parse_as_of(as_of) if as_of else None
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar, psycopg.connect(Settings().owner_url) as conn:
        task = bar.add_task("督导通报", total=1)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        report = quarterly_report(conn, quarter=q, as_of=day, fmt=fmt, progress=progress,
                                  maps_out=maps_dir, storage_dir=Settings().storage_dir)
        bar.update(task, description="完成", completed=bar.tasks[0].total)
    output.write_bytes(report.content)
    console.print(f"[green]Wrote[/] {output} ({len(report.content) / 1024:,.0f} kB, {report.format})")


def _write_report(output: Path, build: Callable[[psycopg.Connection[Any]], ReportFile]) -> None:
    """Build a report on an owner connection, write it to ``output`` and say so.

    Why: the district and ledger commands differ only in which report they build; connecting,
    writing the file and the closing message are one rule for both, kept here once.
    """
    from api.cli import console

    with psycopg.connect(Settings().owner_url) as conn:
        report = build(conn)
    output.write_bytes(report.content)
    console.print(f"[green]Wrote[/] {output}")


@report_app.command("district")
def district_cmd(
    district: Annotated[str, typer.Argument(help="adcode, e.g. 130102")],
    output: OutOpt = Path("区县一页纸.docx"),
    as_of: AsOfOpt = None,
) -> None:
    """One district's one-page summary."""
    from layers.reports import district_summary

    _write_report(output, lambda conn: district_summary(conn, district, parse_as_of(as_of), fmt=_format(output)))


@report_app.command("ledger")
def ledger_cmd(
    target: Annotated[str, typer.Argument(help="Target id, e.g. compounds_renovated_2021")],
    output: OutOpt = Path("台账.docx"),
    as_of: AsOfOpt = None,
) -> None:
    """A target ledger (台账) as Word or PDF (``renewal ledger target`` writes the XLSX)."""
    from layers.plan import get_target
    from layers.reports import target_ledger_document

    _write_report(
        output, lambda conn: target_ledger_document(conn, get_target(target), parse_as_of(as_of), fmt=_format(output))
    )


def register(app: typer.Typer) -> None:
    """Add ``report`` to the root CLI."""
    app.add_typer(report_app, name="report")
