"""Render reports: docxtpl fills the office's Word template; LibreOffice turns that DOCX into PDF.

The templates live in ``templates/`` (``quarterly.docx``, ``district.docx``, ``ledger.docx``);
the office edits them in Word. A deployment may point ``RENEWAL_REPORT_TEMPLATES`` at a
directory holding its own copies. The PDF is always converted from the DOCX just rendered
(``soffice --headless --convert-to pdf``), so both say the same thing.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psycopg
from docx.shared import Mm
from docxtpl import DocxTemplate, InlineImage

from gis.errors import InvalidInputError
from layers.errors import ServiceUnavailableError
from layers.plan.models import Target
from layers.progress import Quarter, district_names
from layers.reports import data as report_data
from layers.reports.attachments import approved_change_photos
from layers.reports.maps import ranking_map, status_map

Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)`` while a report is built (the CLI shows a bar)."""
Format = Literal["docx", "pdf"]
MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
MAP_WIDTH = Mm(160)
SOFFICE_TIMEOUT_S = 120

STATUS_MAPS = [
    ("old_compounds", "老旧小区改造状态", "按台账状态着色；括号内为个数。"),
    ("urban_villages", "城中村改造阶段", "谋划、启动、征收/签约、拆除、建设、回迁/竣工。"),
    ("vacated_land", "腾退土地推进阶段", "省属企事业单位搬迁腾退的2992亩土地。"),
]


class ReportConversionError(ServiceUnavailableError):
    """LibreOffice is missing or failed to convert the report to PDF (HTTP 503)."""

    title = "Report conversion unavailable"


@dataclass(frozen=True)
class ReportFile:
    """A rendered report."""

    content: bytes
    format: Format
    filename: str

    @property
    def media_type(self) -> str:
        """The HTTP media type."""
        return MEDIA_TYPES[self.format]


def template_path(name: str) -> Path:
    """The Word template ``name`` (.docx): ``$RENEWAL_REPORT_TEMPLATES/name`` if set, else the packaged one."""
    override = os.environ.get("RENEWAL_REPORT_TEMPLATES")
    if override and (Path(override) / name).exists():
        return Path(override) / name
    return Path(str(resources.files("layers.reports") / "templates" / name))


def parse_format(value: str) -> Format:
    """``docx`` or ``pdf`` (from a file suffix or a query parameter)."""
    fmt = value.lower().lstrip(".")
    if fmt not in MEDIA_TYPES:
        raise InvalidInputError(f"format must be docx or pdf; got {value!r}.", detail={"format": value})
    return fmt  # type: ignore[return-value]


