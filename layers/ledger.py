"""XLSX ledgers (台账) of targets and layers, with Chinese headers, one sheet per district.

A target ledger has a summary sheet (汇总: the target and each district's quota, actual,
percent and status as of a date) and one sheet per district listing the features that
count towards the target (those in its list or already counted), with their status as of
the date and the date they reached the target's status. A layer ledger lists every
feature that exists on the date with its attributes and status as of the date, one sheet
per district. Rows come from SQL; the status as of the date and what counts toward a
target are the rules of :mod:`layers.history`.

The workbooks are built from rows (:func:`target_workbook`, :func:`layer_workbook`) read on a
sync connection (the CLI: :func:`target_ledger`, :func:`layer_ledger`) or an async one (the
API: :func:`atarget_ledger_xlsx`, :func:`alayer_ledger_xlsx`, which may read inside
:func:`layers.submissions.counted_changes`). A ledger that counts pending submissions says so
on every sheet: 【含待审核】 before the title and the notice under it.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import psycopg
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from psycopg import sql

from gis.io.tabular import sheet_title
from layers.history import Params, status_join, target_features, target_filter_sql
from layers.models import Layer
from layers.plan import get_catalog
from layers.plan.models import Target
from layers.progress import (
    STATUS_LABELS,
    TargetProgress,
    adistrict_names,
    aprogress_as_of,
    district_names,
    feature_value_sql,
    progress_as_of,
)
from layers.registry import get_registry
from layers.submissions import PENDING_MARK

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
DEMO_NOTE = "注：演示数据为合成数据，非官方统计。"
"""Before the title of every sheet of a ledger that counts pending submissions."""


def _sheet_title(name: str, used: set[str]) -> str:
    """An Excel-safe (:func:`gis.io.tabular.sheet_title`), unique sheet title."""
    clean = sheet_title(name)
    title, n = clean, 2
    while title in used:
        title = f"{clean[:28]}_{n}"
        n += 1
    used.add(title)
    return title


def write_table(ws: Any, headers: list[str], rows: list[list[Any]], title: str | None = None,
                pending_notice: str | None = None) -> None:
    """Lay out one sheet of a ledger: bold title (row 1), pending notice (row 2), shaded header (row 3), rows, widths.

    Without a title the header is row 1. Why one function: every XLSX sheet the office receives
    (target and layer ledgers, the due list :func:`layers.due.due_xlsx`) looks the same and carries
    the pending mark the same way; a sheet laid out by hand would drift.
    """
    r0 = 1
    if pending_notice:
        title = f"{PENDING_MARK}{title or ''}"
    if title:
        ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=13)
        r0 = 3
    if pending_notice:
        ws.cell(row=2, column=1, value=f"⚠ {pending_notice}").font = Font(bold=True, color="B35900")
    for j, h in enumerate(headers, start=1):
        c = ws.cell(row=r0, column=j, value=h)
        c.font = Font(bold=True)
        c.fill = HEADER_FILL
        c.alignment = Alignment(horizontal="center", wrap_text=True)
    for i, row in enumerate(rows, start=r0 + 1):
        for j, v in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=v)
    for j, h in enumerate(headers, start=1):
        width = max([len(str(h)) * 2] + [len(str(r[j - 1])) * 1.6 for r in rows[:200] if r[j - 1] is not None])
        ws.column_dimensions[get_column_letter(j)].width = min(max(8.0, width), 60.0)
    ws.freeze_panes = ws.cell(row=r0 + 1, column=1)


def target_rows_query(target: Target, as_of: dt.date) -> tuple[sql.Composed, Params]:
    """The query of :func:`target_rows` (one statement for sync and async connections)."""
    registry = get_registry()
    params = Params()
    value = feature_value_sql(target)
    query = sql.SQL(
        """
        SELECT t.district_code, t.code, t.name, t.status_as_of, t.status_since, t.reached_on, {value} AS value,
               t.counts
        FROM {features} AS t
        WHERE {list_filters} OR t.counts
        ORDER BY t.district_code, t.code
        """
    ).format(
        value=value,
        features=target_features(target, as_of, params, registry=registry, include_absent=True),
        list_filters=target_filter_sql(target, params, with_list=True),
    )
    return query, params


def target_rows(conn: psycopg.Connection[Any], target: Target, as_of: dt.date) -> list[tuple[Any, ...]]:
    """Features of a target's list or already counting, as of a date.

    Columns: ``district_code, code, name, status, since, reached_on, value, counts``. A listed
    feature absent on the date (rule 3 of :mod:`layers.history`) has a NULL status.
    """
    query, params = target_rows_query(target, as_of)
    return list(conn.execute(query, params).fetchall())


async def atarget_rows(conn: psycopg.AsyncConnection[Any], target: Target, as_of: dt.date) -> list[tuple[Any, ...]]:
    """:func:`target_rows` on an async connection (the API)."""
    query, params = target_rows_query(target, as_of)
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


def target_ledger(conn: psycopg.Connection[Any], target: Target, as_of: dt.date, path: Path) -> Path:
    """Write the XLSX ledger of one target as of a date; return the path."""
    wb = target_workbook(target, as_of, district_names(conn), progress_as_of(conn, as_of, [target], by_district=True),
                         target_rows(conn, target, as_of))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


async def atarget_ledger_xlsx(conn: psycopg.AsyncConnection[Any], target: Target, as_of: dt.date, *,
                              pending_notice: str | None = None) -> bytes:
    """The XLSX ledger of one target read on an async connection, as bytes (marked when ``pending_notice``)."""
    records = await aprogress_as_of(conn, as_of, [target], by_district=True)
    wb = target_workbook(target, as_of, await adistrict_names(conn), records, await atarget_rows(conn, target, as_of),
                         pending_notice=pending_notice)
    return workbook_bytes(wb)


def workbook_bytes(wb: Workbook) -> bytes:
    """The workbook as XLSX bytes (what the API sends)."""
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def target_workbook(target: Target, as_of: dt.date, names: dict[str, str], records: list[TargetProgress],
                    feature_rows: list[tuple[Any, ...]], *, pending_notice: str | None = None) -> Workbook:
    """The target ledger's workbook: the summary by district, then each district's features."""
    registry = get_registry()
    layer = registry.get(target.layer)
    assert layer.lifecycle is not None
    labels = {s.code: s.label for s in layer.lifecycle.statuses}
    catalog = get_catalog()
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    used: set[str] = set()
    ws.title = _sheet_title("汇总", used)
    headers = ["区县代码", "区县", f"目标值（{target.unit}）", f"完成值（{target.unit}）", "完成率（%）",
               f"应完成（{target.unit}）", "进度评价", "计入数量"]
    rows = [[r.district_code or "全市", names.get(r.district_code or "", "全市"), round(r.goal, 2),
             round(r.actual, 2), round(r.percent, 1), round(r.expected, 2), STATUS_LABELS[r.status], r.features]
            for r in records]
    write_table(ws, headers, rows, title=f"{target.title} 台账（截至 {as_of.isoformat()}）",
                pending_notice=pending_notice)
    info_row = len(rows) + 6
    task = catalog.task(target.task)
    for k, (key, val) in enumerate([
        ("所属任务", f"任务{target.task}：{task.title}（{catalog.programme_of(target.task).name}）"),
        ("方案原文", target.source), ("起止日期", f"{target.start} 至 {target.deadline}"),
        ("统计口径", f"{layer.title}：状态达到“{labels[target.status]}”及以后，且在起止日期内首次达到"),
        ("责任单位", catalog.task(target.task).responsible_text),
        ("说明", (target.note or "") + DEMO_NOTE),
    ]):
        ws.cell(row=info_row + k, column=1, value=key).font = Font(bold=True)
        ws.cell(row=info_row + k, column=2, value=val)
    by_district: dict[str, list[list[Any]]] = {}
    for d, code, name, status, since, reached, value, counts in feature_rows:
        by_district.setdefault(d or "", []).append([
            code, name, labels.get(status, "—") if status else "—", since, reached,
            round(value, 3), "是" if counts else "否",
        ])
    fheaders = [layer.code_label, layer.name_label, layer.lifecycle.label, "状态日期",
                f"达到“{labels[target.status]}”日期", f"数量（{target.unit}）", "计入目标"]
    for d in sorted(by_district):
        sheet = wb.create_sheet(_sheet_title(names.get(d, d or "未落区县"), used))
        write_table(sheet, fheaders, by_district[d], title=f"{names.get(d, d)} · {target.title}",
                    pending_notice=pending_notice)
    return wb


def layer_rows_query(layer: Layer, as_of: dt.date) -> tuple[sql.Composed, Params]:
    """The rows of a layer ledger: district, code, name, the non-generated fields, measure, status and since."""
    cols = [f.name for f in layer.fields if not f.generated]
    measure = layer.measure_field
    select: list[sql.Composable] = [sql.SQL("t.district_code"), sql.SQL("t.code"), sql.SQL("t.name")]
    select += [sql.SQL("t.{}").format(sql.Identifier(c)) for c in cols]
    if measure:
        select.append(sql.SQL("round(t.{}::numeric, 2)::float8").format(sql.Identifier(measure)))
    params = Params()
    status: sql.Composable = sql.SQL("")
    if layer.lifecycle is not None:
        select += [sql.SQL("s.status"), sql.SQL("s.since")]
        # features absent on the date (created later, no history by then) are not on its ledger
        status = sql.SQL("{} WHERE s.status IS NOT NULL").format(status_join(layer, as_of, params))
    query = sql.SQL("SELECT {cols} FROM {table} AS t {status} ORDER BY t.district_code, t.code").format(
        cols=sql.SQL(", ").join(select), table=sql.Identifier(layer.schema_name, layer.table), status=status,
    )
    return query, params


def layer_ledger(conn: psycopg.Connection[Any], layer: Layer, as_of: dt.date, path: Path) -> Path:
    """Write the XLSX ledger of a layer (every feature, status as of a date), one sheet per district."""
    query, params = layer_rows_query(layer, as_of)
    wb = layer_workbook(layer, as_of, district_names(conn), list(conn.execute(query, params).fetchall()))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


async def alayer_ledger_xlsx(conn: psycopg.AsyncConnection[Any], layer: Layer, as_of: dt.date, *,
                             pending_notice: str | None = None) -> bytes:
    """The XLSX ledger of a layer read on an async connection, as bytes (marked when ``pending_notice``)."""
    query, params = layer_rows_query(layer, as_of)
    cur = await conn.execute(query, params)
    rows = list(await cur.fetchall())
    wb = layer_workbook(layer, as_of, await adistrict_names(conn), rows, pending_notice=pending_notice)
    return workbook_bytes(wb)


def layer_workbook(layer: Layer, as_of: dt.date, names: dict[str, str], rows: list[tuple[Any, ...]], *,
                   pending_notice: str | None = None) -> Workbook:
    """The layer ledger's workbook from the rows of :func:`layer_rows_query`."""
    cols = [f.name for f in layer.fields if not f.generated]
    measure = layer.measure_field
    headers = [layer.code_label, layer.name_label] + [layer.field(c).label for c in cols]
    if measure:
        headers.append(layer.field(measure).label if measure in {f.name for f in layer.fields} else measure)
    if layer.lifecycle is not None:
        headers += [layer.lifecycle.label, "状态日期"]
    choice_labels = {c: {ch.code: ch.label for ch in (layer.field(c).choices or [])} for c in cols}
    status_labels = {s.code: s.label for s in layer.lifecycle.statuses} if layer.lifecycle else {}
    by_district: dict[str, list[list[Any]]] = {}
    for row in rows:
        d, rest = row[0] or "", list(row[1:])
        for k, c in enumerate(cols, start=2):
            if choice_labels[c]:
                rest[k] = choice_labels[c].get(rest[k], rest[k])
        if layer.lifecycle is not None:
            rest[-2] = status_labels.get(rest[-2], "—") if rest[-2] else "—"
        by_district.setdefault(d, []).append(rest)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    used: set[str] = set()
    ws.title = _sheet_title("汇总", used)
    summary = [[d or "—", names.get(d, "未落区县"), len(v)] for d, v in sorted(by_district.items())]
    write_table(ws, ["区县代码", "区县", "数量"], summary, title=f"{layer.title} 台账（截至 {as_of.isoformat()}）",
                pending_notice=pending_notice)
    ws.cell(row=len(summary) + 5, column=1, value=DEMO_NOTE)
    for d in sorted(by_district):
        name = names.get(d, d or "未落区县")
        write_table(wb.create_sheet(_sheet_title(name, used)), headers, by_district[d],
                    title=f"{name} · {layer.title}" if pending_notice else None, pending_notice=pending_notice)
    return wb


