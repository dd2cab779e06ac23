"""The quarterly supervision report (督导通报) and district one-pagers as Word or PDF (``/reports``).

Numbers, maps and wording come from :mod:`layers.reports`; this module parses the query
into typed values and streams the file. Reading: the report spans layers, so it declares the
set of layers the caller may read and shows maps, investment and
overdue lists of those only (``ReadableRenewalLayers``: the renewal layers the caller may read,
or the ``layers`` it names); progress figures are plan aggregates, public like ``/progress``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.access import ReadableRenewalLayers
from api.db import connect_sync
from api.deps import SettingsDep
from api.params import AsOf, as_of_query
from gis.errors import InvalidInputError
from layers import city
from layers.progress import Quarter, parse_as_of
from layers.reports import ReportFile, district_summary, quarterly_report
from layers.reports.data import data_version
from layers.reports.render import docx_to_pdf, parse_format

ORDER = 45
router = APIRouter(tags=["reports"])

CACHE_SIZE = 8
"""Rendered reports kept in memory (a quarterly report is ~0.6 MB and takes 10–30 s to build)."""
_cache: OrderedDict[tuple[object, ...], ReportFile] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(conn: psycopg.Connection[Any], key: tuple[object, ...], build: Callable[[], ReportFile]) -> ReportFile:
    """The report for ``key`` if neither the data nor the city profile (its titles) changed since it was built."""
    full = (*key, data_version(conn), city.current().model_dump_json())
    with _cache_lock:
        hit = _cache.get(full)
        if hit is not None:
            _cache.move_to_end(full)
            return hit
    report = build()
    with _cache_lock:
        _cache[full] = report
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return report

FormatQ = Annotated[str, Query(description="docx (Word, editable) or pdf", examples=["docx", "pdf"])]


def _file(report: ReportFile) -> Response:
    disposition = f"attachment; filename=\"report.{report.format}\"; filename*=UTF-8''{quote(report.filename)}"
    return Response(report.content, media_type=report.media_type, headers={"Content-Disposition": disposition})


@router.get("/reports/quarterly", summary="Quarterly supervision report (督导通报) as Word or PDF",
            response_class=Response, responses={200: {"content": {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {},
                "application/pdf": {}}}})
async def quarterly(
    settings: SettingsDep,
    layers: ReadableRenewalLayers,
    # no `examples`: a real report takes 10–30 s, and generated API tests would send the example
    quarter: Annotated[str | None, Query(description="A quarter such as 2022Q3 (as of its last day)")] = None,
    as_of: Annotated[str | None, as_of_query("A date YYYY-MM-DD instead of a quarter")] = None,
    format: FormatQ = "docx",  # noqa: A002
) -> Response:
    """Cover, target summary, district ranking, programme tables, maps, investment, overdue list, photos."""
    fmt = parse_format(format)
    if (quarter is None) == (as_of is None):
        raise InvalidInputError("Give either quarter (e.g. 2022Q3) or as_of (YYYY-MM-DD), not both or neither.")
    q = Quarter.parse(quarter) if quarter is not None else None
    day = parse_as_of(as_of) if as_of is not None else None
    readable = {layer.id for layer in layers}

    def build() -> ReportFile:
        # rendering is CPU work (matplotlib, docxtpl, LibreOffice): a thread, its own connection
        with connect_sync(settings) as conn:
            key = ("quarterly", str(q), day, frozenset(readable))
            docx = _cached(conn, (*key, "docx"),
                           lambda: quarterly_report(conn, quarter=q, as_of=day, fmt="docx", layers=readable,
                                                            storage_dir=settings.storage_dir))
            if fmt == "docx":
                return docx
            # the PDF is the same Word file converted (cached too, so Word then PDF renders once)
            return _cached(conn, (*key, "pdf"), lambda: ReportFile(docx_to_pdf(docx.content), "pdf",
                                                                   docx.filename.removesuffix(".docx") + ".pdf"))

    return _file(await run_in_threadpool(build))


@router.get("/reports/district/{district}", summary="One district's one-page summary as Word or PDF",
            response_class=Response)
async def district(
    district: str,
    settings: SettingsDep,
    layers: ReadableRenewalLayers,
    as_of: AsOf = None,
    format: FormatQ = "docx",  # noqa: A002
) -> Response:
    """The district's share of every target, its rank, investment and overdue items."""
    fmt = parse_format(format)
    day = parse_as_of(as_of)
    readable = {layer.id for layer in layers}

    def build() -> ReportFile:
        with connect_sync(settings) as conn:
            key = ("district", district, day, fmt, frozenset(readable))
            return _cached(conn, key, lambda: district_summary(conn, district, day, fmt=fmt, layers=readable))

    return _file(await run_in_threadpool(build))
