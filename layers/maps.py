"""Folium progress maps that render with no internet.

The data come from PostGIS as FeatureCollection text built in SQL (status as of a date,
its Chinese label and colour, the date it took effect, area or length), so the map
builder does no per-feature work beyond what folium itself needs. Leaflet and folium's
other libraries are loaded from the app (``/vendor/...``, :mod:`gis.vendor`) or inlined
into a stand-alone file; the basemap defaults to none (the project's own layers: districts,
ring roads, the Hutuo River). OSM, Tianditu (with a key) and Gaode are options; for
Gaode our CGCS2000 data are shifted to GCJ-02 so they sit on its tiles.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import folium
import numpy as np
import psycopg
import shapely
from branca.element import Figure
from psycopg import sql

from gis.chinacrs import wgs84_to_gcj02
from gis.errors import InvalidInputError
from gis.vendor import FOLIUM_CSS, FOLIUM_JS, local_file
from layers.models import Layer

Basemap = Literal["none", "osm", "tianditu", "gaode"]
BASEMAPS: tuple[str, ...] = ("none", "osm", "tianditu", "gaode")

CENTER = (38.04, 114.50)
PERCENT_BINS: list[tuple[float, str, str]] = [
    (25.0, "#d73027", "< 25%"),
    (50.0, "#fc8d59", "25–50%"),
    (75.0, "#fee08b", "50–75%"),
    (100.0, "#d9ef8b", "75–100%"),
    (float("inf"), "#1a9850", "≥ 100%"),
]
"""Choropleth classes of percent complete (upper bound exclusive, colour, label)."""
NO_TASK_COLOR = "#f0f0f0"
SOURCES = (
    "数据来源：石家庄城市更新演示数据（合成数据，非官方）；区县边界：DataV.GeoAtlas 简化（示意，非官方边界）；"
    "目标：《关于落实〈省委省政府关于大力支持省会建设和高质量发展的意见〉的实施方案》"
)


class OfflineMap(folium.Map):
    """A folium map whose JavaScript and CSS come from the app, not from CDNs."""

    default_js = FOLIUM_JS
    default_css = FOLIUM_CSS


def percent_color(percent: float | None) -> str:
    """Fill colour of a district with this percent complete (None: no task there)."""
    if percent is None:
        return NO_TASK_COLOR
    for upper, color, _ in PERCENT_BINS:
        if percent < upper:
            return color
    return PERCENT_BINS[-1][1]


# --------------------------------------------------------------------------- SQL


def layer_features_query(
    layer: Layer, as_of: dt.date, statuses: Sequence[str] | None = None, district: str | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """A FeatureCollection (text, CRS84) of a layer's features as of ``as_of``.

    Status as of the date = the latest history row on or before it; features with no row
    by then are left out. Properties: ``code, name, district_code, status, status_label,
    since, measure, _color``. ``statuses`` filters on the status as of the date.
    """
    params: dict[str, Any] = {"as_of": as_of, "layer": layer.table, "district": district}
    measure = (
        sql.SQL("round(t.{}::numeric, 1)").format(sql.Identifier(layer.measure_field))
        if layer.measure_field
        else sql.SQL("NULL::numeric")
    )
    if layer.lifecycle is None:
        status_join = sql.SQL(
            "CROSS JOIN LATERAL (SELECT NULL::text AS status, NULL::date AS since) AS s"
        )
        params.update(labels="{}", colors="{}", statuses=None)
    else:
        status_join = sql.SQL(
            """
            JOIN LATERAL (
              SELECT h.to_status AS status, h.effective_date AS since FROM renewal.status_history AS h
              WHERE h.layer = %(layer)s AND h.feature_id = t.id AND h.effective_date <= %(as_of)s
              ORDER BY h.effective_date DESC, h.id DESC LIMIT 1
            ) AS s ON true
            """
        )
        params["labels"] = json.dumps({s.code: s.label for s in layer.lifecycle.statuses}, ensure_ascii=False)
        params["colors"] = json.dumps({s.code: s.color for s in layer.lifecycle.statuses})
        params["statuses"] = list(statuses) if statuses else None
    query = sql.SQL(
        """
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
          'type', 'Feature', 'id', t.id,
          'geometry', ST_AsGeoJSON(t.geom, 6)::json,
          'properties', json_build_object(
            'code', t.code, 'name', t.name, 'district_code', t.district_code,
            'status', s.status, 'status_label', coalesce(%(labels)s::jsonb ->> s.status, '—'),
            'since', coalesce(s.since::text, '—'), 'measure', {measure},
            '_color', coalesce(%(colors)s::jsonb ->> s.status, {default_color}))
        ) ORDER BY t.id), '[]'::json))::text
        FROM {table} AS t
        {status_join}
        WHERE (%(district)s::text IS NULL OR t.district_code = %(district)s::text)
          AND (%(statuses)s::text[] IS NULL OR s.status = ANY(%(statuses)s::text[]))
        """
    ).format(
        measure=measure,
        default_color=sql.Literal(layer.style.color),
        table=sql.Identifier(layer.schema_name, layer.table),
        status_join=status_join,
    )
    return query, params


def reference_query(table: str, simplify_deg: float = 0.0) -> sql.Composed:
    """A FeatureCollection (text) of a reference layer with ``code`` and ``name`` (optionally simplified)."""
    geom = sql.SQL("ST_SimplifyPreserveTopology(t.geom, {})").format(sql.Literal(simplify_deg)) \
        if simplify_deg > 0 else sql.SQL("t.geom")
    return sql.SQL(
        """
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
          'type', 'Feature', 'id', t.id, 'geometry', ST_AsGeoJSON({geom}, 6)::json,
          'properties', json_build_object('code', t.code, 'name', t.name)) ORDER BY t.code), '[]'::json))::text
        FROM {table} AS t
        """
    ).format(geom=geom, table=sql.Identifier("renewal", table))


# --------------------------------------------------------------------------- building


@dataclass
class MapLayer:
    """One layer of features to draw, as FeatureCollection text from :func:`layer_features_query`."""

    layer: Layer
    geojson: str
    count: int = field(init=False)

    def __post_init__(self) -> None:
        self.count = len(json.loads(self.geojson)["features"])


def _shift_gcj02(geojson: str) -> dict[str, Any]:
    """The FeatureCollection with every coordinate moved from CGCS2000/WGS84 to GCJ-02 (vectorised)."""
    fc = json.loads(geojson)
    feats = fc["features"]
    if not feats:
        return dict(fc)
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in feats])

    def shift(coords: Any) -> Any:
        x, y = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    moved = shapely.transform(geoms, shift)
    for f, g in zip(feats, moved, strict=True):
        f["geometry"] = json.loads(shapely.to_geojson(g))
    return dict(fc)


def _data(geojson: str, basemap: str) -> dict[str, Any]:
    return _shift_gcj02(geojson) if basemap == "gaode" else dict(json.loads(geojson))


def _add_basemap(m: folium.Map, basemap: str, tianditu_key: str | None) -> None:
    if basemap == "none":
        return
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", control=True).add_to(m)
    elif basemap == "tianditu":
        if not tianditu_key:
            raise InvalidInputError(
                "The Tianditu basemap needs a key: set RENEWAL_TIANDITU_KEY, or choose basemap=none, osm or gaode."
            )
        for layer, name in (("vec", "天地图矢量"), ("cva", "天地图注记")):
            folium.TileLayer(
                tiles=(
                    f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                    f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                    f"&TILECOL={{x}}&tk={tianditu_key}"
                ),
                attr="天地图 Tianditu", name=name, subdomains="01234567", overlay=layer == "cva",
            ).add_to(m)
    elif basemap == "gaode":
        folium.TileLayer(
            tiles="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
            attr="高德地图 AutoNavi (GCJ-02)", name="高德地图", subdomains="1234",
        ).add_to(m)
    else:
        raise InvalidInputError(f"basemap must be one of {', '.join(BASEMAPS)}; got {basemap!r}.")


def _legend_html(layers: Sequence[MapLayer], choropleth_title: str | None) -> str:
    rows = []
    if choropleth_title:
        rows.append(f'<div class="lg-h">{html.escape(choropleth_title)}</div>')
        for _, color, label in PERCENT_BINS:
            rows.append(f'<div class="lg-r"><i style="background:{color}"></i>{html.escape(label)}</div>')
        rows.append(f'<div class="lg-r"><i style="background:{NO_TASK_COLOR}"></i>无分解任务</div>')
    for ml in layers:
        if ml.layer.lifecycle is None:
            continue
        rows.append(f'<div class="lg-h">{html.escape(ml.layer.title)}（{html.escape(ml.layer.lifecycle.label)}）</div>')
        for s in ml.layer.lifecycle.statuses:
            rows.append(f'<div class="lg-r"><i style="background:{s.color}"></i>{html.escape(s.label)}</div>')
    return (
        '<div class="renewal-legend" style="position:absolute;bottom:24px;right:10px;z-index:1000;background:#fff;'
        'padding:6px 10px;border:1px solid #999;border-radius:4px;font:12px/1.5 sans-serif;max-height:60%;'
        'overflow:auto"><style>.renewal-legend i{display:inline-block;width:12px;height:12px;margin-right:6px;'
        'border:1px solid #666;vertical-align:middle}.renewal-legend .lg-h{font-weight:bold;margin-top:4px}</style>'
        '<div class="lg-h">图例</div>' + "".join(rows) + "</div>"
    )


def _title_html(title: str, as_of: dt.date, subtitle: str | None) -> str:
    sub = f'<div style="font-size:12px">{html.escape(subtitle)}</div>' if subtitle else ""
    return (
        '<div class="renewal-title" style="position:absolute;top:10px;left:50px;z-index:1000;background:#fff;'
        'padding:6px 12px;border:1px solid #999;border-radius:4px;font:14px/1.4 sans-serif;max-width:70%">'
        f'<div style="font-weight:bold;font-size:16px">{html.escape(title)} · 截至 {as_of.isoformat()}</div>{sub}'
        f'<div style="font-size:11px;color:#555">{html.escape(SOURCES)}</div></div>'
    )


def build_map(
    *,
    title: str,
    as_of: dt.date,
    layers: Sequence[MapLayer],
    districts_geojson: str,
    rings_geojson: str,
    river_geojson: str,
    district_percent: dict[str, float] | None = None,
    choropleth_title: str | None = None,
    subtitle: str | None = None,
    basemap: str = "none",
    tianditu_key: str | None = None,
) -> folium.Map:
    """Assemble the map: districts (choropleth if ``district_percent``), rings, river, layers, legend, title.

    Every drawn path carries a CSS class (``renewal-district``, ``renewal-ring``,
    ``renewal-river``, ``renewal-feature renewal-<layer id>``) so tests and scripts can count them.
    """
    if basemap not in BASEMAPS:
        raise InvalidInputError(f"basemap must be one of {', '.join(BASEMAPS)}; got {basemap!r}.")
    m = OfflineMap(location=CENTER, zoom_start=11, tiles=None, control_scale=True, prefer_canvas=False)
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(folium.Element('<meta name="renewal-map" content="progress">'))
    _add_basemap(m, basemap, tianditu_key)
    percents = district_percent or {}
    dfc = _data(districts_geojson, basemap)
    for f in dfc["features"]:
        code = f["properties"]["code"]
        pct = percents.get(code) if district_percent is not None else None
        f["properties"]["percent"] = "—" if pct is None else f"{pct:.1f}%"
        f["properties"]["_color"] = percent_color(pct) if district_percent is not None else "#ffffff"
    folium.GeoJson(
        dfc,
        name="区县" + ("（完成率）" if district_percent is not None else ""),
        style_function=lambda f: {
            "fillColor": f["properties"]["_color"], "color": "#555555", "weight": 1, "fillOpacity": 0.55,
            "className": "renewal-district",
        },
        highlight_function=lambda f: {"weight": 2.5},
        popup=folium.GeoJsonPopup(fields=["name", "code", "percent"], aliases=["区县", "代码", "完成率"]),
        tooltip=folium.GeoJsonTooltip(fields=["name", "percent"], aliases=["区县", "完成率"]),
    ).add_to(m)
    folium.GeoJson(
        _data(rings_geojson, basemap), name="环路",
        style_function=lambda f: {"color": "#636363", "weight": 3, "dashArray": "6 4", "className": "renewal-ring"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["环路"]),
    ).add_to(m)
    folium.GeoJson(
        _data(river_geojson, basemap), name="滹沱河",
        style_function=lambda f: {"color": "#4292c6", "weight": 4, "className": "renewal-river"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["河流"]),
    ).add_to(m)
    for ml in layers:
        layer = ml.layer
        measure_alias = {"area": "面积（亩）", "length": "长度（米）"}.get(layer.measure)
        fields = ["name", "code", "status_label", "since"] + (["measure"] if measure_alias else [])
        aliases = [layer.name_label, layer.code_label, layer.lifecycle.label if layer.lifecycle else "状态",
                   "状态日期"] + ([measure_alias] if measure_alias else [])
        cls = f"renewal-feature renewal-{layer.id}"
        weight = layer.style.weight
        kwargs: dict[str, Any] = {}
        if layer.geometry_type in ("Point", "MultiPoint"):
            kwargs["marker"] = folium.CircleMarker(radius=layer.style.radius + 2, fill=True)
        folium.GeoJson(
            _data(ml.geojson, basemap),
            name=f"{layer.title}（{ml.count}）",
            style_function=lambda f, w=weight, c=cls: {
                "color": f["properties"]["_color"], "fillColor": f["properties"]["_color"], "weight": w + 1,
                "fillOpacity": 0.75, "opacity": 0.95, "className": c,
            },
            popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
            **kwargs,
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    root.html.add_child(folium.Element(_title_html(title, as_of, subtitle)))
    root.html.add_child(folium.Element(_legend_html(layers, choropleth_title)))
    return m


def render(m: folium.Map, *, inline: bool = False) -> str:
    """The map as one HTML page; ``inline`` embeds the libraries (a stand-alone file for e-mail or USB).

    Font Awesome is dropped when inlining (its web fonts are separate files); these maps use no icons.
    """
    page: str = m.get_root().render()
    if inline:
        for _, url in FOLIUM_JS:
            body = local_file(url).read_text(encoding="utf-8").replace("</script", "<\\/script")
            page = page.replace(f'<script src="{url}"></script>', f"<script>{body}</script>")
        for _, url in FOLIUM_CSS:
            tag = f'<link rel="stylesheet" href="{url}"/>'
            body = "" if "fontawesome" in url else f"<style>{local_file(url).read_text(encoding='utf-8')}</style>"
            page = page.replace(tag, body)
        if "/vendor/" in page:
            raise RuntimeError("a /vendor/ reference was left in an inlined map")
    return page


# --------------------------------------------------------------------------- orchestration


async def _text(conn: psycopg.AsyncConnection[Any], query: sql.Composed, params: dict[str, Any] | None = None) -> str:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return str(row[0]) if row else '{"type": "FeatureCollection", "features": []}'


async def _frame(conn: psycopg.AsyncConnection[Any]) -> tuple[str, str, str]:
    districts = await _text(conn, reference_query("districts", 0.0005))
    rings = await _text(conn, reference_query("ring_roads"))
    river = await _text(conn, reference_query("hutuo_river"))
    return districts, rings, river


async def progress_map(
    conn: psycopg.AsyncConnection[Any],
    as_of: dt.date,
    target_id: str | None = None,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
) -> folium.Map:
    """The progress map as of a date: one target (its layer, district percent) or the whole plan.

    Without a target, districts are coloured by their mean percent (capped at 100) over the
    targets running on that date (as in the quarterly ranking), and every target layer is drawn.
    """
    from layers.plan import get_catalog
    from layers.progress import STATUS_LABELS, aprogress_as_of, district_scores, select_targets
    from layers.registry import get_registry

    registry = get_registry()
    targets = select_targets(target=target_id) if target_id else list(get_catalog().targets)
    if target_id:
        chosen = targets
    else:
        chosen = [t for t in targets if t.start <= as_of <= t.deadline] or [t for t in targets if t.start <= as_of]
    records = await aprogress_as_of(conn, as_of, chosen, by_district=True) if chosen else []
    if target_id:
        t = targets[0]
        city = next(r for r in records if r.district_code is None)
        percent = {r.district_code: r.percent for r in records if r.district_code and r.goal > 0}
        title = f"{t.title}"
        subtitle = (f"任务{t.task} · 完成 {city.actual:,.1f}/{t.value:,.1f}{t.unit}（{city.percent:.1f}%）· "
                    f"应完成 {city.expected:,.1f}{t.unit} · {STATUS_LABELS[city.status]}")
        choropleth = "区县完成率（按清单分解）"
    else:
        percent = {d: score for d, (score, _) in district_scores(records).items()}
        title = "石家庄城市更新进度图"
        subtitle = f"{len(chosen)} 项在期目标的区县平均完成率"
        choropleth = "区县平均完成率"
    layer_ids = list(dict.fromkeys(t.layer for t in targets))
    layers = []
    for lid in layer_ids:
        q, p = layer_features_query(registry.get(lid), as_of)
        layers.append(MapLayer(registry.get(lid), await _text(conn, q, p)))
    districts, rings, river = await _frame(conn)
    return build_map(
        title=title, as_of=as_of, layers=layers, districts_geojson=districts, rings_geojson=rings,
        river_geojson=river, district_percent=percent, choropleth_title=choropleth, subtitle=subtitle,
        basemap=basemap, tianditu_key=tianditu_key,
    )


async def layer_map(
    conn: psycopg.AsyncConnection[Any],
    layer: Layer,
    as_of: dt.date,
    statuses: Sequence[str] | None = None,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
) -> folium.Map:
    """One layer's features as of a date, coloured by status, optionally only some statuses."""
    q, p = layer_features_query(layer, as_of, statuses)
    ml = MapLayer(layer, await _text(conn, q, p))
    districts, rings, river = await _frame(conn)
    sub = f"状态：{'、'.join(statuses)}" if statuses else None
    return build_map(
        title=f"{layer.title}", as_of=as_of, layers=[ml], districts_geojson=districts, rings_geojson=rings,
        river_geojson=river, subtitle=sub, basemap=basemap, tianditu_key=tianditu_key,
    )

