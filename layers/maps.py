"""The domain's progress maps: what to draw, in which colours, with which captions.

The data come from PostGIS as FeatureCollection text built in SQL (status as of a date,
its Chinese label and colour, the date it took effect, area or length), so the map
builder does no per-feature work beyond what folium itself needs. The plain rendering
(offline libraries, basemaps, the GCJ-02 shift for Gaode, legend and title boxes, the
percent colour scale, :func:`render`) is :mod:`gis.render`; this module adds the layers,
the plan targets and the city's frame (districts, ring roads, the Hutuo River), centre
and sources. The basemap defaults to none; OSM, Tianditu (with a key) and Gaode are options.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
import psycopg
from psycopg import sql

from gis.render import (
    BASEMAPS,
    NO_DATA_COLOR,
    Basemap,
    LegendSection,
    add_html,
    for_basemap,
    legend_html,
    new_map,
    percent_color,
    percent_legend,
    render,
    title_html,
)
from layers.city import SHIJIAZHUANG, CityProfile
from layers.city import load_async as load_city
from layers.history import Params
from layers.history import status_join as status_join_sql
from layers.models import Layer
from layers.submissions import PENDING_MARK

__all__ = [
    "BASEMAPS", "Basemap", "MapLayer", "build_map", "layer_features_query", "layer_map", "progress_map",
    "reference_query", "render",
]

CENTER_LONLAT = SHIJIAZHUANG.centre
"""Where maps of the default city open (longitude, latitude), at :data:`ZOOM`; others use their profile."""
ZOOM = math.ceil(SHIJIAZHUANG.zoom)
NO_TASK_COLOR = NO_DATA_COLOR
"""Fill of a district that has no share of the target."""
SOURCES = (
    "数据来源：石家庄城市更新演示数据（合成数据，非官方）；区县边界：DataV.GeoAtlas 简化（示意，非官方边界）；"
    "目标：《关于落实〈省委省政府关于大力支持省会建设和高质量发展的意见〉的实施方案》"
)
"""The caption under the demo city's maps (the profile's ``demo``); other cities' maps name their own data."""
"""Before the title of a map that counts pending submissions."""
PENDING_BANNER = (
    '<div class="renewal-pending" style="position:absolute;bottom:70px;left:10px;z-index:1000;max-width:45%;'
    'background:#fff4d6;border:2px solid #ff7f0e;border-radius:4px;padding:6px 10px;font:13px/1.4 sans-serif">'
    "⚠ {}</div>"
)
"""The banner of a map that counts pending submissions (the notice, escaped)."""


def sources_for(city: CityProfile) -> str:
    """The caption under a map of ``city``."""
    if city.demo:
        return SOURCES
    return f"数据来源：{city.name}城市更新图层" + ("；目标：规划目录" if city.catalog else "")


def _frame_of(city: CityProfile) -> dict[str, Any]:
    """build_map's keywords that place and caption a map of ``city``."""
    return {"center_lonlat": city.centre, "zoom": math.ceil(city.zoom), "sources": sources_for(city)}


# --------------------------------------------------------------------------- SQL


