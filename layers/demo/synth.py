"""Generate the synthetic demo city in Python (every layer except the land parcels).

SYNTHETIC, APPROXIMATE, NOT OFFICIAL. Positions follow the rough geography of
Shijiazhuang (ring-road boxes, the Hutuo River, named vacated sites from
``/work/shared/reference/README.md``); shapes, names, counts and dates are invented
to exercise the toolkit against the plan's targets. District outlines are a
simplified derivative of DataV.GeoAtlas (see ``layers/demo/README.md``).

Everything is drawn from :func:`numpy.random.default_rng` with a fixed seed per layer,
so two runs give identical features. Geometry is built in EPSG:4547 metres
(CGCS2000 Gauss-Krüger 114°E, as the database measures areas) and stored as
EPSG:4490 longitude/latitude.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, box, shape

from gis.crs import MU_PER_SQUARE_METRE, area_mu, transformer
from layers.city import SHIJIAZHUANG

SEED = 20210101
"""Base seed; each layer uses ``SEED + k`` so layers do not shift each other."""

RING2_BOX = (114.435, 38.005, 114.575, 38.083)
RING3_BOX = (114.41, 37.985, 114.62, 38.105)
CENTRE = (114.50, 38.04)
MAIN_DISTRICTS = ("130102", "130104", "130105", "130108")
PLAN_DATE = dt.date(2021, 1, 15)
"""Date of the (demo) plan document that lists every project."""
DEMO = "（演示）"


@dataclass
class LayerData:
    """Rows of one layer ready for COPY, plus their status histories.

    ``columns`` excludes ``geom``; ``rows[i]`` matches ``columns`` and ``geoms[i]`` is a
    shapely geometry in EPSG:4490. ``history`` rows are
    ``(code, seq, from_status, to_status, effective_date, source_doc, note)``.
    """

    table: str
    columns: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    geoms: list[shapely.Geometry] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    district_join: bool = True
    """Fill ``district_code`` by a point-on-surface join after loading."""

    def add(self, values: Sequence[Any], geom: shapely.Geometry) -> None:
        """Append one feature."""
        if len(values) != len(self.columns):
            raise ValueError(f"{self.table}: {len(values)} values for {len(self.columns)} columns")
        self.rows.append(tuple(values))
        self.geoms.append(geom)

    def add_history(self, code: str, steps: Iterable[tuple[str | None, str, dt.date, str, str]]) -> None:
        """Append the chain of status changes of one feature (from, to, date, doc, note)."""
        for seq, (src, dst, date, doc, note) in enumerate(steps):
            self.history.append((code, seq, src, dst, date, doc, note))


# --------------------------------------------------------------------------- geometry helpers


def to_m(geom: shapely.Geometry) -> shapely.Geometry:
    """EPSG:4490 lon/lat → EPSG:4547 metres."""
    tr = transformer(4490, 4547)
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def to_deg(geom: shapely.Geometry) -> shapely.Geometry:
    """EPSG:4547 metres → EPSG:4490 lon/lat."""
    tr = transformer(4547, 4490)
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def polygons_only(geom: shapely.Geometry, min_area: float = 0.0) -> MultiPolygon:
    """A valid MultiPolygon with the polygonal parts of ``geom`` (parts below ``min_area`` dropped)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > min_area]
    out: list[Polygon] = []
    for p in parts:
        out.extend(q for q in shapely.get_parts(p) if isinstance(q, Polygon))
    return MultiPolygon(out)


def multiline(geom: shapely.Geometry) -> MultiLineString:
    """A MultiLineString with the linear parts of ``geom``."""
    lines = [g for g in shapely.get_parts(shapely.line_merge(geom)) if isinstance(g, LineString)]
    return MultiLineString(lines)


def scale_to_mu(poly_deg: shapely.Geometry, target_mu: float) -> shapely.Geometry:
    """Scale a lon/lat polygon about its centroid (in metres) so its area is ``target_mu``."""
    geom = poly_deg
    for _ in range(4):
        actual = area_mu(geom, SHIJIAZHUANG.area_srid)
        if abs(actual - target_mu) < 1e-7 * target_mu:
            break
        f = math.sqrt(target_mu / actual)
        m = to_m(geom)
        c = m.centroid
        geom = to_deg(shapely.affinity.scale(m, f, f, origin=c))
    return geom


def rounded_box_deg(bounds: tuple[float, float, float, float], radius_m: float) -> Polygon:
    """A lon/lat box with corners rounded by ``radius_m`` (built in metres)."""
    m = to_m(box(*bounds))
    rounded = m.buffer(-radius_m, join_style="mitre").buffer(radius_m, quad_segs=6)
    return to_deg(rounded)


def star_polygon(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 9) -> Polygon:
    """An irregular star-shaped (hence simple) polygon around a centre, in metres."""
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    angles += np.linspace(0, 0.3, n)  # avoid near-duplicate angles
    radii = r * rng.uniform(0.75, 1.15, n)
    pts = np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])
    poly = Polygon(pts)
    return poly if poly.is_valid else Polygon(pts).convex_hull


def rect_polygon(cx: float, cy: float, w: float, h: float, angle_deg: float) -> Polygon:
    """A rotated rectangle centred on (cx, cy), in metres."""
    poly = box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    return shapely.affinity.rotate(poly, angle_deg, origin=(cx, cy))


