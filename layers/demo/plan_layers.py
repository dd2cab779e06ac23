"""Demo data for the plan layers of migration 0003 and the reported indicators (SYNTHETIC, NOT OFFICIAL).

Resettlement housing, utility tunnels, waterlogging points, pipe renewals, beautiful
streets, the six toll stations of task 32, and officer reports of the non-spatial
indicators. Deterministic (seeded), placed near the rough geography of the city, with
dated status histories from 2019 to 2025. Numbers are set near the plan's targets so
that progress has something to show, and some targets are deliberately missed:

- housing: 2021 starts ≈ 6,100 units (target 5,987, met); 2021 completions ≈ 11,200
  (target 11,618, missed); 2021–2025 starts ≈ 17,500 (target 17,185, met);
- utility tunnels: 14 projects (11 under construction, 3 planned) of 16.2 km; one is
  still under construction at the end of 2025 (target missed);
- heating pipes ≈ 158 km completed in 2021 (met); water pipes ≈ 209 km in 2021 and the
  rest in 2022 (missed);
- 20 waterlogging areas and 20 beautiful streets done in 2021 (met, late in the year);
- six toll stations removed between 20 and 29 September 2021 (met).

Requires the foundation demo (districts) to be loaded: ``district_code`` is joined from
``renewal.districts``. Use :func:`load_plan_layers`; :func:`layers.demo.load_demo` calls it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from shapely.geometry import LineString, MultiLineString, Point

from layers.demo import synth
from layers.demo.synth import DEMO, LayerData, Occupancy, doc, random_date, rect_polygon, to_deg
from layers.registry import get_registry

SEED = synth.SEED + 100
"""Base seed of the plan layers (the foundation layers use SEED + 0…10)."""

PLAN_LAYERS = [
    "resettlement_housing", "utility_tunnels", "waterlogging_points", "pipe_renewals", "beautiful_streets",
    "toll_stations", "core_area_projects",
]

D = dt.date


def _main_point(rng: np.random.Generator, region: shapely.Geometry) -> tuple[float, float]:
    """A random metric point inside ``region`` and one of the main urban districts."""
    while True:
        x, y = (float(v) for v in rng.uniform(region.bounds[:2], region.bounds[2:]))
        if region.contains(Point(x, y)) and synth.district_of_m(x, y, synth.MAIN_DISTRICTS):
            return x, y


def _polyline(rng: np.random.Generator, x: float, y: float, length: float, region: shapely.Geometry) -> LineString:
    """A street-like polyline of ``length`` metres (2–3 legs at right angles) inside ``region``."""
    while True:
        legs = int(rng.integers(1, 4))
        parts = rng.dirichlet(np.ones(legs)) * length
        angle = float(rng.choice([0.0, 90.0, 180.0, 270.0]) + rng.uniform(-5, 5))
        pts = [(x, y)]
        for k, part in enumerate(parts):
            a = math.radians(angle + (90.0 * (1 if rng.random() < 0.5 else -1) if k else 0.0))
            angle = math.degrees(a)
            px, py = pts[-1]
            pts.append((px + part * math.cos(a), py + part * math.sin(a)))
        line = LineString(pts)
        if line.is_simple and region.contains(line):
            return line
        x, y = _main_point(rng, region)


def build_resettlement_housing(occ: Occupancy) -> LayerData:
    """Projects of 250–1,500 units: started 2019–2025, completed 2021–2025."""
    rng = np.random.default_rng(SEED + 1)
    layer = LayerData("resettlement_housing", ["code", "name", "status", "units", "start_year", "completion_year"])
    _, r3 = synth.rings_m()
    region = r3.buffer(2500.0)
    # (cohort, units to reach): earlier projects completing in 2021 (≈ 11,200 of the 11,618 target)
    cohorts: list[tuple[str | int, int]] = [
        ("early2021", 10_950), ("early2022", 2_400), (2021, 6_120), (2022, 3_480), (2023, 3_150), (2024, 2_600),
        (2025, 2_150),
    ]
    projects: list[tuple[str | int, int]] = []
    for cohort, total in cohorts:
        left = total
        while left > 0:
            u = min(int(rng.integers(250, 1500)), left)
            if 0 < left - u < 250:
                u = left
            projects.append((cohort, u))
            left -= u
    words = ["安居", "和园", "康居", "颐和", "瑞祥", "锦苑", "嘉园", "馨园", "福苑", "怡景"]
    for k, (cohort, units) in enumerate(projects, start=1):
        while True:
            x, y = _main_point(rng, region)
            area_m2 = units * float(rng.uniform(28.0, 40.0))  # site area per unit
            w = math.sqrt(area_m2 * float(rng.uniform(1.0, 1.8)))
            poly = rect_polygon(x, y, w, area_m2 / w, float(rng.uniform(-10, 10)))
            if occ.free(poly, 40.0):
                break
        occ.add(poly)
        if isinstance(cohort, str):  # started before the plan, completion in 2021 or 2022
            cy = 2021 if cohort == "early2021" else 2022
            d_start = random_date(rng, D(2019, 3, 1), D(2020, 10, 31))
            d_done = random_date(rng, D(cy, 3, 1), D(cy, 12, 20))
            start_year = d_start.year
        else:
            start_year = cohort
            d_start = random_date(rng, D(cohort, 3, 1), D(cohort, 11, 30))
            d_done = d_start + dt.timedelta(days=int(rng.integers(640, 1000)))
        d_plan = min(d_start - dt.timedelta(days=int(rng.integers(60, 200))), D(2020, 12, 31)) \
            if start_year <= 2021 else random_date(rng, D(start_year - 1, 6, 1), D(start_year - 1, 12, 31))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d_plan, doc(d_plan.year, 80), f"列入棚改安置住房计划{DEMO}"),
            ("planned", "started", d_start, doc(d_start.year, 81), f"新开工{DEMO}"),
        ]
        if d_done <= D(2025, 12, 31):
            steps.append(("started", "completed", d_done, doc(d_done.year, 82), f"基本建成{DEMO}"))
        name = f"{words[k % len(words)]}{['', '东', '西', '南', '北'][k % 5]}棚改安置住房{k:02d}号地块{DEMO}"
        layer.add((f"PGAZ-{k:03d}", name, steps[-1][1], units, start_year, d_done.year), to_deg(poly))
        layer.add_history(f"PGAZ-{k:03d}", steps)
    return layer


TUNNEL_STREETS = ["和平路", "中华大街", "裕华路", "槐安路", "体育大街", "建华大街", "友谊大街", "北二环",
                  "南二环", "塔谈大街", "东岗路", "石铜路", "珠峰大街", "太行大街"]


def build_utility_tunnels() -> LayerData:
    """14 tunnel projects totalling 16.2 km: 11 under construction in 2021, 3 planned."""
    rng = np.random.default_rng(SEED + 2)
    layer = LayerData("utility_tunnels", ["code", "name", "status", "tunnel_type", "cabins"])
    _, r3 = synth.rings_m()
    region = r3.buffer(-500.0)
    lengths = rng.dirichlet(np.full(14, 6.0)) * 16_200.0
    for k, length in enumerate(lengths, start=1):
        x, y = _main_point(rng, region)
        line = _polyline(rng, x, y, float(length), region)
        ttype = "trunk" if length > 1400 else "branch" if rng.random() < 0.8 else "cable"
        cabins = {"trunk": int(rng.integers(3, 5)), "branch": int(rng.integers(2, 4)), "cable": 1}[ttype]
        planned = k > 11
        d_plan = random_date(rng, D(2018, 3, 1), D(2019, 12, 31)) if not planned else \
            random_date(rng, D(2020, 9, 1), D(2021, 4, 30))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d_plan, doc(d_plan.year, 90), f"纳入综合管廊建设规划{DEMO}")]
        d_start = random_date(rng, D(2019, 6, 1), D(2020, 11, 30)) if not planned else \
            random_date(rng, D(2022, 3, 1), D(2023, 6, 30))
        d_start = max(d_start, d_plan + dt.timedelta(days=90))
        steps.append(("planned", "under_construction", d_start, doc(d_start.year, 91), f"开工建设{DEMO}"))
        d_done = d_start + dt.timedelta(days=int(rng.integers(600, 1300)))
        if k == 12:  # one planned project is late: not completed by the end of 2025
            d_done = D(2026, 9, 30)
        if d_done <= D(2025, 12, 31):
            steps.append(("under_construction", "completed", d_done, doc(d_done.year, 92), f"建成{DEMO}"))
        street = TUNNEL_STREETS[k - 1]
        layer.add((f"GL-{k:03d}", f"{street}综合管廊{DEMO}", steps[-1][1], ttype, cabins),
                  MultiLineString([to_deg(line).coords]))
        layer.add_history(f"GL-{k:03d}", steps)
    return layer


def build_waterlogging_points(occ: Occupancy) -> LayerData:
    """20 waterlogging areas remediated in 2021 (most in the second half) and 3 found later."""
    rng = np.random.default_rng(SEED + 3)
    layer = LayerData("waterlogging_points", ["code", "name", "status", "max_depth_cm", "works"])
    _, r3 = synth.rings_m()
    works = ["新建雨水管道", "改造雨水口", "增设强排泵站", "下穿通道排水改造", "道路竖向调整", "海绵设施改造"]
    places = ["火车站东广场", "中山路下穿", "和平路桥下", "槐安路立交", "体育大街", "建设大街", "胜利大街桥",
              "青园街", "北二环", "裕华路", "东岗路", "石岗大街", "友谊大街", "维明街", "红旗大街", "南二环",
              "西三环", "塔坛路", "谈固大街", "翟营大街", "新华路", "平安大街", "育才街"]
    for k in range(1, 24):
        while True:
            x, y = _main_point(rng, r3)
            p = Point(x, y)
            if occ.free(p, 150.0):
                break
        occ.add(p.buffer(150.0))
        if k <= 20:
            d0 = random_date(rng, D(2020, 8, 1), D(2020, 12, 31))
            d1 = random_date(rng, D(2021, 3, 1), D(2021, 7, 31))
            d2 = random_date(rng, d1 + dt.timedelta(days=45), D(2021, 12, 20))
        else:
            d0 = random_date(rng, D(2022, 6, 1), D(2022, 9, 30))
            d1 = random_date(rng, D(2023, 3, 1), D(2023, 5, 31))
            d2 = d1 + dt.timedelta(days=int(rng.integers(60, 150)))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "identified", d0, doc(d0.year, 50), f"汛期排查确定易积水区域{DEMO}"),
            ("identified", "under_works", d1, doc(d1.year, 51), f"开工治理{DEMO}"),
            ("under_works", "remediated", d2, doc(d2.year, 52), f"完成提升改造{DEMO}"),
        ]
        depth = round(float(rng.uniform(20.0, 90.0)), 0)
        layer.add((f"JSD-{k:03d}", f"{places[k - 1]}易积水区域{DEMO}", "remediated", depth,
                   works[int(rng.integers(len(works)))]), to_deg(Point(x, y)))
        layer.add_history(f"JSD-{k:03d}", steps)
    return layer


def build_pipe_renewals() -> LayerData:
    """Heating ≈ 158 km done in 2021; water ≈ 209 km done in 2021, the rest (≈ 14 km) in 2022."""
    rng = np.random.default_rng(SEED + 4)
    layer = LayerData("pipe_renewals", ["code", "name", "status", "pipe_type", "diameter_mm", "year"])
    _, r3 = synth.rings_m()
    region = r3.buffer(1500.0)
    k = 0
    # (pipe type, km, completion window)
    batches = [("heating", 158.0, D(2021, 4, 15), D(2021, 10, 31)),
               ("water", 209.0, D(2021, 3, 1), D(2021, 12, 20)),
               ("water", 14.0, D(2022, 3, 1), D(2022, 9, 30))]
    for pipe_type, km, lo, hi in batches:
        left = km * 1000.0
        while left > 0:
            seg = min(float(rng.uniform(1500.0, 5000.0)), left)
            if 0 < left - seg < 800.0:
                seg = left
            left -= seg
            k += 1
            x, y = _main_point(rng, region)
            line = _polyline(rng, x, y, seg, region)
            d_done = random_date(rng, lo, hi)
            d_start = d_done - dt.timedelta(days=int(rng.integers(40, 120)))
            d_plan = min(D(2021, 1, 20), d_start - dt.timedelta(days=15)) if lo.year == 2021 else D(2021, 11, 15)
            steps: list[tuple[str | None, str, dt.date, str, str]] = [
                (None, "planned", d_plan, doc(d_plan.year, 55), f"列入年度管网改造计划{DEMO}"),
                ("planned", "under_construction", d_start, doc(d_start.year, 56), f"开工{DEMO}"),
                ("under_construction", "completed", d_done, doc(d_done.year, 57), f"完工{DEMO}"),
            ]
            label = "供热" if pipe_type == "heating" else "供水"
            diameter = int(rng.choice([200, 300, 400, 500, 600, 800] if pipe_type == "heating" else
                                      [100, 150, 200, 300, 400, 600]))
            code = f"GW-{k:04d}"
            layer.add((code, f"{label}管网改造工程{k:03d}标段{DEMO}", "completed", pipe_type, diameter,
                       d_done.year), MultiLineString([to_deg(line).coords]))
            layer.add_history(code, steps)
    return layer


STREET_NAMES = ["中山路", "解放大街", "自强路", "民族路", "育才街", "平安大街", "胜利大街", "建设大街", "维明街",
                "光华路", "新华路", "联盟路", "石岗大街", "红旗大街", "东风路", "休门街", "金马街区", "正东街区",
                "西美街区", "宁安街区"]


def build_beautiful_streets() -> LayerData:
    """20 beautiful blocks / boutique streets, accepted from August to December 2021."""
    rng = np.random.default_rng(SEED + 5)
    layer = LayerData("beautiful_streets", ["code", "name", "status", "kind", "year"])
    r2, _ = synth.rings_m()
    region = r2.buffer(1000.0)
    for k, street in enumerate(STREET_NAMES, start=1):
        kind = "block" if street.endswith("街区") or k % 3 == 0 else "street"
        x, y = _main_point(rng, region)
        line = _polyline(rng, x, y, float(rng.uniform(600.0, 2200.0)), region)
        d0 = random_date(rng, D(2021, 2, 1), D(2021, 3, 31))
        d1 = random_date(rng, D(2021, 4, 1), D(2021, 6, 30))
        d2 = random_date(rng, D(2021, 8, 1), D(2021, 12, 15))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d0, doc(2021, 60), f"列入创建名单{DEMO}"),
            ("planned", "under_works", d1, doc(2021, 61), f"开始创建{DEMO}"),
            ("under_works", "accepted", d2, doc(2021, 62), f"通过验收{DEMO}"),
        ]
        label = "美丽街区" if kind == "block" else "精品街道"
        layer.add((f"MLJQ-{k:03d}", f"{street}{label}{DEMO}", "accepted", kind, 2021),
                  MultiLineString([to_deg(line).coords]))
        layer.add_history(f"MLJQ-{k:03d}", steps)
    return layer


TOLL_STATIONS = [
    # name, expressway, approx lon/lat (示意), removal date
    ("裕华路收费站", "石黄高速", 114.640, 38.036, D(2021, 9, 28)),
    ("石清路收费站", "南绕城高速", 114.420, 37.972, D(2021, 9, 25)),
    ("西古城收费站", "石太高速", 114.392, 38.052, D(2021, 9, 29)),
    ("西兆通收费站", "南绕城高速", 114.560, 37.968, D(2021, 9, 22)),
    ("南新城收费站", "西柏坡高速", 114.392, 38.008, D(2021, 9, 26)),
    ("北五女收费站", "新元高速", 114.470, 38.118, D(2021, 9, 20)),
]


def build_toll_stations() -> LayerData:
    """The six toll stations of task 32 (approximate positions), all removed before 30 September 2021."""
    layer = LayerData("toll_stations", ["code", "name", "status", "expressway"])
    for k, (name, road, lon, lat, removed) in enumerate(TOLL_STATIONS, start=1):
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "operating", D(2005 + k, 7, 1), f"高速公路收费站设置批复{DEMO}", f"设站收费{DEMO}"),
            ("operating", "removed", removed, doc(2021, 66), f"绕城高速以内取消收费、撤销收费站{DEMO}"),
        ]
        layer.add((f"SFZ-{k:02d}", f"{name}（示意）", "removed", f"{road}（示意）"), Point(lon, lat))
        layer.add_history(f"SFZ-{k:02d}", steps)
    return layer


def build_plan_layers() -> list[LayerData]:
    """Every plan layer, in loading order."""
    occ = Occupancy()
    from layers.demo.ledger_demo import build_core_area_projects

    return [build_resettlement_housing(occ), build_utility_tunnels(), build_waterlogging_points(occ),
            build_pipe_renewals(), build_beautiful_streets(), build_toll_stations(), build_core_area_projects(occ)]


# --------------------------------------------------------------------------- indicators

INDICATOR_PATHS: dict[str, list[float]] = {
    # baseline at the end of 2020, then the value reported at the end of 2021 … 2025 (synthetic)
    "urbanisation_rate": [70.6, 71.6, 72.4, 73.2, 73.9, 74.6],
    "digital_economy_share": [33.0, 36.0, 39.5, 42.0, 44.5, 46.8],
    "economic_openness": [18.0, 19.5, 21.0, 22.6, 24.1, 25.4],
    "energy_intensity_cut": [0.0, 3.6, 7.4, 11.0, 14.8, 19.3],
    "pm25": [58.0, 51.0, 50.0, 49.5, 48.0, 46.0],
    "gdp": [5935.0, 6490.0, 7100.0, 7534.0, 8203.0, 8783.0],
    "leading_industries_revenue": [5200.0, 6000.0, 6900.0, 7800.0, 8700.0, 9600.0],
    "listed_companies": [0.0, 18.0, 39.0, 58.0, 81.0, 104.0],
    "key_project_investment_2021": [0.0, 861.0, 861.0, 861.0, 861.0, 861.0],
    "innovation_platforms": [640.0, 750.0, 860.0, 960.0, 1050.0, 1130.0],
    "high_tech_enterprises": [1950.0, 2500.0, 2960.0, 3380.0, 3720.0, 4060.0],
    "tech_smes": [7600.0, 9400.0, 11000.0, 12500.0, 13800.0, 14900.0],
    "substations_220kv": [0.0, 1.0, 1.0, 3.0, 4.0, 5.0],
    "taihang_greening_mu": [0.0, 2.5, 6.0, 9.6, 13.2, 13.2],
    "afforestation_mu": [0.0, 47.0, 96.0, 143.0, 190.0, 236.0],
    "pm25_decline_2021": [0.0, 12.9, 12.9, 12.9, 12.9, 12.9],
    "surface_water_good_share": [45.0, 50.0, 52.0, 54.5, 56.0, 58.0],
    "polluted_land_safe_use": [90.0, 92.0, 93.0, 94.0, 94.6, 95.1],
    "remote_clinics": [0.0, 226.0, 240.0, 240.0, 240.0, 240.0],
    "devolved_powers": [0.0, 23.0, 23.0, 23.0, 23.0, 23.0],
    # issue 17: targets the catalog had left out
    "fdi_growth_over_province": [0.0, 1.2, 1.8, 2.3, 2.1, 2.6],
    "groundwater_rising_share": [38.0, 52.0, 66.0, 78.0, 88.0, 96.0],
    "utility_tunnel_pipe_share": [41.0, 46.0, 52.0, 57.0, 61.0, 66.0],
    "gas_online_payment_coverage": [62.0, 100.0, 100.0, 100.0, 100.0, 100.0],
    "listed_companies_main_boards": [0.0, 2.0, 4.0, 5.0, 7.0, 9.0],
    "agri_processing_clusters_2021": [0.0, 2.0, 2.0, 2.0, 2.0, 2.0],
    "agri_leading_firms_2021": [0.0, 2.0, 2.0, 2.0, 2.0, 2.0],
    "staple_food_demo_firms_2021": [0.0, 2.0, 2.0, 2.0, 2.0, 2.0],
    "farm_output_growth": [0.0, 4.1, 4.4, 4.6, 4.7, 4.8],
    **{f"provincial_prep_projects_{y}": [0.0] * (y - 2020) + [v] * (2026 - y)
       for y, v in zip(range(2021, 2026), [163.0, 158.0, 151.0, 146.0, 155.0], strict=True)},
    **{f"bth_projects_{y}": [0.0] * (y - 2020) + [v] * (2026 - y)
       for y, v in zip(range(2021, 2026), [12.0, 11.0, 9.0, 13.0, 10.0], strict=True)},
    "innovation_platforms_added": [0.0, 32.0, 61.0, 88.0, 121.0, 153.0],
    **{f"ecological_water_{y}": [0.0] * (y - 2020) + [v] * (2026 - y)
       for y, v in zip(range(2021, 2026), [5600.0, 5200.0, 4800.0, 5300.0, 5500.0], strict=True)},
    "air_quality_rank_from_bottom_2021": [4.0, 12.0, 12.0, 12.0, 12.0, 12.0],
    "new_energy_vehicle_share": [46.0, 58.0, 70.0, 81.0, 90.0, 97.0],
    "sewage_plants_upgraded_share": [55.0, 68.0, 80.0, 90.0, 96.0, 100.0],
    "worst_class_sections": [3.0, 2.0, 1.0, 1.0, 0.0, 0.0],
    "reform_pilot_experiences_2021": [0.0, 3.0, 3.0, 3.0, 3.0, 3.0],
    "dev_zone_revenue_growth": [0.0, 9.2, 10.4, 10.9, 10.1, 10.6],
    "internet_hospitals_2021": [0.0, 2.0, 2.0, 2.0, 2.0, 2.0],
}


def indicator_reports() -> list[tuple[str, dt.date, float, str, str]]:
    """Officer reports ``(indicator_id, report_date, value, source_doc, note)``.

    A baseline on 2020-12-31, the annual value on 31 December of each year (statistics
    bulletins come later, but the value is *as of* the year end), and a mid-year estimate
    on 30 June linearly between them; a 2021 correction shows the history.
    """
    out: list[tuple[str, dt.date, float, str, str]] = []
    for ind, path in INDICATOR_PATHS.items():
        out.append((ind, D(2020, 12, 31), path[0], f"2020年统计公报{DEMO}", f"基期值{DEMO}"))
        for i, year in enumerate(range(2021, 2026), start=1):
            mid = round((path[i - 1] + path[i]) / 2, 2)
            out.append((ind, D(year, 6, 30), mid, f"{year}年上半年统计月报{DEMO}", f"半年预计{DEMO}"))
            out.append((ind, D(year, 12, 31), path[i], f"{year}年统计公报{DEMO}", f"年度值{DEMO}"))
    # a correction: the 2021 GDP was first reported lower, then revised (both rows are kept)
    out.append(("gdp", D(2021, 12, 31), 6535.0, f"2021年统计公报（修订）{DEMO}", f"第四次经济普查后修订{DEMO}"))
    return out


# --------------------------------------------------------------------------- loading


def _load_issue17(conn: psycopg.Connection[Any]) -> None:
    """Ledger attributes of every plan layer and the district indicator reports (issue 17)."""
    from layers.demo.ledger_demo import LEDGER_LAYERS, district_indicator_reports, fill_ledger_attributes

    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT set_config('renewal.audit_mode', 'off', true)")
        for table in LEDGER_LAYERS:
            fill_ledger_attributes(cur, table)
        with cur.copy(
            "COPY renewal.indicator_reports (indicator_id, report_date, value, source_doc, note, district_code, "
            "district_quota, reported_by) FROM STDIN"
        ) as copy:
            for row in district_indicator_reports():
                copy.write_row((*row, "demo"))


def _load(cur: psycopg.Cursor[Any], data: LayerData, geometry_type: str) -> None:
    from layers.demo.loader import begin_layer, load_python_layer

    begin_layer(cur, data.table)
    load_python_layer(cur, data, geometry_type)


def load_plan_layers(conninfo: str) -> dict[str, int]:
    """(Re)load the plan layers and the indicator reports (synthetic demo data).

    Each layer is replaced in its own transaction, with its status history (written by
    the loader itself, ``renewal.history_mode = 'manual'``; audit off for synthetic data).
    Indicator reports are replaced as a whole. The foundation demo's ``renewal.districts``
    must be loaded first (``district_code`` is joined from it).

    Returns
    -------
    dict[str, int]
        Features per layer id, plus ``indicator_reports``.
    """
    registry = get_registry()
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for data in build_plan_layers():
            layer = registry.get(data.table)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT set_config('renewal.audit_mode', 'off', true)")
                _load(cur, data, layer.geometry_type)
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("renewal", layer.table)))
                row = cur.fetchone()
                counts[layer.id] = int(row[0]) if row else 0
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("renewal", layer.table)))  # as loader.py
        reports = indicator_reports()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("ALTER TABLE renewal.indicator_reports DISABLE TRIGGER indicator_reports_append_only")
            cur.execute("DELETE FROM renewal.indicator_reports WHERE reported_by = 'demo'")
            cur.execute("ALTER TABLE renewal.indicator_reports ENABLE TRIGGER indicator_reports_append_only")
            with cur.copy(
                "COPY renewal.indicator_reports (indicator_id, report_date, value, source_doc, note, reported_by) "
                "FROM STDIN"
            ) as copy:
                for row in reports:
                    copy.write_row((*row, "demo"))
        counts["indicator_reports"] = len(reports)
        _load_issue17(conn)
        conn.execute("ANALYZE renewal.status_history")
    return counts
