"""The content of reports as plain values (the Word templates' context).

Numbers are taken from :mod:`layers.progress` (targets, district shares, quarterly ranking)
and :mod:`layers.indicators` as they are, only formatted: the report can never disagree
with ``/progress`` or ``/progress/ranking``. Investment sums the ledger attributes
(migration 0010) of the plan layers the reader may see, as currently recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from layers.indicators import indicator_progress
from layers.ledger import target_rows
from layers.plan import get_catalog
from layers.plan.models import Target
from layers.progress import (
    AT_RISK_RATIO,
    ON_TRACK_RATIO,
    STATUS_LABELS,
    Quarter,
    TargetProgress,
    district_names,
    progress_as_of,
    ranking,
)
from layers.registry import get_registry

DEMO_NOTE = "本报告所用数据为演示数据（合成数据，非官方数据）。"
STATUS_ORDER = ["met", "on_track", "at_risk", "behind", "missed"]
LEDGER_LAYERS = (
    "vacated_land", "urban_villages", "old_compounds", "planned_roads", "parking_sites", "resettlement_housing",
    "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets", "core_area_projects",
)
"""Layers with the ledger attributes (实施主体, 投资, 资金来源) of migration 0010."""
OVERDUE_EXAMPLES = 6


def num(value: float | int | None, digits: int = 3) -> str:
    """A number for people: thousands separators, at most ``digits`` decimals, no trailing zeros."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def quarter_of(day: dt.date) -> Quarter:
    """The quarter a date falls in."""
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def last_complete_quarter(as_of: dt.date) -> Quarter:
    """The latest quarter that has ended on or before ``as_of`` (the ranking of a report for a date)."""
    q = quarter_of(as_of)
    return q if q.end == as_of else q.previous()


def target_row(r: TargetProgress) -> dict[str, Any]:
    """One summary row: the record of :meth:`TargetProgress.as_dict`, formatted."""
    d = r.as_dict()
    catalog = get_catalog()
    return {
        "target": d["target"], "task": d["task"], "title": d["title"], "kind": r.target.kind_label,
        "target_value": num(d["target_value"]), "actual": num(d["actual"]), "unit": d["unit"],
        "percent": num(d["percent"], 1), "expected_percent": num(d["expected_percent"], 1),
        "status": d["status"], "status_label": d["status_label"], "deadline": d["deadline"],
        "responsible": catalog.task(r.target.task).responsible_text,
        "programme": d["programme"],
    }


def indicator_row(i: dict[str, Any]) -> dict[str, Any]:
    """One indicator row, formatted."""
    return {
        "indicator": i["indicator"], "task": i["task"], "title": i["title"], "unit": i["unit"],
        "target_value": num(i["target_value"]) if i["target_value"] is not None else "持续提升",
        "value": num(i["value"]), "reported_on": i["reported_on"] or "—",
        "percent": num(i["percent"], 1) if i["percent"] is not None else "—",
        "status": i["status"], "status_label": i["status_label"],
    }


def compliance_rows(conn: psycopg.Connection[Any], as_of: dt.date) -> list[dict[str, Any]]:
    """Each cap of the catalog: features it applies to, compliant ones, violations (counts from progress)."""
    out = []
    for c in get_catalog().compliance:
        pop, ok = progress_as_of(conn, as_of, [c.population(), c.compliant()])
        share = f"{100.0 * ok.actual / pop.actual:.1f}%" if pop.actual else "—（尚无适用宗地）"
        out.append({"id": c.id, "task": c.task, "title": c.title, "source": c.source, "population": num(pop.actual),
                    "compliant": num(ok.actual), "violations": num(pop.actual - ok.actual), "share": share})
    return out