def random_date(rng: np.random.Generator, start: dt.date, end: dt.date) -> dt.date:
    """A uniform date in [start, end]."""
    days = (end - start).days
    return start + dt.timedelta(days=int(rng.integers(0, max(days, 0) + 1)))


def doc(year: int, n: int) -> str:
    """A (demo) source document reference."""
    return f"石政办〔{year}〕{n}号{DEMO}"


class Occupancy:
    """Footprints already placed (metres), to keep synthetic polygons from overlapping."""

    def __init__(self, cell: float = 500.0) -> None:
        self.cell = cell
        self.grid: dict[tuple[int, int], list[shapely.Geometry]] = {}

    def _cells(self, geom: shapely.Geometry) -> Iterable[tuple[int, int]]:
        x0, y0, x1, y1 = geom.bounds
        for i in range(int(x0 // self.cell), int(x1 // self.cell) + 1):
            for j in range(int(y0 // self.cell), int(y1 // self.cell) + 1):
                yield i, j

    def free(self, geom: shapely.Geometry, gap: float = 20.0) -> bool:
        """Whether ``geom`` keeps ``gap`` metres from everything placed so far."""
        probe = geom.buffer(gap)
        for c in self._cells(probe):
            for other in self.grid.get(c, ()):
                if probe.intersects(other):
                    return False
        return True

    def add(self, geom: shapely.Geometry) -> None:
        """Register a footprint."""
        for c in self._cells(geom):
            self.grid.setdefault(c, []).append(geom)


# --------------------------------------------------------------------------- shared geography


@dataclass(frozen=True)
class District:
    """A district of the committed approximate coverage."""

    code: str
    name: str
    geom: MultiPolygon  # lon/lat


@cache
def districts() -> tuple[District, ...]:
    """The 22 simplified district outlines committed in ``data/districts_approx.geojson``."""
    text = (resources.files("layers.demo") / "data" / "districts_approx.geojson").read_text(encoding="utf-8")
    fc = json.loads(text)
    out = []
    for f in fc["features"]:
        geom = shape(f["geometry"])
        out.append(District(str(f["properties"]["adcode"]), f["properties"]["name"], polygons_only(geom)))
    return tuple(out)


@cache
def city_deg() -> shapely.Geometry:
    """Union of all districts (lon/lat)."""
    return shapely.union_all([d.geom for d in districts()])


@cache
def district_m(code: str) -> shapely.Geometry:
    """One district in metres, prepared for fast point tests."""
    geom = to_m(next(d.geom for d in districts() if d.code == code))
    shapely.prepare(geom)
    return geom


@cache
def rings() -> tuple[Polygon, Polygon]:
    """The approximate 2nd- and 3rd-ring polygons (lon/lat), with rounded corners."""
    return rounded_box_deg(RING2_BOX, 600.0), rounded_box_deg(RING3_BOX, 900.0)


@cache
def rings_m() -> tuple[shapely.Geometry, shapely.Geometry]:
    """The ring polygons in metres, prepared."""
    r2, r3 = (to_m(r) for r in rings())
    shapely.prepare(r2)
    shapely.prepare(r3)
    return r2, r3


def district_of_m(x: float, y: float, codes: Iterable[str]) -> str | None:
    """Which of ``codes`` contains the metric point, if any."""
    p = Point(x, y)
    for code in codes:
        if district_m(code).contains(p):
            return code
    return None


def ring_position_m(x: float, y: float) -> str:
    """``inside_2nd``, ``between_2nd_3rd`` or ``outside_3rd`` for a metric point."""
    r2, r3 = rings_m()
    p = Point(x, y)
    if r2.contains(p):
        return "inside_2nd"
    if r3.contains(p):
        return "between_2nd_3rd"
    return "outside_3rd"


# River points: GCJ-02 points of the 正定县 southern boundary from the reference README,
# converted to CGCS2000, extended upstream (west) and downstream (east-south-east).
RIVER_GCJ02 = [(114.393, 38.252), (114.435, 38.177), (114.502, 38.129), (114.664, 38.103)]
RIVER_WEST = [(114.300, 38.268), (114.330, 38.262), (114.358, 38.261)]
RIVER_EAST = [(114.735, 38.089), (114.800, 38.071), (114.840, 38.058)]


@cache
def river_m() -> LineString:
    """The demo Hutuo River centre line in metres (smoothed, gently meandering)."""
    from gis.chinacrs import gcj02_to_wgs84

    gx, gy = gcj02_to_wgs84([p[0] for p in RIVER_GCJ02], [p[1] for p in RIVER_GCJ02])
    pts = [*RIVER_WEST, *zip(gx.tolist(), gy.tolist(), strict=True), *RIVER_EAST]
    line = to_m(LineString(pts))
    coords = np.asarray(line.coords)
    for _ in range(4):  # Chaikin corner cutting
        q = 0.75 * coords[:-1] + 0.25 * coords[1:]
        r = 0.25 * coords[:-1] + 0.75 * coords[1:]
        mid = np.empty((2 * len(q), 2))
        mid[0::2], mid[1::2] = q, r
        coords = np.vstack([coords[:1], mid, coords[-1:]])
    smooth = LineString(coords).segmentize(200.0)
    c = np.asarray(smooth.coords)
    # meander: offset perpendicular to the local direction
    d = np.gradient(c, axis=0)
    n = np.column_stack([-d[:, 1], d[:, 0]])
    n /= np.linalg.norm(n, axis=1)[:, None]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))])
    offset = 180.0 * np.sin(s / 2600.0) + 90.0 * np.sin(s / 900.0 + 1.0)
    offset[:5] *= np.linspace(0, 1, 5)
    offset[-5:] *= np.linspace(1, 0, 5)
    return LineString(c + n * offset[:, None])