def soffice() -> str | None:
    """The LibreOffice binary, if installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(docx: bytes) -> bytes:
    """Convert a DOCX to PDF with LibreOffice headless, in a private profile and temporary directory.

    Raises
    ------
    ReportConversionError
        LibreOffice is not installed (``scripts/os-run-deps.sh`` installs it) or failed.
    """
    binary = soffice()
    if binary is None:
        raise ReportConversionError(
            "PDF output needs LibreOffice (soffice), which is not installed on the server; ask for format=docx, "
            "or install it with scripts/os-run-deps.sh (apt: libreoffice-writer-nogui)."
        )
    with tempfile.TemporaryDirectory(prefix="renewal-report-") as tmp:
        src = Path(tmp) / "report.docx"
        src.write_bytes(docx)
        profile = Path(tmp) / "profile"
        cmd = [binary, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
               "--convert-to", "pdf", "--outdir", tmp, str(src)]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=SOFFICE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ReportConversionError(f"LibreOffice did not finish the PDF in {SOFFICE_TIMEOUT_S} s.") from None
        out = Path(tmp) / "report.pdf"
        if done.returncode != 0 or not out.exists():
            raise ReportConversionError(
                "LibreOffice could not convert the report to PDF.",
                detail={"stderr": done.stderr.decode("utf-8", "replace")[-500:]},
            )
        return out.read_bytes()


def _render(template: str, context: dict[str, Any],
            build: Callable[[DocxTemplate], dict[str, Any]] | None = None) -> bytes:
    """Fill a template; ``build(tpl)`` adds what needs the template object (images)."""
    tpl = DocxTemplate(str(template_path(template)))
    tpl.render({**context, **(build(tpl) if build else {})}, autoescape=True)
    buf = io.BytesIO()
    tpl.save(buf)
    return buf.getvalue()


def _finish(docx: bytes, fmt: Format, stem: str, progress: Progress | None, step: int, total: int) -> ReportFile:
    if fmt == "pdf":
        if progress:
            progress("PDF（LibreOffice）", step, total)
        return ReportFile(docx_to_pdf(docx), "pdf", f"{stem}.pdf")
    return ReportFile(docx, "docx", f"{stem}.docx")


def quarterly_report(
    conn: psycopg.Connection[Any], *, quarter: Quarter | None = None, as_of: dt.date | None = None,
    fmt: Format = "docx", layers: set[str] | None = None, progress: Progress | None = None,
    maps_out: Path | None = None, storage_dir: str | Path | None = None,
) -> ReportFile:
    """The quarterly supervision report (督导通报) for a quarter, or as of a date.

    With ``quarter`` the report is as of the quarter's last day and ranks that quarter; with
    ``as_of`` it ranks the last quarter ended by then. ``layers`` (ids) limits the maps,
    investment and overdue lists to layers the reader may see (None: all). ``maps_out``
    also writes the map PNGs there (for review). ``storage_dir`` is where the review workflow
    keeps photos (``RENEWAL_STORAGE_DIR``); without it the report has no photo section.
    """
    if (quarter is None) == (as_of is None):
        raise InvalidInputError("Give either a quarter (e.g. 2022Q3) or a date (as_of), not both or neither.")
    day = quarter.end if quarter is not None else as_of
    assert day is not None
    total = 4 + len(STATUS_MAPS) + (1 if fmt == "pdf" else 0)
    step = 0

    def tick(name: str) -> None:
        nonlocal step
        if progress:
            progress(name, step, total)
        step += 1

    tick("目标与指标进度")
    context = report_data.quarterly_context(conn, day, quarter=quarter, layers=layers)
    tick("区县排位图")
    maps: list[dict[str, Any]] = []
    pngs: dict[str, bytes] = {}
    pngs["ranking"] = ranking_map(conn, context["ranking_raw"]["ranking"],
                                  f"{context['ranking_quarter']} 区县督导排位得分")
    for layer_id, title, caption in STATUS_MAPS:
        tick(title)
        if layers is not None and layer_id not in layers:
            continue
        pngs[layer_id] = status_map(conn, layer_id, day, title)
        maps.append({"title": title, "key": layer_id, "caption": caption})
    tick("现场照片")
    photos = approved_change_photos(conn, day, storage_dir=storage_dir, layers=layers)
    if maps_out is not None:
        maps_out.mkdir(parents=True, exist_ok=True)
        for key, png in pngs.items():
            (maps_out / f"{key}.png").write_bytes(png)
    tick("生成Word")

    def build(tpl: DocxTemplate) -> dict[str, Any]:
        return {
            "maps": [{**m, "image": InlineImage(tpl, io.BytesIO(pngs[m["key"]]), width=MAP_WIDTH)} for m in maps],
            "map_ranking": InlineImage(tpl, io.BytesIO(pngs["ranking"]), width=MAP_WIDTH),
            "photos": [{"image": InlineImage(tpl, io.BytesIO(p.content), width=Mm(120)),
                        "caption": f"{p.name}（{p.code}）{p.caption} {p.taken_on or ''}"} for p in photos],
        }

    context["photos_note"] = (f"以下为审核通过的变更所附现场照片（{len(photos)}张）。" if photos
                              else "报送审核流程尚未提供照片（暂无审核通过的变更附件）。")
    docx = _render("quarterly.docx", context, build)
    stem = f"督导通报_{quarter}" if quarter is not None else f"督导通报_{day.isoformat()}"
    return _finish(docx, fmt, stem, progress, step, total)


def district_summary(
    conn: psycopg.Connection[Any], district: str, as_of: dt.date, *, fmt: Format = "docx",
    layers: set[str] | None = None,
) -> ReportFile:
    """One district's one-page summary (Word or PDF)."""
    names = district_names(conn)
    if district not in names:
        raise InvalidInputError(f"Unknown district {district!r}; known: {', '.join(sorted(names))}.",
                                detail={"district": district})
    context = report_data.district_context(conn, as_of, district, layers)
    docx = _render("district.docx", context)
    return _finish(docx, fmt, f"{names[district]}_{as_of.isoformat()}", None, 0, 1)


def target_ledger_document(
    conn: psycopg.Connection[Any], target: Target, as_of: dt.date, *, fmt: Format = "docx"
) -> ReportFile:
    """A target's ledger (台账) as Word or PDF: the target, each district's share, its list of features."""
    from layers.ledger import ledger_document_context

    docx = _render("ledger.docx", ledger_document_context(conn, target, as_of))
    return _finish(docx, fmt, f"台账_{target.id}_{as_of.isoformat()}", None, 0, 1)