def ranking_rows(table: list[dict[str, Any]], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The ranking table of :func:`layers.progress.ranking`, formatted.

    Districts in ``names`` that have no quota in the quarter follow, unranked, so the report
    names every district.
    """
    out = []
    for r in table:
        change = r["change"]
        label = "—" if change is None else ("持平" if change == 0 else (f"上升{change}位" if change > 0
                                                                      else f"下降{-change}位"))
        out.append({**r, "score": num(r["score"], 2), "previous_rank": r["previous_rank"] or "—",
                    "change_label": label})
    ranked = {r["district_code"] for r in table}
    for code, name in sorted((names or {}).items()):
        if code not in ranked:
            out.append({"rank": "—", "district_code": code, "district_name": name, "score": "—", "targets": 0,
                        "previous_rank": "—", "change_label": "当季无分解任务，不参与排位"})
    return out


def investment(conn: psycopg.Connection[Any], layers: set[str] | None, district: str | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Planned and completed investment (万元) by district and by funding source (专项债 included)."""
    registry = get_registry()
    tables = [registry.get(lid).table for lid in LEDGER_LAYERS if layers is None or lid in layers]
    if not tables:
        return [], []
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT district_code, funding_source, invest_planned, invest_completed FROM {}").format(
            sql.Identifier("renewal", t)) for t in tables)
    query = sql.SQL(
        """
        SELECT district_code, funding_source, GROUPING(district_code) AS gd, GROUPING(funding_source) AS gf,
               count(*) FILTER (WHERE invest_planned IS NOT NULL) AS n,
               coalesce(sum(invest_planned), 0)::float8, coalesce(sum(invest_completed), 0)::float8,
               coalesce(sum(invest_planned) FILTER (WHERE funding_source = 'special_bond'), 0)::float8
        FROM ({union}) AS u
        WHERE %(district)s::text IS NULL OR district_code = %(district)s
        GROUP BY GROUPING SETS ((district_code), (funding_source), ())
        """
    ).format(union=union)
    rows = conn.execute(query, {"district": district}).fetchall()
    names = district_names(conn)
    source_labels = {c.code: c.label for c in registry.get("old_compounds").field("funding_source").choices or []}

    def rec(name: str, n: int, planned: float, completed: float, bond: float) -> dict[str, Any]:
        return {"name": name, "projects": n, "planned": num(planned, 1), "completed": num(completed, 1),
                "percent": num(100.0 * completed / planned, 1) if planned else "—", "special_bond": num(bond, 1),
                "planned_raw": planned, "completed_raw": completed}

    by_district, by_source, total = [], [], None
    for d, f, gd, gf, n, planned, completed, bond in rows:
        if gd and gf:
            total = rec("合计", n, planned, completed, bond)
        elif not gd:
            label = names.get(d, "未落区县") if d else "未落区县"
            by_district.append((d or "", rec(label, n, planned, completed, bond)))
        else:
            by_source.append((f or "~", rec(source_labels.get(f, "未填报") if f else "未填报", n, planned, completed,
                                            bond)))
    out_d = [r for _, r in sorted(by_district, key=lambda x: x[0])]
    out_s = [r for _, r in sorted(by_source, key=lambda x: x[0])]
    if total is not None:
        out_d.append(total)
        out_s.append(total)
    return out_d, out_s


def overdue(conn: psycopg.Connection[Any], as_of: dt.date, records: Iterable[TargetProgress],
            layers: set[str] | None) -> list[dict[str, Any]]:
    """Per district, the targets whose deadline has passed unmet there, with the listed features not done."""
    names = district_names(conn)
    per: dict[str, list[dict[str, Any]]] = {}
    missed = [r for r in records if r.district_code is not None and r.status == "missed" and r.goal > 0
              and (layers is None or r.target.layer in layers)]
    registry = get_registry()
    rows_by_target: dict[str, list[tuple[Any, ...]]] = {}
    for r in missed:
        t: Target = r.target
        if t.id not in rows_by_target:
            rows_by_target[t.id] = target_rows(conn, t, as_of)
        lifecycle = registry.get(t.layer).lifecycle
        labels = {s.code: s.label for s in lifecycle.statuses} if lifecycle else {}
        pending = [row for row in rows_by_target[t.id] if row[0] == r.district_code and not row[7]]
        examples = "；".join(f"{code} {name}（{labels.get(status, '未列入') if status else '未列入'}）"
                            for _, code, name, status, *_ in pending[:OVERDUE_EXAMPLES])
        if len(pending) > OVERDUE_EXAMPLES:
            examples += f" 等{len(pending)}项"
        if not pending:  # the district's quota is a share of the city target, which exceeds the list
            examples = "清单内项目均已达到；缺口为分解任务量大于清单，需补充项目"
        per.setdefault(r.district_code or "", []).append({
            "target": t.id, "title": t.title, "deadline": t.deadline.isoformat(),
            "missing": f"差{num(r.goal - r.actual, 2)}{t.unit}；清单内未完成{len(pending)}项", "examples": examples,
        })
    return [{"code": d, "name": names.get(d, d), "count": len(items), "rows": items}
            for d, items in sorted(per.items())]