# --------------------------------------------------------------------------- reference layers


def build_districts() -> LayerData:
    """``districts``: code = district_code = adcode."""
    layer = LayerData("districts", ["code", "name", "district_code"], district_join=False)
    for d in districts():
        layer.add((d.code, d.name, d.code), d.geom)
    return layer


def build_ring_zones() -> LayerData:
    """``ring_zones``: inside the 2nd ring, between the 2nd and 3rd, outside the 3rd."""
    r2, r3 = rings()
    layer = LayerData("ring_zones", ["code", "name", "zone"], district_join=False)
    layer.add(("inside_2nd", "二环内（示意）", "inside_2nd"), polygons_only(r2))
    layer.add(("between_2nd_3rd", "二环至三环（示意）", "between_2nd_3rd"), polygons_only(r3.difference(r2)))
    layer.add(("outside_3rd", "三环外（示意）", "outside_3rd"), polygons_only(city_deg().difference(r3), 1e-9))
    return layer


def build_ring_roads() -> LayerData:
    """``ring_roads``: the outlines of the two ring polygons."""
    r2, r3 = rings()
    layer = LayerData("ring_roads", ["code", "name", "ring"], district_join=False)
    layer.add(("ring2", "二环路（示意）", 2), MultiLineString([r2.exterior.coords]))
    layer.add(("ring3", "三环路（示意）", 3), MultiLineString([r3.exterior.coords]))
    return layer


def river_reaches_m() -> list[tuple[str, str, LineString]]:
    """The river split into a western, a main urban and an eastern reach (metres)."""
    line = river_m()
    total = line.length
    cuts = [0.0, 0.22 * total, 0.74 * total, total]
    names = ["滹沱河西段（示意）", "滹沱河主城区段（示意）", "滹沱河东段（示意）"]
    return [
        (f"HTH-{k + 1:02d}", names[k], shapely.ops.substring(line, cuts[k], cuts[k + 1]))
        for k in range(3)
    ]


def build_hutuo_river() -> LayerData:
    """``hutuo_river``: three reaches, about 50 km in all."""
    layer = LayerData("hutuo_river", ["code", "name"], district_join=False)
    for code, name, reach in river_reaches_m():
        layer.add((code, name), MultiLineString([to_deg(reach).coords]))
    return layer


def build_hutuo_belt() -> LayerData:
    """``hutuo_belt_zones``: ecological buffer, flood channel, water source and economic blocks."""
    layer = LayerData("hutuo_belt_zones", ["code", "name", "zone_type"])
    city_m = to_m(city_deg())
    reaches = river_reaches_m()
    whole = river_m()

    def add(code: str, name: str, zone: str, geom_m: shapely.Geometry) -> None:
        geom = polygons_only(to_deg(geom_m.intersection(city_m)), 1e-8)
        if not geom.is_empty:
            layer.add((code, name, zone), geom)

    for k, (_, rname, reach) in enumerate(reaches):
        label = rname.replace("滹沱河", "").replace("（示意）", "")
        add(f"ECO-{k + 1:02d}", f"滹沱河生态涵养区·{label}（示意）", "ecological", reach.buffer(1000.0, quad_segs=4))
    main_east = shapely.ops.substring(whole, 0.22 * whole.length, whole.length)
    # right-hand side of a west→east line is the south bank
    add("FLD-01", "滹沱河行洪通道（示意）", "flood_channel", main_east.buffer(-800.0, single_sided=True))
    west = shapely.ops.substring(whole, 0.0, 0.30 * whole.length)
    add("WSP-01", "滹沱河地下水饮用水水源保护区（示意）", "water_source",
        west.buffer(2200.0, single_sided=True).union(west.buffer(600.0)))
    # economic blocks 1–4 km from the river, cut into ~3.5 km strips along x
    near = whole.buffer(1000.0)
    north = main_east.buffer(4000.0, single_sided=True).difference(near)
    south = main_east.buffer(-4000.0, single_sided=True).difference(near)
    x0, _, x1, _ = main_east.bounds
    y_lo, y_hi = main_east.bounds[1] - 6000.0, main_east.bounds[3] + 6000.0
    north_types = ["urban_agriculture", "emerging_industry", "digital_economy", "urban_agriculture"]
    south_types = ["modern_services", "digital_economy", "emerging_industry", "modern_services"]
    labels = {
        "emerging_industry": "战略性新兴产业区", "digital_economy": "数字经济区",
        "modern_services": "现代服务业区", "urban_agriculture": "都市农业区",
    }
    width = 3500.0
    n_strips = int(math.ceil((x1 - x0) / width))
    k = 0
    for side, band, types in (("北", north, north_types), ("南", south, south_types)):
        for s in range(n_strips):
            strip = box(x0 + s * width, y_lo, x0 + (s + 1) * width, y_hi)
            piece = band.intersection(strip)
            if piece.area < 1.5e6:
                continue
            zone = types[s % len(types)]
            k += 1
            add(f"BLT-{k:02d}", f"滹沱河{side}岸{labels[zone]}{s + 1:02d}（示意）", zone, piece)
    return layer


