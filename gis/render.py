"""Plain folium rendering that works with no internet: GeoJSON and colours in, a map out.

Nothing here knows about layers, plan targets or a city: the domain maps
(:mod:`layers.maps`) decide what to draw, in which colours and with which captions, and
call these helpers for the parts every map shares:

* :class:`OfflineMap` loads Leaflet and folium's other libraries from the app
  (``/vendor/...``, :mod:`gis.vendor`) instead of CDNs; :func:`render` can inline them into
  a stand-alone file (e-mail, USB stick).
* :func:`new_map` opens a map on a centre with a basemap: none (the default, for closed
  intranets), OSM, Tianditu (needs a key) or Gaode. Gaode tiles are in GCJ-02, so data
  drawn on them must be shifted: :func:`for_basemap` does that for a FeatureCollection.
* A generic colour scale for percentages (:data:`PERCENT_BINS`, :func:`percent_color`) and
  HTML boxes for a legend (:func:`legend_html`) and a title (:func:`title_html`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any, Literal

import folium
import numpy as np
import shapely
from branca.element import Figure

from gis.chinacrs import wgs84_to_gcj02
from gis.errors import InvalidInputError
from gis.vendor import FOLIUM_CSS, FOLIUM_JS, local_file

Basemap = Literal["none", "osm", "tianditu", "gaode"]
BASEMAPS: tuple[str, ...] = ("none", "osm", "tianditu", "gaode")

PERCENT_BINS: list[tuple[float, str, str]] = [
    (25.0, "#d73027", "< 25%"),
    (50.0, "#fc8d59", "25–50%"),
    (75.0, "#fee08b", "50–75%"),
    (100.0, "#d9ef8b", "75–100%"),
    (float("inf"), "#1a9850", "≥ 100%"),
]
"""Classes of a percentage (upper bound exclusive, colour, label): red to green, 100 % and more green."""
NO_DATA_COLOR = "#f0f0f0"
"""Fill of an area that has no percentage at all."""

LegendSection = tuple[str, Sequence[tuple[str, str]]]
"""A legend heading and its rows of (colour, label)."""


class OfflineMap(folium.Map):
    """A folium map whose JavaScript and CSS come from the app, not from CDNs."""

    default_js = FOLIUM_JS
    default_css = FOLIUM_CSS


def percent_color(percent: float | None, none_color: str = NO_DATA_COLOR) -> str:
    """Fill colour of an area with this percentage (``None``: no value there)."""
    if percent is None:
        return none_color
    for upper, color, _ in PERCENT_BINS:
        if percent < upper:
            return color
    return PERCENT_BINS[-1][1]


def percent_legend(title: str, none_label: str | None = None, none_color: str = NO_DATA_COLOR) -> LegendSection:
    """The legend section of :data:`PERCENT_BINS`, with a row for areas without a value if labelled."""
    rows = [(color, label) for _, color, label in PERCENT_BINS]
    if none_label:
        rows.append((none_color, none_label))
    return title, rows


# --------------------------------------------------------------------------- data on the basemap


def shift_gcj02(geojson: str) -> dict[str, Any]:
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


def for_basemap(geojson: str, basemap: str) -> dict[str, Any]:
    """A FeatureCollection (text, CGCS2000/WGS84 lon/lat) ready to draw on ``basemap`` (GCJ-02 for Gaode)."""
    return shift_gcj02(geojson) if basemap == "gaode" else dict(json.loads(geojson))


# --------------------------------------------------------------------------- the map


def check_basemap(basemap: str) -> None:
    """Raise :class:`InvalidInputError` unless ``basemap`` is one of :data:`BASEMAPS`."""
    if basemap not in BASEMAPS:
        raise InvalidInputError(f"basemap must be one of {', '.join(BASEMAPS)}; got {basemap!r}.")


def add_basemap(m: folium.Map, basemap: str, tianditu_key: str | None = None) -> None:
    """Add the tiles of ``basemap`` (nothing for ``none``); Tianditu needs a key."""
    check_basemap(basemap)
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


def new_map(
    center_lonlat: tuple[float, float],
    zoom: int,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
    meta: dict[str, str] | None = None,
) -> OfflineMap:
    """An offline map opened on ``center_lonlat`` (longitude, latitude) with its basemap.

    ``meta`` adds ``<meta name=... content=...>`` tags to the page head (for scripts and tests).
    """
    check_basemap(basemap)
    lon, lat = center_lonlat
    m = OfflineMap(location=(lat, lon), zoom_start=zoom, tiles=None, control_scale=True, prefer_canvas=False)
    for name, content in (meta or {}).items():
        page_root(m).header.add_child(
            folium.Element(f'<meta name="{html.escape(name)}" content="{html.escape(content)}">')
        )
    add_basemap(m, basemap, tianditu_key)
    return m


def page_root(m: folium.Map) -> Figure:
    """The HTML page (branca Figure) a map belongs to."""
    root = m.get_root()
    assert isinstance(root, Figure)
    return root


def add_html(m: folium.Map, fragment: str) -> None:
    """Add an HTML fragment (a legend, a title box) to the page body."""
    page_root(m).html.add_child(folium.Element(fragment))


def legend_html(sections: Sequence[LegendSection], heading: str = "图例") -> str:
    """A legend box (bottom right): one heading, then per section a title and colour swatches."""
    rows = []
    for title, entries in sections:
        rows.append(f'<div class="lg-h">{html.escape(title)}</div>')
        for color, label in entries:
            rows.append(f'<div class="lg-r"><i style="background:{html.escape(color)}"></i>{html.escape(label)}</div>')
    return (
        '<div class="renewal-legend" style="position:absolute;bottom:24px;right:10px;z-index:1000;background:#fff;'
        'padding:6px 10px;border:1px solid #999;border-radius:4px;font:12px/1.5 sans-serif;max-height:60%;'
        'overflow:auto"><style>.renewal-legend i{display:inline-block;width:12px;height:12px;margin-right:6px;'
        'border:1px solid #666;vertical-align:middle}.renewal-legend .lg-h{font-weight:bold;margin-top:4px}</style>'
        f'<div class="lg-h">{html.escape(heading)}</div>' + "".join(rows) + "</div>"
    )


def title_html(title: str, subtitle: str | None = None, caption: str | None = None) -> str:
    """A title box (top left): the title in bold, an optional subtitle and a small caption (sources)."""
    sub = f'<div style="font-size:12px">{html.escape(subtitle)}</div>' if subtitle else ""
    cap = f'<div style="font-size:11px;color:#555">{html.escape(caption)}</div>' if caption else ""
    return (
        '<div class="renewal-title" style="position:absolute;top:10px;left:50px;z-index:1000;background:#fff;'
        'padding:6px 12px;border:1px solid #999;border-radius:4px;font:14px/1.4 sans-serif;max-width:70%">'
        f'<div style="font-weight:bold;font-size:16px">{html.escape(title)}</div>{sub}{cap}</div>'
    )


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
