"""督办清单 (due list): per district, targets due within 30 days or overdue, and their open features.

A target is on the list when its deadline has passed or falls within 30 days while the
district has not reached its share; with it come the listed features lacking the required status.

Why here and not in the quarterly report: districts work from this list between reports; it
uses the same rules as everything else (:func:`layers.progress.progress_as_of` for the gap,
:func:`layers.ledger.target_rows` for the features a target lists and whether each counts).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from openpyxl import Workbook

from layers.ledger import target_rows, workbook_bytes, write_table
from layers.plan import get_catalog
from layers.progress import district_names, progress_as_of
from layers.registry import get_registry

__all__ = ["due_list", "due_xlsx"]

HEADERS = ["区县", "目标", "期限", "剩余天数", "目标值", "完成值", "差额", "单位", "要素编码", "要素名称", "当前状态"]


def due_list(conn: psycopg.Connection[Any], as_of: dt.date, *, district: str | None = None, within_days: int = 30,
             layers: set[str] | None = None) -> list[dict[str, Any]]:
    """Rows of the due list, ordered by district and deadline; one row per target and district."""
    registry = get_registry()
    names = district_names(conn)
    horizon = as_of + dt.timedelta(days=within_days)
    out: list[dict[str, Any]] = []
    rows_by_target: dict[str, list[tuple[Any, ...]]] = {}
    labels_by_target: dict[str, dict[str, str]] = {}
    # only the targets whose deadline is near and whose layer the reader may see are computed at all
    targets = [t for t in get_catalog().targets
               if t.deadline <= horizon and (layers is None or t.layer in layers)]
    if not targets:
        return out
    for r in progress_as_of(conn, as_of, targets, by_district=True, district=district):
        t = r.target
        if r.district_code is None or r.goal <= 0 or r.actual >= r.goal:
            continue
        if t.id not in rows_by_target:
            rows_by_target[t.id] = target_rows(conn, t, as_of)
            lifecycle = registry.get(t.layer).lifecycle
            labels_by_target[t.id] = {s.code: s.label for s in lifecycle.statuses} if lifecycle else {}
        labels = labels_by_target[t.id]
        features = [{"code": row[1], "name": row[2], "status": row[3],
                     "status_label": labels.get(row[3], "未列入") if row[3] else "未列入"}
                    for row in rows_by_target[t.id] if row[0] == r.district_code and not row[7]]
        out.append({
            "district": r.district_code, "district_name": names.get(r.district_code, r.district_code),
            "target": t.id, "title": t.title, "layer": t.layer, "deadline": t.deadline.isoformat(),
            "days_left": (t.deadline - as_of).days, "goal": r.goal, "actual": r.actual,
            "gap": round(r.goal - r.actual, 2), "unit": t.unit, "features": features,
        })
    out.sort(key=lambda x: (x["district"], x["deadline"], x["target"]))
    return out


def due_xlsx(rows: list[dict[str, Any]], as_of: dt.date) -> bytes:
    """The due list as an XLSX workbook (one line per feature, or per target when none is listed).

    Laid out as the ledgers are (:func:`layers.ledger.write_table`): title, shaded header, frozen rows.
    """
    lines: list[list[Any]] = []
    for r in rows:
        base = [r["district_name"], r["title"], r["deadline"], r["days_left"], r["goal"], r["actual"], r["gap"],
                r["unit"]]
        for f in r["features"] or [{"code": "", "name": "清单内项目均已达到，缺口需补充项目", "status_label": ""}]:
            lines.append([*base, f["code"], f["name"], f["status_label"]])
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "督办清单"
    write_table(ws, HEADERS, lines,
                title=f"督办清单（截至{as_of.isoformat()}；期限已过或30天内到期、尚未达到要求状态）")
    return workbook_bytes(wb)