# --------------------------------------------------------------------------- renewal layers


def _sample_point(rng: np.random.Generator, bounds: tuple[float, float, float, float]) -> tuple[float, float]:
    x0, y0, x1, y1 = bounds
    return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))


VILLAGE_A = "东西南北前后大小上下"
VILLAGE_B = "王李张刘赵杨陈马郭宋高孙范任柳韩谈岳槐宁彭冯吕"
VILLAGE_C = ["庄", "营", "村", "屯", "寨", "堡", "家庄", "里"]


def _unique_names(rng: np.random.Generator, n: int, make: Any) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = make(rng)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def build_urban_villages(occ: Occupancy) -> LayerData:
    """``urban_villages``: 73 projects, all started in 2021."""
    rng = np.random.default_rng(SEED + 6)
    layer = LayerData(
        "urban_villages", ["code", "name", "status", "households", "start_year", "target_year"]
    )
    quotas = [("130102", 17), ("130104", 14), ("130105", 15), ("130108", 16),
              ("130109", 2), ("130110", 3), ("130111", 3), ("130123", 3)]
    r2, r3 = rings_m()
    r3_wide = r3.buffer(3000.0)
    r3_far = r3.buffer(7000.0)
    names = _unique_names(
        rng, 73,
        lambda g: VILLAGE_A[g.integers(len(VILLAGE_A))] + VILLAGE_B[g.integers(len(VILLAGE_B))]
        + VILLAGE_C[g.integers(len(VILLAGE_C))],
    )
    statuses = ["planned", "started", "acquisition", "demolition", "construction", "completed"]
    k = 0
    for dcode, quota in quotas:
        dist = district_m(dcode)
        region = dist.intersection(r3_wide if dcode in MAIN_DISTRICTS else r3_far).difference(r2)
        if dcode in MAIN_DISTRICTS:
            region = region.union(dist.intersection(r2))  # a few inside the 2nd ring
        shapely.prepare(region)
        placed = 0
        while placed < quota:
            x, y = _sample_point(rng, region.bounds)
            if not region.contains(Point(x, y)):
                continue
            if r2.contains(Point(x, y)) and rng.random() > 0.08:
                continue
            target = float(np.clip(rng.lognormal(math.log(200.0), 0.6), 50.0, 600.0))
            r = math.sqrt(target / MU_PER_SQUARE_METRE / math.pi) / 0.95
            poly = star_polygon(rng, x, y, r)
            if not region.contains(poly) or not occ.free(poly, 60.0):
                continue
            geom_deg = scale_to_mu(to_deg(poly), round(target, 1))
            if not geom_deg.is_valid:
                continue
            occ.add(to_m(geom_deg))
            k += 1
            placed += 1
            code = f"CZC-2021-{k:03d}"
            a = area_mu(geom_deg, SHIJIAZHUANG.area_srid)
            households = int(round(a * rng.uniform(6.0, 14.0)))
            # final stage: completed 30 %, construction 32 %, demolition 18 %, acquisition 12 %, started 8 %
            u = rng.random()
            final = 5 if u < 0.30 else 4 if u < 0.62 else 3 if u < 0.80 else 2 if u < 0.92 else 1
            d_planned = random_date(rng, dt.date(2020, 6, 1), dt.date(2020, 12, 20))
            d = random_date(rng, dt.date(2021, 2, 1), dt.date(2021, 11, 30))
            steps = [(None, "planned", d_planned, doc(2020, 88), f"列入城中村改造计划{DEMO}"),
                     ("planned", "started", d, doc(2021, 12), f"2021年启动{DEMO}")]
            # completed projects go faster; others spread, all dates ≤ 2026-06
            gaps = {2: (90, 300), 3: (120, 420), 4: (90, 360), 5: (500, 800)}
            fast = final == 5
            for st in range(2, final + 1):
                lo, hi = gaps[st]
                if fast:
                    lo, hi = int(lo * 0.7), int(hi * 0.7)
                d = d + dt.timedelta(days=int(rng.integers(lo, hi)))
                if d > dt.date(2026, 6, 30):
                    d = dt.date(2026, 6, 30)
                steps.append((statuses[st - 1], statuses[st], d, doc(d.year, 20 + st), f"{DEMO[1:-1]}阶段推进"))
            if final in (3, 4) and rng.random() < 0.3:  # some move on only in 2026
                src, dst, d_last, _, note = steps[-1]
                d_last = max(d_last, random_date(rng, dt.date(2026, 1, 10), dt.date(2026, 6, 30)))
                steps[-1] = (src, dst, d_last, doc(2026, 20 + final), note)
            target_year = int(min(2026, max(2023, (steps[-1][2].year if final == 5 else 2023 + rng.integers(0, 4)))))
            layer.add((code, f"{names[k - 1]}城中村改造项目{DEMO}", statuses[final], households, 2021, target_year),
                      geom_deg)
            layer.add_history(code, steps)
    return layer


