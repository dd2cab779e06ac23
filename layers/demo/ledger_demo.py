"""Demo data of issue 17 (SYNTHETIC, NOT OFFICIAL): core-area projects, ledger attributes, district reports.

- ``core_area_projects``: the 280 mu beside 解放大街 (four plots, three started by 2022, the
  last in 2023), the core road network (3.6 km² in six areas, five started by the end of 2024,
  the sixth not yet: the target is behind) and two central green-axis areas. Placed inside
  the second ring near the city centre.
- Ledger attributes of every plan layer (实施主体, 计划/完成投资 in 万元, 资金来源 with 专项债,
  old compounds' 改造类别), set in SQL from a hash of the feature code so two loads agree;
  completed investment follows the feature's current status (none before work starts, all
  of it once completed).
- District reports of the indicators with ``district_values`` (任务分解): each district of the
  main city reports its value and quota at mid-year and year end; quotas sum to the city target.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from gis.crs import MU_PER_SQUARE_METRE
from layers.demo import synth
from layers.demo.synth import DEMO, LayerData, Occupancy, doc, random_date, rect_polygon, to_deg
from layers.plan import get_catalog

SEED = synth.SEED + 170
D = dt.date

LEDGER_LAYERS = (
    "vacated_land", "urban_villages", "old_compounds", "planned_roads", "parking_sites", "resettlement_housing",
    "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets", "core_area_projects",
)
"""Layers that carry the ledger attributes (migration 0010)."""

UNITS: dict[str, list[str]] = {
    "vacated_land": ["市土地储备中心", "石家庄城市更新集团有限公司", "{d}自然资源和规划分局"],
    "urban_villages": ["{d}人民政府", "{d}城中村改造办公室", "石家庄城市更新集团有限公司"],
    "old_compounds": ["{d}住房和城乡建设局", "{d}人民政府", "{d}街道办事处"],
    "planned_roads": ["市城市管理综合行政执法局", "石家庄市政建设集团有限公司", "{d}人民政府"],
    "parking_sites": ["石家庄城市停车管理有限公司", "{d}城市管理局", "市城市管理综合行政执法局"],
    "resettlement_housing": ["{d}人民政府", "石家庄城市更新集团有限公司", "{d}住房和城乡建设局"],
    "utility_tunnels": ["石家庄市政建设集团有限公司", "石家庄城市管廊投资有限公司"],
    "waterlogging_points": ["市城市管理综合行政执法局", "{d}城市管理局"],
    "pipe_renewals": ["石家庄市热力集团有限公司", "石家庄市供水有限责任公司", "{d}城市管理局"],
    "beautiful_streets": ["{d}城市管理局", "{d}街道办事处"],
    "core_area_projects": ["石家庄市中央商务区建设指挥部", "石家庄城市更新集团有限公司"],
}
"""Plausible (invented) implementing units per layer; ``{d}`` is the district's name."""

COST_SQL: dict[str, str] = {
    # 万元 per feature, from its size (synthetic unit costs)
    "vacated_land": "t.area_mu * 12",
    "urban_villages": "t.area_mu * 95",
    "old_compounds": "greatest(t.households, 50) * 1.6",
    "planned_roads": "t.length_m * 2.4",
    "parking_sites": "greatest(t.spaces, 20) * 6",
    "resettlement_housing": "t.units * 28",
    "utility_tunnels": "t.length_m * 6.5",
    "waterlogging_points": "300 + 1200 * h.r2",
    "pipe_renewals": "t.length_m * 0.35",
    "beautiful_streets": "t.length_m * 0.8",
    "core_area_projects": "t.area_mu * 160",
}

FUNDING_CUTS = [("special_bond", 0.32), ("fiscal", 0.60), ("higher_grant", 0.75), ("social", 0.90), ("mixed", 1.0)]
"""Cumulative shares of funding sources (专项债 about a third, as tasks 44–45 steer bonds to renewal)."""