def layer_features_query(
    layer: Layer, as_of: dt.date, statuses: Sequence[str] | None = None, district: str | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """A FeatureCollection (text, CRS84) of a layer's features as of ``as_of``.

    Status as of the date by the rule of :mod:`layers.history`; features absent on the date
    are left out. Properties: ``code, name, district_code, status, status_label,
    since, measure, _color``. ``statuses`` filters on the status as of the date.
    """
    params = Params(district=district)
    measure = (
        sql.SQL("round(t.{}::numeric, 1)").format(sql.Identifier(layer.measure_field))
        if layer.measure_field
        else sql.SQL("NULL::numeric")
    )
    status_join: sql.Composable
    if layer.lifecycle is None:
        status_join = sql.SQL(
            "CROSS JOIN LATERAL (SELECT NULL::text AS status, NULL::date AS since) AS s"
        )
        params.update(labels="{}", colors="{}", statuses=None)
    else:
        status_join = status_join_sql(layer, as_of, params)
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
          AND {present}
          AND (%(statuses)s::text[] IS NULL OR s.status = ANY(%(statuses)s::text[]))
        """
    ).format(
        measure=measure,
        default_color=sql.Literal(layer.style.color),
        table=sql.Identifier(layer.schema_name, layer.table),
        status_join=status_join,
        present=sql.SQL("TRUE") if layer.lifecycle is None else sql.SQL("s.status IS NOT NULL"),
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


def _legend(layers: Sequence[MapLayer], choropleth_title: str | None) -> list[LegendSection]:
    """The district percent scale (if a choropleth is drawn), then each layer's lifecycle colours."""
    sections: list[LegendSection] = []
    if choropleth_title:
        sections.append(percent_legend(choropleth_title, "无分解任务", NO_TASK_COLOR))
    for ml in layers:
        if ml.layer.lifecycle is None:
            continue
        sections.append((
            f"{ml.layer.title}（{ml.layer.lifecycle.label}）",
            [(s.color, s.label) for s in ml.layer.lifecycle.statuses],
        ))
    return sections


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
    center_lonlat: tuple[float, float] = CENTER_LONLAT,
    zoom: int = ZOOM,
    sources: str = SOURCES,
    pending_notice: str | None = None,
) -> folium.Map:
    """Assemble the map: districts (choropleth if ``district_percent``), rings, river, layers, legend, title.

    Every drawn path carries a CSS class (``renewal-district``, ``renewal-ring``,
    ``renewal-river``, ``renewal-feature renewal-<layer id>``) so tests and scripts can count them.
    A map that counts pending submissions (``pending_notice``, see
    :func:`layers.submissions.counted_changes`) says so in its title, its legend and a banner
    (``renewal-pending``).
    """
    m = new_map(center_lonlat, zoom, basemap=basemap, tianditu_key=tianditu_key, meta={"renewal-map": "progress"})
    percents = district_percent or {}
    dfc = for_basemap(districts_geojson, basemap)
    for f in dfc["features"]:
        code = f["properties"]["code"]
        pct = percents.get(code) if district_percent is not None else None
        f["properties"]["percent"] = "—" if pct is None else f"{pct:.1f}%"
        f["properties"]["_color"] = percent_color(pct, NO_TASK_COLOR) if district_percent is not None else "#ffffff"
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
        for_basemap(rings_geojson, basemap), name="环路",
        style_function=lambda f: {"color": "#636363", "weight": 3, "dashArray": "6 4", "className": "renewal-ring"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["环路"]),
    ).add_to(m)
    folium.GeoJson(
        for_basemap(river_geojson, basemap), name="滹沱河",
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
            for_basemap(ml.geojson, basemap),
            name=f"{layer.title}（{ml.count}）",
            style_function=lambda f, w=weight, c=cls: {
                "color": f["properties"]["_color"], "fillColor": f["properties"]["_color"], "weight": w + 1,
                "fillOpacity": 0.75, "opacity": 0.95, "className": c,
            },
            popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
            **kwargs,
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    marked = f"{PENDING_MARK}{title}" if pending_notice else title
    add_html(m, title_html(f"{marked} · 截至 {as_of.isoformat()}", subtitle, sources))
    heading = "图例（含待审核填报）" if pending_notice else "图例"
    add_html(m, legend_html(_legend(layers, choropleth_title), heading=heading))
    if pending_notice:
        add_html(m, PENDING_BANNER.format(html.escape(pending_notice)))
    return m


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
    pending_notice: str | None = None,
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
    profile = await load_city(conn)
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
        title = f"{profile.name}城市更新进度图"
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
        basemap=basemap, tianditu_key=tianditu_key, pending_notice=pending_notice, **_frame_of(profile),
    )


async def layer_map(
    conn: psycopg.AsyncConnection[Any],
    layer: Layer,
    as_of: dt.date,
    statuses: Sequence[str] | None = None,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
    pending_notice: str | None = None,
) -> folium.Map:
    """One layer's features as of a date, coloured by status, optionally only some statuses."""
    q, p = layer_features_query(layer, as_of, statuses)
    ml = MapLayer(layer, await _text(conn, q, p))
    districts, rings, river = await _frame(conn)
    sub = f"状态：{'、'.join(statuses)}" if statuses else None
    return build_map(
        title=f"{layer.title}", as_of=as_of, layers=[ml], districts_geojson=districts, rings_geojson=rings,
        river_geojson=river, subtitle=sub, basemap=basemap, tianditu_key=tianditu_key,
        pending_notice=pending_notice, **_frame_of(await load_city(conn)),
    )

