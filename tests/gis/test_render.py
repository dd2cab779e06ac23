"""gis.render: plain folium rendering, with no layer, target or city in sight."""

from __future__ import annotations

import json

import pytest

from gis.chinacrs import wgs84_to_gcj02
from gis.errors import InvalidInputError
from gis.render import (
    NO_DATA_COLOR,
    PERCENT_BINS,
    add_html,
    for_basemap,
    legend_html,
    new_map,
    percent_color,
    percent_legend,
    render,
    title_html,
)

FC = json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": 1, "properties": {"name": "a"},
     "geometry": {"type": "LineString", "coordinates": [[114.5, 38.04], [114.52, 38.05]]}},
    {"type": "Feature", "id": 2, "properties": {"name": "b"},
     "geometry": {"type": "Point", "coordinates": [114.48, 38.0]}},
]})


@pytest.mark.parametrize(("percent", "color"), [
    (None, NO_DATA_COLOR), (0.0, "#d73027"), (24.99, "#d73027"), (25.0, "#fc8d59"), (74.9, "#fee08b"),
    (99.9, "#d9ef8b"), (100.0, "#1a9850"), (250.0, "#1a9850"), (-5.0, "#d73027"),
])
def test_percent_color(percent: float | None, color: str) -> None:
    assert percent_color(percent) == color


def test_percent_color_none_colour_is_the_callers() -> None:
    assert percent_color(None, "#abcdef") == "#abcdef"


def test_percent_legend_rows() -> None:
    title, rows = percent_legend("完成率", "无数据")
    assert title == "完成率"
    assert list(rows) == [(c, label) for _, c, label in PERCENT_BINS] + [(NO_DATA_COLOR, "无数据")]
    assert len(percent_legend("x")[1]) == len(PERCENT_BINS)


def test_gaode_shift_moves_every_coordinate_like_chinacrs() -> None:
    plain = for_basemap(FC, "none")
    shifted = for_basemap(FC, "gaode")
    assert plain == json.loads(FC)
    for f0, f1 in zip(plain["features"], shifted["features"], strict=True):
        assert f1["properties"] == f0["properties"] and f1["id"] == f0["id"]
        c0 = f0["geometry"]["coordinates"]
        pts = c0 if f0["geometry"]["type"] == "LineString" else [c0]
        got = f1["geometry"]["coordinates"]
        got_pts = got if f1["geometry"]["type"] == "LineString" else [got]
        for (x, y), (gx, gy) in zip(pts, got_pts, strict=True):
            ex, ey = wgs84_to_gcj02(x, y)
            assert gx == pytest.approx(float(ex), abs=1e-9) and gy == pytest.approx(float(ey), abs=1e-9)
            # GCJ-02 moves points in this region by a few hundred metres, never zero.
            assert 1e-4 < abs(gx - x) + abs(gy - y) < 1e-2
    empty = json.dumps({"type": "FeatureCollection", "features": []})
    assert for_basemap(empty, "gaode") == {"type": "FeatureCollection", "features": []}


def test_new_map_centre_is_lon_lat_and_basemaps() -> None:
    m = new_map((114.5, 38.04), 11, meta={"x-test": "1"})
    assert list(m.location) == [38.04, 114.5]
    page = render(m)
    assert '<meta name="x-test" content="1">' in page
    assert "tile.openstreetmap" not in page and "autonavi" not in page
    assert "openstreetmap" in render(new_map((114.5, 38.04), 11, basemap="osm")).lower()
    assert "autonavi" in render(new_map((114.5, 38.04), 11, basemap="gaode"))
    assert "tk=KEY" in render(new_map((114.5, 38.04), 11, basemap="tianditu", tianditu_key="KEY"))
    with pytest.raises(InvalidInputError, match="needs a key"):
        new_map((114.5, 38.04), 11, basemap="tianditu")
    with pytest.raises(InvalidInputError, match="basemap must be one of"):
        new_map((114.5, 38.04), 11, basemap="google")


def test_legend_and_title_escape_text() -> None:
    legend = legend_html([("<b>层</b>", [("#123456", "a&b")])])
    assert "&lt;b&gt;层&lt;/b&gt;" in legend and "a&amp;b" in legend and "background:#123456" in legend
    assert 'class="renewal-legend"' in legend and ">图例<" in legend
    title = title_html("标题 <x>", "副标题", "来源")
    assert "标题 &lt;x&gt;" in title and "副标题" in title and "来源" in title
    assert "font-size:11px" not in title_html("t")  # no caption line without a caption


def test_render_uses_local_assets_and_inlines_them() -> None:
    m = new_map((114.5, 38.04), 11)
    add_html(m, title_html("T"))
    page = render(m)
    assert 'class="renewal-title"' in page
    assert "/vendor/leaflet/leaflet.js" in page
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
    inlined = render(m, inline=True)
    assert "/vendor/" not in inlined
    assert "L.map" in inlined and len(inlined) > 10 * len(page)