COMPOUND_WORDS = [
    "建设", "和平", "胜利", "红旗", "友谊", "跃进", "东风", "光明", "前进", "团结", "育才", "民族", "新华",
    "裕华", "长安", "平安", "休门", "槐底", "联盟", "北焦", "南焦", "西里", "东里", "维明", "谈固", "塔坛",
    "彭后", "翟营", "体育", "中华", "华北", "石岗", "范西", "柏林", "建华", "青园", "电业", "纺织", "铁路",
    "邮电", "化工", "机械", "棉三", "棉四", "印染", "制药", "水泥", "轴承", "电机", "农机",
]
COMPOUND_KINDS = ["小区", "宿舍", "家属院", "生活区", "住宅小区"]


def build_old_compounds(occ: Occupancy) -> LayerData:
    """``old_compounds``: 2,000 compounds; 1,559 scheduled for 2021–2025, 652 done in 2021, 17 late."""
    rng = np.random.default_rng(SEED + 7)
    layer = LayerData(
        "old_compounds",
        ["code", "name", "status", "built_year", "buildings", "households", "floor_area_m2", "renovation_year"],
    )
    r2, r3 = rings_m()
    outer = r3.buffer(2000.0)
    bounds = outer.bounds
    n_total = 2000
    geoms: list[shapely.Geometry] = []
    while len(geoms) < n_total:
        x, y = _sample_point(rng, bounds)
        pos = ring_position_m(x, y)
        keep = {"inside_2nd": 1.0, "between_2nd_3rd": 0.42, "outside_3rd": 0.18}[pos]
        if rng.random() > keep or not outer.contains(Point(x, y)):
            continue
        if district_of_m(x, y, MAIN_DISTRICTS) is None:
            continue
        target = float(math.exp(rng.uniform(math.log(10.0), math.log(80.0))))
        area_m2 = target / MU_PER_SQUARE_METRE
        aspect = float(rng.uniform(1.0, 2.2))
        w = math.sqrt(area_m2 * aspect)
        poly = rect_polygon(x, y, w, area_m2 / w, float(rng.uniform(-12, 12)))
        if not occ.free(poly, 15.0):
            continue
        occ.add(poly)
        geoms.append(poly)
    # schedule: 652 in 2021; 2022–2025 the rest of 1,559; 251 renovated earlier; 190 unscheduled
    order = rng.permutation(n_total)
    plan: list[tuple[str, int | None]] = []
    plan += [("y2021", 2021)] * 652
    per_year = {2022: 228, 2023: 228, 2024: 226, 2025: 225}
    for y, n in per_year.items():
        plan += [(f"y{y}", y)] * n
    assert len(plan) == 1559
    plan += [("early", None)] * 251
    plan += [("unscheduled", None)] * (n_total - len(plan))
    # 17 scheduled for 2024/2025 are not completed by the end of 2025
    late = [i for i, (k, _) in enumerate(plan) if k in ("y2024", "y2025")]
    unfinished = set(rng.choice(late, size=17, replace=False).tolist())
    # feature j gets plan[order[j]]
    kind_of = [plan[int(order[j])] for j in range(n_total)]
    unfinished_idx = {j for j in range(n_total) if int(order[j]) in unfinished}
    for j, poly in enumerate(geoms):
        code = f"LJXQ-{j + 1:04d}"
        g = to_deg(poly)
        a_m2 = poly.area
        built_year = int(rng.integers(1970, 2001))
        floor_area = round(a_m2 * float(rng.uniform(0.9, 2.1)), 1)
        households = int(floor_area / rng.uniform(55.0, 85.0))
        buildings = max(1, int(round(floor_area / rng.uniform(2500.0, 6000.0))))
        name = (COMPOUND_WORDS[int(rng.integers(len(COMPOUND_WORDS)))]
                + ["", "东", "西", "南", "北", "一", "二", "三"][int(rng.integers(8))]
                + COMPOUND_KINDS[int(rng.integers(len(COMPOUND_KINDS)))] + DEMO)
        kind, year = kind_of[j]
        steps: list[tuple[str | None, str, dt.date, str, str]] = []
        if kind == "early":
            y = int(rng.integers(2012, 2021))
            year = y
            d0 = random_date(rng, dt.date(y - 1, 10, 1), dt.date(y, 2, 28))
            d1 = random_date(rng, dt.date(y, 3, 1), dt.date(y, 7, 31))
            d2 = d1 + dt.timedelta(days=int(rng.integers(60, 150)))
            steps = [(None, "pending", d0, doc(d0.year, 5), f"列入改造计划{DEMO}"),
                     ("pending", "started", d1, doc(y, 30), f"开工{DEMO}"),
                     ("started", "completed", d2, doc(d2.year, 31), f"完工{DEMO}")]
        elif kind == "unscheduled":
            steps = [(None, "pending", PLAN_DATE, doc(2021, 12), f"纳入老旧小区台账{DEMO}")]
        else:
            assert year is not None
            steps = [(None, "pending", PLAN_DATE, doc(2021, 12), f"纳入{year}年改造计划{DEMO}")]
            d1 = random_date(rng, dt.date(year, 3, 1), dt.date(year, 8, 31))
            d2 = min(d1 + dt.timedelta(days=int(rng.integers(60, 150))), dt.date(year, 12, 28))
            if j in unfinished_idx:
                if rng.random() < 0.7:  # started late in 2025, not finished
                    d1 = random_date(rng, dt.date(2025, 5, 1), dt.date(2025, 11, 30))
                    steps.append(("pending", "started", d1, doc(2025, 30), f"开工{DEMO}"))
            else:
                steps.append(("pending", "started", d1, doc(year, 30), f"开工{DEMO}"))
                steps.append(("started", "completed", d2, doc(year, 31), f"完工{DEMO}"))
        status = steps[-1][1]
        layer.add((code, name, status, built_year, buildings, households, floor_area, year), g)
        layer.add_history(code, steps)
    return layer