def quarterly_context(
    conn: psycopg.Connection[Any], as_of: dt.date, *, quarter: Quarter | None = None,
    layers: set[str] | None = None,
) -> dict[str, Any]:
    """Everything the quarterly template shows except the images (numbers from progress/indicators)."""
    catalog = get_catalog()
    records = progress_as_of(conn, as_of, by_district=True)
    city = [r for r in records if r.district_code is None]
    summary = [target_row(r) for r in city]
    indicators = [indicator_row(i) for i in indicator_progress(conn, as_of)]
    counts = {s: sum(1 for r in summary if r["status"] == s) for s in STATUS_ORDER}
    ind_counts = {s: sum(1 for r in indicators if r["status"] == s) for s in STATUS_ORDER}
    rank_quarter = quarter or last_complete_quarter(as_of)
    rank = ranking(conn, rank_quarter)
    programmes = []
    for p in catalog.programmes:
        rows = [r for r in summary if r["programme"] == p.number]
        if rows:
            programmes.append({"number": p.number, "label": f"{p.name}（{p.aim}）", "rows": rows})
    by_district, by_source = investment(conn, layers)
    period = (f"{rank_quarter.year}年第{rank_quarter.q}季度" if quarter is not None
              else f"截至{as_of.year}年{as_of.month}月{as_of.day}日")
    overview = (
        f"方案{len(summary)}项空间目标中，" + "，".join(f"{STATUS_LABELS[s]}{counts[s]}项" for s in STATUS_ORDER)
        + f"；{len(indicators)}项填报指标中，" + "，".join(f"{STATUS_LABELS[s]}{ind_counts[s]}项" for s in STATUS_ORDER)
        + f"，未填报{sum(1 for r in indicators if r['status'] is None)}项。"
    )
    return {
        "title": "城市更新重点任务督导通报",
        "issuer": catalog.plan.issued_by,
        "period_label": period,
        "as_of": as_of.isoformat(),
        "as_of_label": f"{as_of.year}年{as_of.month}月{as_of.day}日",
        "generated_on": dt.date.today().isoformat(),
        "supervision": "、".join(catalog.plan.supervision),
        "demo_note": DEMO_NOTE,
        "overview": overview,
        "rules_text": ("完成值≥目标值为已完成；截止日已过仍未达到为未完成；"
                       f"完成值≥应完成值的{ON_TRACK_RATIO:.0%}为进度正常，≥{AT_RISK_RATIO:.0%}为进度预警，"
                       "其余为进度滞后。应完成值按起止日期线性计算；推进类目标（“加快推进”）计已开工的项目。"),
        "responsible_note": ("方案仅在任务14（城管）、27（环保与公安、法院、检察院）、40（各部门）点名责任主体；"
                             "其余任务未点名，按方案三（三）由各县（市、区）、市直各部门负责。"),
        "summary": summary,
        "status_counts": counts,
        "indicators": indicators,
        "compliance": compliance_rows(conn, as_of),
        "ranking_quarter": str(rank_quarter),
        "ranking_as_of": rank["as_of"],
        "ranking_note": (f"按方案三（四）“每季度对任务目标推进落实情况进行督导排位”，以{rank['as_of']}为准，"
                         f"对当季在期的{len(rank['targets'])}项空间目标和{len(rank['indicators'])}项分区县填报指标，"
                         "取各区县完成率（封顶100%）的平均值排位；名次变化与上一季度比较。"),
        "ranking": ranking_rows(rank["ranking"], district_names(conn)),
        "ranking_raw": rank,
        "programmes": programmes,
        "investment_note": ("投资与资金来源按台账当前登记值汇总（实施主体、计划/完成投资、资金来源含专项债），"
                            "不随截止日期回溯。"),
        "investment_by_district": by_district,
        "investment_by_source": by_source,
        "overdue_note": "截止日期已过、区县分解任务仍未完成的目标，列出清单内尚未达到目标状态的项目。",
        "overdue": overdue(conn, as_of, records, layers),
    }


def district_context(conn: psycopg.Connection[Any], as_of: dt.date, district: str,
                     layers: set[str] | None = None) -> dict[str, Any]:
    """One district's one-page summary: its shares of the targets, its rank, its money, its overdue items."""
    names = district_names(conn)
    records = progress_as_of(conn, as_of, district=district)
    rows = [target_row(r) for r in records if r.goal > 0]
    q = last_complete_quarter(as_of)
    rank = ranking(conn, q)
    mine = next((r for r in rank["ranking"] if r["district_code"] == district), None)
    by_district, _ = investment(conn, layers, district)
    money = next((r for r in by_district if r["name"] != "合计"), None) or {"planned": "0", "completed": "0",
                                                                           "special_bond": "0"}
    late = overdue(conn, as_of, records, layers)
    late_items = late[0]["rows"] if late else []
    return {
        "district_code": district, "district_name": names.get(district, district),
        "as_of": as_of.isoformat(), "as_of_label": f"{as_of.year}年{as_of.month}月{as_of.day}日",
        "demo_note": DEMO_NOTE, "rows": rows,
        "rank_text": f"{q} 第{mine['rank']}名（得分{num(mine['score'], 2)}）" if mine else f"{q} 未参与排位",
        "investment": money,
        "overdue_text": ("逾期未完成：" + "；".join(f"{o['title']}（差{o['missing']}）" for o in late_items))
        if late_items else "无逾期未完成目标。",
    }


def data_version(conn: psycopg.Connection[Any]) -> str:
    """A fingerprint of everything a report reads (layer versions, history, indicator reports).

    Any write to a layer bumps ``renewal.layer_version`` (statement trigger); history and
    indicator reports are append-mostly, so their newest id and row count catch the rest.
    Equal fingerprints (on the same day) mean an identical report, which callers may cache.
    """
    row = conn.execute(
        """
        SELECT (SELECT coalesce(string_agg(layer || ':' || version, ',' ORDER BY layer), '')
                FROM renewal.layer_version)
               || '|' || (SELECT coalesce(max(id), 0) || ':' || count(*) FROM renewal.status_history)
               || '|' || (SELECT coalesce(max(id), 0) || ':' || count(*) FROM renewal.indicator_reports)
               || '|' || current_date
        """
    ).fetchone()
    return str(row[0]) if row else ""