def ledger_document_context(conn: psycopg.Connection[Any], target: Target, as_of: dt.date) -> dict[str, Any]:
    """The Word/PDF ledger of a target (``layers/reports/templates/ledger.docx``): the same rows as the XLSX.

    District shares come from :func:`layers.progress.progress_as_of`, features from
    :func:`target_rows`, with the ledger attributes (实施主体, 计划投资, 资金来源) of each feature.
    """
    registry = get_registry()
    layer = registry.get(target.layer)
    assert layer.lifecycle is not None
    catalog = get_catalog()
    names = district_names(conn)
    labels = {s.code: s.label for s in layer.lifecycle.statuses}
    records = progress_as_of(conn, as_of, [target], by_district=True)
    rows = target_rows(conn, target, as_of)
    attrs: dict[str, tuple[Any, ...]] = {}
    field_names = {f.name for f in layer.fields}
    if {"implementing_unit", "invest_planned", "funding_source"} <= field_names:
        query = sql.SQL(
            "SELECT code, implementing_unit, invest_planned, funding_source FROM {} WHERE code = ANY(%s)"
        ).format(sql.Identifier(layer.schema_name, layer.table))
        attrs = {r[0]: r[1:] for r in conn.execute(query, ([r[1] for r in rows],)).fetchall()}
        funding = {c.code: c.label for c in layer.field("funding_source").choices or []}
    else:
        funding = {}
    task = catalog.task(target.task)
    programme = catalog.programme_of(target.task).name
    scope = f"{layer.title}：状态达到“{labels[target.status]}”及以后，且在起止日期内首次达到"
    by_district: dict[str, list[dict[str, Any]]] = {}
    for d, code, name, status, since, _reached, _value, counts in rows:
        unit, planned, source = attrs.get(code, (None, None, None))
        by_district.setdefault(d or "", []).append({
            "code": code, "name": name, "status": labels.get(status, "—") if status else "—",
            "since": since.isoformat() if since else "—", "unit": unit or "—",
            "planned": f"{planned:,.1f}" if planned is not None else "—",
            "funding": funding.get(source, "—") if source else "—", "counts": "是" if counts else "否",
        })
    return {
        "title": f"{target.title} 台账",
        "as_of_label": f"{as_of.year}年{as_of.month}月{as_of.day}日",
        "demo_note": DEMO_NOTE,
        "info": [
            {"key": "所属任务", "value": f"任务{target.task}：{task.title}（{programme}）"},
            {"key": "方案原文", "value": target.source},
            {"key": "目标类别", "value": target.kind_label},
            {"key": "起止日期", "value": f"{target.start} 至 {target.deadline}"},
            {"key": "期限说明", "value": target.deadline_note or f"原文：{target.deadline_source}"},
            {"key": "统计口径", "value": scope},
            {"key": "责任单位", "value": task.responsible_text},
            {"key": "说明", "value": target.note or "—"},
        ],
        "districts": [
            {"name": names.get(r.district_code or "", "全市") if r.district_code else "全市",
             "goal": f"{r.goal:,.2f}", "actual": f"{r.actual:,.2f}", "percent": f"{r.percent:.1f}",
             "status_label": STATUS_LABELS[r.status], "features": r.features}
            for r in records
        ],
        "features": [{"name": names.get(d, d or "未落区县"), "rows": v} for d, v in sorted(by_district.items())],
    }