VACATED_NAMED = [
    # name, former owner, lon, lat (approx. WGS84), mu, planned use, handover year
    ("华药集团老厂区", "华药集团", 114.535, 38.055, 612.0, "居住、商业、公园绿地", 2021),
    ("石钢集团老厂区", "石钢集团", 114.590, 38.060, 786.0, "商业、商务、公园绿地、居住", 2023),
    ("河北师范大学老校区", "河北师范大学", 114.515, 38.035, 236.0, "教育、居住、公园绿地", 2021),
    ("河北科技大学老校区", "河北科技大学", 114.550, 38.030, 198.0, "教育、科研、居住", 2022),
    ("河北地质大学老校区", "河北地质大学", 114.560, 38.000, 172.0, "居住、公园绿地", 2022),
    ("煤矿机械厂南厂区", "煤矿机械厂", 114.512, 38.088, 146.0, "居住、商业、教育", 2023),
]
VACATED_OWNERS = [
    "省属某机械厂", "省某物资储运公司", "省某研究所", "省某中等专业学校", "省某医院旧院区", "省某设计研究院",
    "省某运输公司", "省某印刷厂", "省某建筑公司", "省某粮油储备库", "省某地质队", "省某纺织厂",
    "省某电力修造厂", "省某化工厂", "省某农业科研单位", "省某技工学校", "省某通信器材厂", "省某水文勘测队",
    "省某机关服务中心", "省某仪表厂",
]
PLANNED_USES = ["居住", "商业", "公园绿地", "教育", "居住、商业", "公园绿地、广场", "医疗卫生", "社区服务设施",
                "商务办公", "文化设施", "居住、教育"]
VACATED_TOTAL_MU = 2992.0


def build_vacated_land(occ: Occupancy) -> LayerData:
    """``vacated_land``: 26 plots summing to exactly 2,992 mu, six of them named."""
    rng = np.random.default_rng(SEED + 8)
    layer = LayerData("vacated_land", ["code", "name", "status", "former_owner", "planned_use"])
    named_total = sum(p[4] for p in VACATED_NAMED)
    rest = VACATED_TOTAL_MU - named_total
    n_small = len(VACATED_OWNERS)
    weights = rng.uniform(0.5, 1.5, n_small)
    small_mu = np.round(weights / weights.sum() * rest, 1)
    small_mu[-1] = round(rest - float(small_mu[:-1].sum()), 1)
    plots: list[tuple[str, str, shapely.Geometry, str, int | None]] = []
    for name, owner, lon, lat, mu, use, named_year in VACATED_NAMED:
        c = to_m(Point(lon, lat))
        area_m2 = mu / MU_PER_SQUARE_METRE
        w = math.sqrt(area_m2 * 1.4)
        poly = rect_polygon(c.x, c.y, w, area_m2 / w, float(rng.uniform(-8, 8)))
        # cut one corner so the shape is not a bare rectangle
        x0, y0, x1, y1 = poly.bounds
        poly = poly.difference(box(x1 - (x1 - x0) * 0.25, y1 - (y1 - y0) * 0.3, x1 + 1, y1 + 1))
        geom = scale_to_mu(to_deg(poly), mu)
        occ.add(to_m(geom))
        plots.append((f"{name}{DEMO}", owner, geom, use, named_year))
    # handover years of the small plots (None: not yet handed over)
    small_years = [2021] * 6 + [2022] * 5 + [2023] * 3 + [2024] * 2 + [2025] * 1 + [None] * 3
    small_years = [small_years[i] for i in rng.permutation(len(small_years))]
    r2, r3 = rings_m()
    region = r3.buffer(1500.0)
    i = 0
    while i < n_small:
        x, y = _sample_point(rng, region.bounds)
        if not region.contains(Point(x, y)) or district_of_m(x, y, MAIN_DISTRICTS) is None:
            continue
        mu = float(small_mu[i])
        area_m2 = mu / MU_PER_SQUARE_METRE
        aspect = float(rng.uniform(1.0, 2.0))
        w = math.sqrt(area_m2 * aspect)
        poly = rect_polygon(x, y, w, area_m2 / w, float(rng.uniform(-10, 10)))
        if not occ.free(poly, 40.0):
            continue
        geom = scale_to_mu(to_deg(poly), mu)
        occ.add(to_m(geom))
        owner = VACATED_OWNERS[i]
        use = PLANNED_USES[int(rng.integers(len(PLANNED_USES)))]
        plots.append((f"{owner}腾退地块{DEMO}", f"{owner}{DEMO}", geom, use, small_years[i]))
        i += 1
    statuses = ["listed", "reported", "acquired", "handed_over", "under_development", "built"]
    not_handed = [0, 1, 2]
    for k, (name, owner, geom, use, hy) in enumerate(plots):
        code = f"TTD-{k + 1:03d}"
        d0 = random_date(rng, dt.date(2021, 1, 10), dt.date(2021, 3, 31))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "listed", d0, doc(2021, 18), f"列入省直单位腾退土地清单{DEMO}")]
        d = d0
        final: int
        if hy is None:  # not yet handed over: listed, reported or acquired
            final = not_handed.pop(0)
        else:
            final = 3
            if hy <= 2023 and rng.random() < 0.75:
                final = 4
                if hy <= 2022 and rng.random() < 0.55:
                    final = 5
        for st in range(1, final + 1):
            if st == 3:  # handed over in its year
                year = hy or 2025
                d = max(d + dt.timedelta(days=20), random_date(rng, dt.date(year, 3, 1), dt.date(year, 11, 30)))
            elif st == 4:
                d = d + dt.timedelta(days=int(rng.integers(90, 300)))
            elif st == 5:
                d = d + dt.timedelta(days=int(rng.integers(540, 900)))
            elif st == 2 and hy is not None:
                d = min(d + dt.timedelta(days=int(rng.integers(60, 400))), dt.date(hy, 2, 20))
                d = max(d, steps[-1][2])
            else:
                d = d + dt.timedelta(days=int(rng.integers(30, 120)))
            d = min(d, dt.date(2025, 12, 20))
            d = max(d, steps[-1][2])
            steps.append((statuses[st - 1], statuses[st], d, doc(d.year, 40 + st), f"{DEMO[1:-1]}阶段推进"))
        layer.add((code, name, statuses[final], owner, use), geom)
        layer.add_history(code, steps)
    return layer