def build_core_area_projects(occ: Occupancy | None = None) -> LayerData:
    """Task 8's core-area projects: 解放大街 land (280 mu), core road network (3.6 km²), green axis."""
    rng = np.random.default_rng(SEED)
    occ = occ or Occupancy()
    layer = LayerData("core_area_projects", ["code", "name", "status", "project_type"])
    r2, _ = synth.rings_m()
    cx, cy = r2.centroid.x, r2.centroid.y
    # (type, name, mu, start date or None) in metres around the centre
    plan: list[tuple[str, str, float, dt.date | None, dt.date | None]] = [
        ("jiefang_land", "解放大街两侧地块东1", 72.0, D(2021, 9, 10), D(2022, 5, 20)),
        ("jiefang_land", "解放大街两侧地块西1", 68.0, D(2021, 11, 2), D(2022, 8, 1)),
        ("jiefang_land", "解放大街两侧地块东2", 75.0, D(2022, 4, 18), None),
        ("jiefang_land", "解放大街两侧地块西2", 65.0, D(2023, 3, 6), None),
        *[("core_roads", f"核心区骨干路网{k}号片区", 900.0, start, None)
          for k, start in enumerate([D(2021, 10, 8), D(2022, 3, 15), D(2022, 9, 1), D(2023, 5, 10),
                                     D(2024, 4, 2), None], start=1)],
        ("green_axis", "中央绿轴北段", 420.0, D(2022, 6, 1), None),
        ("green_axis", "中央绿轴南段", 380.0, None, None),
    ]
    for k, (ptype, name, mu, d_start, d_reloc) in enumerate(plan, start=1):
        area_m2 = mu / MU_PER_SQUARE_METRE
        for _ in range(2000):
            x = cx + float(rng.uniform(-3500, 3500))
            y = cy + float(rng.uniform(-3000, 3000))
            w = math.sqrt(area_m2 * float(rng.uniform(1.0, 1.6)))
            poly = rect_polygon(x, y, w, area_m2 / w, float(rng.uniform(-4, 4)))
            if r2.contains(poly) and occ.free(poly, 30.0):
                break
        occ.add(poly)
        d_plan = random_date(rng, D(2020, 10, 1), D(2021, 6, 30))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d_plan, doc(d_plan.year, 120), f"列入核心区征迁建设计划{DEMO}")]
        if d_start is not None:
            steps.append(("planned", "started", d_start, doc(d_start.year, 121), f"启动征迁建设{DEMO}"))
        if d_reloc is not None:
            steps.append(("started", "relocation", d_reloc, doc(d_reloc.year, 122), f"进入征迁{DEMO}"))
        code = f"HXQ-{k:02d}"
        layer.add((code, name + DEMO, steps[-1][1], ptype), to_deg(poly))
        layer.add_history(code, steps)
    return layer


def fill_ledger_attributes(cur: psycopg.Cursor[Any], table: str) -> None:
    """Set the ledger attributes of one layer from a hash of each feature's code (deterministic)."""
    units = UNITS[table]
    funding = " ".join(f"WHEN h.r1 < {cut} THEN '{code}'" for code, cut in FUNDING_CUTS)
    # completed share by status position: first status 0, last 1, in between proportionally
    from layers.registry import get_registry

    lifecycle = get_registry().get(table).lifecycle
    assert lifecycle is not None
    codes = lifecycle.codes
    share = " ".join(
        f"WHEN {sql.Literal(c).as_string(cur)} THEN {i / (len(codes) - 1):.4f}" for i, c in enumerate(codes)
    )
    unit_cases = " ".join(
        f"WHEN {i} THEN replace({sql.Literal(u).as_string(cur)}, '{{d}}', coalesce(h.district, '市'))"
        for i, u in enumerate(units)
    )
    extra = ""
    if table == "old_compounds":
        extra = (", reno_class = CASE WHEN h.r3 < 0.55 THEN 'basic' WHEN h.r3 < 0.85 THEN 'improvement' "
                 "ELSE 'upgrade' END")
    stmt = f"""
        UPDATE renewal.{table} AS t SET
          implementing_unit = CASE (h.r2 * {len(units)})::int % {len(units)} {unit_cases} END || '{DEMO}',
          invest_planned = round(({COST_SQL[table]} * (0.8 + 0.4 * h.r3))::numeric, 1)::float8,
          invest_completed = round(({COST_SQL[table]} * (0.8 + 0.4 * h.r3)
                                        * (CASE t.status {share} ELSE 0 END)
                                        * (0.92 + 0.08 * h.r1))::numeric, 1)::float8,
          funding_source = CASE {funding} END
          {extra}
        FROM (
          SELECT x.id,
                 ('x' || substr(md5(x.code || ':1'), 1, 8))::bit(32)::bigint / 4294967296.0 AS r1,
                 ('x' || substr(md5(x.code || ':2'), 1, 8))::bit(32)::bigint / 4294967296.0 AS r2,
                 ('x' || substr(md5(x.code || ':3'), 1, 8))::bit(32)::bigint / 4294967296.0 AS r3,
                 (SELECT d.name FROM renewal.districts AS d WHERE d.code = x.district_code) AS district
          FROM renewal.{table} AS x
        ) AS h
        WHERE h.id = t.id
    """
    cur.execute(stmt.encode())


def district_indicator_reports() -> list[tuple[str, dt.date, float, str, str, str, float]]:
    """District reports ``(indicator, date, value, source_doc, note, district_code, quota)``.

    Quotas split the city target over the main districts (weights fixed); values reach
    between 70 % and 125 % of the quota by the year end (half of it by 30 June), so the
    districts differ in the ranking. Cumulative indicators report from the year of their start.
    """
    rng = np.random.default_rng(SEED + 1)
    weights = {"130102": 0.27, "130104": 0.22, "130105": 0.26, "130108": 0.25}
    out: list[tuple[str, dt.date, float, str, str, str, float]] = []
    for ind in get_catalog().indicators:
        if not ind.district_values or ind.value is None:
            continue
        years = list(range(ind.start.year, ind.deadline.year + 1))
        for code, w in weights.items():
            quota = round(ind.value * w, 2)
            done = 0.0
            for y in years:
                full = float(rng.uniform(0.7, 1.25)) * quota / len(years)
                for date, part, kind in ((D(y, 6, 30), 0.5, "半年"), (D(y, 12, 31), 1.0, "年度")):
                    out.append((ind.id, date, round(done + full * part, 1), f"{y}年{kind}任务分解完成情况{DEMO}",
                                f"区县填报{DEMO}", code, quota))
                done += full
    return out