ROAD_WORDS = [
    "康宁", "汇丰", "泰和", "润德", "嘉禾", "华祥", "瑞景", "丰收", "博文", "天泽", "永昌", "景明", "安澜", "兴业",
    "秀水", "锦程", "明德", "怀远", "青园", "翠屏", "长乐", "广源", "宏图", "聚贤", "如意", "顺安", "同心", "万福",
    "向阳", "星河", "旭日", "雅居", "祥云", "耀华", "怡然", "益民", "玉泉", "悦来", "云飞", "振兴", "正道", "致远",
    "中和", "紫荆", "尚德", "盛世", "松风", "双桥", "思源", "桃园", "腾飞", "天元", "望岳", "文昌", "西岭", "咏春",
    "福寿", "鸿运",
]


def build_planned_roads() -> LayerData:
    """``planned_roads``: 56 roads, 10 opened in 2021, 10 started in 2021, 36 due to start in 2022."""
    rng = np.random.default_rng(SEED + 9)
    layer = LayerData("planned_roads", ["code", "name", "status", "batch", "road_class", "width_m"])
    r2, r3 = rings_m()
    inner = r3.buffer(-300.0)
    placed: list[shapely.Geometry] = []
    words = [ROAD_WORDS[i] for i in rng.permutation(len(ROAD_WORDS))]
    batches = ["2021_open"] * 10 + ["2021_start"] * 10 + ["2022_start"] * 36
    late_starters = {int(i) for i in rng.choice(np.arange(20, 56), size=2, replace=False)}
    k = 0
    while k < 56:
        x, y = _sample_point(rng, inner.bounds)
        length = float(rng.uniform(500.0, 3000.0))
        horizontal = rng.random() < 0.5
        if rng.random() < 0.25:  # an L-shaped road
            a = length * float(rng.uniform(0.4, 0.7))
            b = length - a
            sx, sy = (1 if rng.random() < 0.5 else -1), (1 if rng.random() < 0.5 else -1)
            pts = [(x, y), (x + sx * a, y), (x + sx * a, y + sy * b)] if horizontal else \
                [(x, y), (x, y + sy * a), (x + sx * b, y + sy * a)]
        else:
            angle = float(rng.uniform(-4, 4)) + (0.0 if horizontal else 90.0)
            dx, dy = math.cos(math.radians(angle)) * length, math.sin(math.radians(angle)) * length
            pts = [(x - dx / 2, y - dy / 2), (x + dx / 2, y + dy / 2)]
        line = LineString(pts)
        if not inner.contains(line) or any(line.distance(p) < 250.0 for p in placed):
            continue
        placed.append(line)
        batch = batches[k]
        u = rng.random()
        road_class = "arterial" if u < 0.15 else "secondary" if u < 0.5 else "branch"
        width = float({"arterial": rng.choice([40, 45, 50, 60]), "secondary": rng.choice([24, 28, 30, 36]),
                       "branch": rng.choice([12, 15, 16, 20])}[road_class])
        suffix = {"arterial": "大街", "secondary": "路", "branch": "街"}[road_class]
        d_plan = random_date(rng, dt.date(2020, 11, 1), dt.date(2020, 12, 31))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d_plan, doc(2020, 95), f"列入规划路打通计划{DEMO}")]
        if batch == "2021_open":
            d1 = random_date(rng, dt.date(2021, 1, 5), dt.date(2021, 3, 31))
            d2 = random_date(rng, dt.date(2021, 6, 1), dt.date(2021, 12, 25))
        elif batch == "2021_start":
            d1 = random_date(rng, dt.date(2021, 3, 1), dt.date(2021, 11, 30))
            d2 = random_date(rng, dt.date(2022, 3, 1), dt.date(2024, 11, 30))
        elif k in late_starters:
            d1 = random_date(rng, dt.date(2023, 3, 1), dt.date(2023, 6, 30))
            d2 = random_date(rng, dt.date(2024, 6, 1), dt.date(2025, 12, 15))
        else:
            d1 = random_date(rng, dt.date(2022, 2, 15), dt.date(2022, 11, 30))
            d2 = random_date(rng, dt.date(2023, 3, 1), dt.date(2026, 6, 30))
        steps.append(("planned", "started", d1, doc(d1.year, 60), f"开工{DEMO}"))
        if d2 <= dt.date(2025, 12, 31):
            steps.append(("started", "opened", d2, doc(d2.year, 61), f"打通{DEMO}"))
        k += 1
        code = f"GHL-{k:03d}"
        layer.add((code, f"{words[k - 1]}{suffix}{DEMO}", steps[-1][1], batch, road_class, width),
                  MultiLineString([to_deg(line).coords]))
        layer.add_history(code, steps)
    return layer


PARKING_WORDS = [
    "人民广场", "火车站东", "北国商城", "省博物馆", "市一院", "儿童医院", "中山路", "新百广场", "万达", "体育场",
    "植物园", "动物园", "高铁站西", "长安公园", "世纪公园", "水上公园", "槐安路", "建华大街", "和平路", "裕华路",
    "友谊大街", "红旗大街", "东岗路", "北二环", "南二环", "西二环", "东二环", "维明街", "谈固", "塔坛",
    "汇通", "益友", "勒泰", "万象", "怀特", "新天地", "会展中心", "大剧院", "图书馆", "翟营",
]


def build_parking_sites(occ: Occupancy) -> LayerData:
    """``parking_sites``: ≥10,000 spaces built in each year 2022–2025 (some only just)."""
    rng = np.random.default_rng(SEED + 10)
    layer = LayerData("parking_sites", ["code", "name", "status", "spaces", "year", "site_type"])
    targets = {2022: 10_000 + int(rng.integers(10, 90)), 2023: 10_850 + int(rng.integers(0, 300)),
               2024: 10_000 + int(rng.integers(5, 60)), 2025: 11_400 + int(rng.integers(0, 400))}
    sites: list[tuple[int, int, str, str]] = []  # (year, spaces, site_type, outcome)

    def draw_type() -> str:
        u = rng.random()
        return "surface" if u < 0.45 else "underground" if u < 0.78 else "multistorey"

    def draw_spaces(site_type: str) -> int:
        lo, hi = {"surface": (50, 300), "underground": (150, 800), "multistorey": (200, 800)}[site_type]
        return int(rng.integers(lo, hi + 1))

    for _ in range(4):
        t = draw_type()
        sites.append((2021, draw_spaces(t), t, "built"))
    for year, target in targets.items():
        remaining = target
        while remaining > 800:
            t = draw_type()
            s = min(draw_spaces(t), remaining - 50)
            sites.append((year, s, t, "built"))
            remaining -= s
        sites.append((year, remaining, "surface" if remaining <= 300 else "underground", "built"))
    for _ in range(3):  # due in 2025 but still under construction
        t = draw_type()
        sites.append((2025, draw_spaces(t), t, "under_construction"))
    for _ in range(6):  # planned for 2026
        t = draw_type()
        sites.append((2026, draw_spaces(t), t, "planned"))
    r2, r3 = rings_m()
    region = r3.buffer(2000.0)
    shapely.prepare(region)
    k = 0
    while k < len(sites):
        x, y = _sample_point(rng, region.bounds)
        p = Point(x, y)
        if not region.contains(p) or district_of_m(x, y, MAIN_DISTRICTS) is None or not occ.free(p, 30.0):
            continue
        year, spaces, site_type, outcome = sites[k]
        k += 1
        code = f"TCC-{k:04d}"
        name = f"{PARKING_WORDS[int(rng.integers(len(PARKING_WORDS)))]}{['', '东', '西', '南', '北'][k % 5]}" \
               f"公共停车场{k:03d}{DEMO}"
        d0 = random_date(rng, dt.date(year - 1, 3, 1), dt.date(year - 1, 10, 31))
        steps: list[tuple[str | None, str, dt.date, str, str]] = [
            (None, "planned", d0, doc(year - 1, 70), f"列入公共停车设施建设计划{DEMO}")]
        if outcome in ("built", "under_construction"):
            if outcome == "built":
                d2 = random_date(rng, dt.date(year, 1, 10), dt.date(year, 12, 28))
                d1 = max(d0, d2 - dt.timedelta(days=int(rng.integers(120, 300))))
            else:
                d1 = random_date(rng, dt.date(year, 3, 1), dt.date(year, 9, 30))
                d2 = None
            steps.append(("planned", "under_construction", d1, doc(d1.year, 71), f"开工{DEMO}"))
            if d2 is not None:
                steps.append(("under_construction", "built", d2, doc(d2.year, 72), f"建成投用{DEMO}"))
        layer.add((code, name, steps[-1][1], spaces, year, site_type), to_deg(p))
        layer.add_history(code, steps)
        occ.add(p.buffer(30.0))
    return layer


def build_all_python_layers() -> list[LayerData]:
    """Every layer except ``land_parcels`` (generated in SQL), in loading order."""
    occ = Occupancy()
    vacated = build_vacated_land(occ)
    villages = build_urban_villages(occ)
    compounds = build_old_compounds(occ)
    roads = build_planned_roads()
    parking = build_parking_sites(occ)
    return [build_districts(), build_ring_zones(), build_ring_roads(), build_hutuo_river(), build_hutuo_belt(),
            villages, compounds, vacated, roads, parking]
