"""The map viewer in a real headless Chromium, network off, on the live demo server.

Expected values come from independent SQL on the session database or from the app's own APIs,
never from constants. Screenshots are saved under ``artifacts/viewer-*.png``.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import psycopg
import pytest

from layers.registry import get_registry

pytestmark = pytest.mark.browser

CITY = (114.50, 38.04)


def _one(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_map_loads_without_console_errors(viewer, conn) -> None:
    viewer.open()
    # the project's own vector tiles are drawn: the districts visible at the start, from PostGIS
    assert viewer.rendered("districts") > 0
    assert viewer.rendered("vacated_land") > 0
    # the layer panel lists every registry layer, grouped, with its Chinese title
    titles = viewer.eval("[...document.querySelectorAll('.layer')].map(e => e.dataset.layer)")
    registry_ids = [r[0] for r in conn.execute("SELECT DISTINCT layer FROM renewal.layer_version")]
    assert set(registry_ids) <= set(titles)
    assert viewer.page.locator("#title").inner_text() == "石家庄城市更新一张图"
    # legend counts equal the table
    n_built = _one(conn, "SELECT count(*) FROM renewal.vacated_land WHERE status = 'built'")
    assert viewer.page.locator("#count-vacated_land-built").inner_text() == f"{n_built:,}"
    viewer.screenshot("01-start")


def test_toggling_a_layer_changes_the_drawn_features(viewer) -> None:
    viewer.open()
    viewer.jump(*CITY, 13)
    before = viewer.rendered("old_compounds")
    shot_before = viewer.screenshot("02-compounds-on")
    assert before > 0
    viewer.page.locator("#toggle-old_compounds").click()
    viewer.idle()
    assert viewer.rendered("old_compounds") == 0
    shot_after = viewer.screenshot("03-compounds-off")
    assert shot_before != shot_after
    # parcels are off by default; switching them on draws them
    assert viewer.rendered("land_parcels") == 0
    viewer.page.locator("#toggle-land_parcels").click()
    viewer.idle()
    assert viewer.rendered("land_parcels") > 0
    viewer.page.locator("#toggle-old_compounds").click()
    viewer.idle()
    assert viewer.rendered("old_compounds") == before


def test_parcels_show_as_overview_cells_at_city_scale(viewer) -> None:
    viewer.open()
    viewer.jump(*CITY, 11)
    viewer.page.locator("#toggle-land_parcels").click()
    viewer.idle()
    cells = viewer.eval("() => window.viewer.map.queryRenderedFeatures({layers: ['land_parcels:overview']}).length")
    assert cells > 0 and viewer.rendered("land_parcels") == 0  # cells, not clickable parcels
    viewer.screenshot("11-parcels-overview-z11")
    viewer.jump(*CITY, 14)
    assert viewer.rendered("land_parcels") > 0
    assert viewer.eval("() => window.viewer.map.queryRenderedFeatures({layers: ['land_parcels:overview']}).length") == 0


def _placed_labels(viewer: Any, layer: str) -> dict[int, str]:
    """Names MapLibre has placed on the map for ``layer`` (a label whose text could not be drawn is not placed)."""
    pairs = viewer.eval("(l) => window.viewer.map.queryRenderedFeatures({layers: [l + ':label']})"
                        ".map(f => [f.id, f.properties.name])", layer)
    return {int(i): n for i, n in pairs}


def test_names_are_drawn_as_labels_in_local_fonts(viewer, conn) -> None:
    """The style names no glyph server (layers/styles.py LABEL_FONTS): with the network off the map still
    writes each compound's Chinese name on it, from its label zoom, and the names are the table's."""
    viewer.open()
    assert viewer.eval("() => window.viewer.map.getStyle().glyphs") is None
    label_zoom = get_registry().get("old_compounds").style.label_min_zoom
    assert label_zoom is not None
    viewer.jump(*CITY, label_zoom - 1)
    assert viewer.rendered("old_compounds") > 0 and _placed_labels(viewer, "old_compounds") == {}
    viewer.jump(*CITY, label_zoom + 1)
    # symbols are placed in the frames after their tiles load: wait for them rather than for one idle event
    viewer.page.wait_for_function(
        "() => window.viewer.map.queryRenderedFeatures({layers: ['old_compounds:label']}).length >= 3", timeout=15_000)
    placed = _placed_labels(viewer, "old_compounds")
    assert len(placed) >= 3
    names = dict(conn.execute("SELECT id, name FROM renewal.old_compounds WHERE id = ANY(%s)", (list(placed),)))
    assert placed == names
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in placed.values())
    shot_on = viewer.screenshot("12-compound-labels")
    # a hidden layer's names go with it
    viewer.page.locator("#toggle-old_compounds").click()
    viewer.idle()
    assert _placed_labels(viewer, "old_compounds") == {}
    assert viewer.screenshot("13-compound-labels-off") != shot_on


def test_a_district_is_named_once_however_many_tiles_it_crosses(viewer, conn) -> None:
    """MapLibre labelled a polygon in every tile it crossed: at city scale a district's name stood on the map
    up to four times. Labels are drawn from one label point per polygon (layers/styles.label_points)."""
    viewer.open()
    label_zoom = get_registry().get("districts").style.label_min_zoom
    assert label_zoom is not None
    viewer.jump(*CITY, label_zoom + 1)
    viewer.page.wait_for_function(
        "() => window.viewer.map.queryRenderedFeatures({layers: ['districts:label']}).length >= 3", timeout=15_000)
    viewer.page.wait_for_timeout(500)  # placement settles over a few frames
    placed = viewer.eval("() => window.viewer.map.queryRenderedFeatures({layers: ['districts:label']})"
                         ".map(f => f.properties.name)")
    names = {name for (name,) in conn.execute("SELECT name FROM renewal.districts WHERE name <> ''")}
    assert len(placed) >= 3 and set(placed) <= names
    assert len(placed) == len(set(placed)), sorted(placed)
    viewer.screenshot("14-district-labels")


def _ink_pixels(viewer: Any, text: str, lon: float, lat: float) -> int:
    """Dark pixels around (lon, lat) after writing ``text`` there with the style's label layout (fonts, size)."""
    from io import BytesIO

    from PIL import Image

    box = viewer.eval("""([text, lon, lat]) => {
        const m = window.viewer.map;
        const layout = {...m.getStyle().layers.find((l) => l.id === 'old_compounds:label').layout};
        for (const id of ['probe:text']) if (m.getLayer(id)) m.removeLayer(id);
        if (m.getSource('probe')) m.removeSource('probe');
        m.addSource('probe', {type: 'geojson', data: {type: 'Feature', properties: {name: text},
            geometry: {type: 'Point', coordinates: [lon, lat]}}});
        m.addLayer({id: 'probe:text', type: 'symbol', source: 'probe',
            layout: {...layout, 'text-size': 40, 'text-anchor': 'center', 'text-offset': [0, 0],
                     'text-allow-overlap': true, 'text-ignore-placement': true, visibility: 'visible'},
            paint: {'text-color': '#000000', 'text-halo-width': 0}});
        const p = m.project([lon, lat]);
        const r = m.getCanvas().getBoundingClientRect();
        return {x: r.left + p.x - 120, y: r.top + p.y - 40, width: 240, height: 80};
    }""", [text, lon, lat])
    viewer.idle()
    if text:  # placed, then faded in (MapLibre's fadeDuration is 300 ms)
        viewer.page.wait_for_function(
            "() => window.viewer.map.queryRenderedFeatures({layers: ['probe:text']}).length > 0", timeout=15_000)
    viewer.page.wait_for_timeout(500)
    shot = Image.open(BytesIO(viewer.page.screenshot(clip=box))).convert("L")
    return sum(1 for v in shot.getdata() if v < 60)


def test_full_width_opening_brackets_in_labels_are_drawn(viewer) -> None:
    """Names often hold full-width brackets (（一期）, 《》). Their ink lies right of the glyph's origin, and
    MapLibre 5.x's local-font glyphs (TinySDF before 2.2) came out blank for such glyphs: 院（演示） showed as
    院　演示）. Written on the map alone, three （ leave as much ink as three ）."""
    viewer.open()
    viewer.jump(*CITY, 12)
    lon, lat = CITY
    blank = _ink_pixels(viewer, "", lon, lat)
    opening = _ink_pixels(viewer, "（（（", lon, lat) - blank
    closing = _ink_pixels(viewer, "）））", lon, lat) - blank
    assert closing > 50, closing
    assert opening > closing / 2, (opening, closing)


def test_status_filter_hides_one_status(viewer) -> None:
    viewer.open()
    viewer.jump(*CITY, 13)
    before = viewer.rendered("old_compounds")
    completed = viewer.eval("""() => new Set(window.viewer.map.queryRenderedFeatures(
        {layers: ['old_compounds:fill', 'old_compounds:line']})
        .filter(f => f.properties.status === 'completed').map(f => f.id)).size""")
    assert completed > 0
    viewer.page.locator("#status-old_compounds-completed").uncheck()
    viewer.idle()
    assert viewer.rendered("old_compounds") == before - completed



def test_parcels_at_zoom_16_are_drawn_where_they_are(viewer, conn) -> None:
    """From z15 parcels inside a tile are drawn without ST_AsMVTGeom (api/routers/tiles.py): each parcel's
    interior point, projected by the map, hits that parcel and no other, and a parcel wholly inside a z16
    tile (so not clipped in any tile the map may use) spans its own extent on screen within a pixel."""
    rows = conn.execute(
        "SELECT p.id, ST_X(q), ST_Y(q), ST_XMin(p.geom), ST_YMin(p.geom), ST_XMax(p.geom), ST_YMax(p.geom), "
        "ST_Transform(ST_TileEnvelope(16, floor((ST_X(m) + 20037508.342789244) / 611.4962262814100)::int, "
        "floor((20037508.342789244 - ST_Y(m)) / 611.4962262814100)::int), 4490) ~ p.geom "
        "FROM renewal.land_parcels AS p, ST_PointOnSurface(p.geom) AS q, ST_Transform(q, 3857) AS m "
        "WHERE p.geom && ST_MakeEnvelope(%s - 0.002, %s - 0.0015, %s + 0.002, %s + 0.0015, 4490) "
        "AND ST_Area(ST_Transform(p.geom, 3857)) > 400 ORDER BY p.id LIMIT 12",
        (*CITY, *CITY),
    ).fetchall()
    assert sum(1 for r in rows if r[-1]) >= 3
    assert len(rows) >= 3
    viewer.open()
    viewer.page.locator("#toggle-land_parcels").click()
    viewer.jump(*CITY, 16)
    for fid, lon, lat, *bbox, inside_z16_tile in rows:
        hit = viewer.eval(
            """([lon, lat]) => { const m = window.viewer.map; const p = m.project([lon, lat]);
                 const ids = m.getStyle().layers.filter((l) => l.source === 'land_parcels' && l.type === 'fill')
                   .map((l) => l.id);
                 const fs = m.queryRenderedFeatures(p, {layers: ids});
                 const mine = fs.filter((f) => f.layer.source === 'land_parcels');
                 if (!mine.length) return null;
                 const pts = [];
                 const walk = (a) => (typeof a[0] === 'number' ? pts.push(a) : a.forEach(walk));
                 walk(mine[0].geometry.coordinates);
                 const px = pts.map((c) => m.project(c));
                 return {ids: [...new Set(mine.map((f) => f.id))],
                         box: [Math.min(...px.map((q) => q.x)), Math.max(...px.map((q) => q.x)),
                               Math.min(...px.map((q) => q.y)), Math.max(...px.map((q) => q.y))]}; }""",
            [lon, lat],
        )
        assert hit is not None and hit["ids"] == [fid]
        west, south, east, north = bbox
        sw = viewer.eval("([lon, lat]) => window.viewer.map.project([lon, lat])", [west, south])
        ne = viewer.eval("([lon, lat]) => window.viewer.map.project([lon, lat])", [east, north])
        for got, want in zip(hit["box"], (sw["x"], ne["x"], ne["y"], sw["y"]), strict=True):
            assert abs(got - want) <= 1 or not inside_z16_tile


def test_clicking_a_feature_opens_its_popup(viewer, conn) -> None:
    fid, name, lon, lat, mu, n_hist = _one(
        conn,
        "SELECT v.id, v.name, ST_X(p), ST_Y(p), round(v.area_mu::numeric, 2), "
        "(SELECT count(*) FROM renewal.status_history h WHERE h.layer = 'vacated_land' AND h.feature_id = v.id) "
        "FROM renewal.vacated_land v, ST_PointOnSurface(v.geom) AS p WHERE v.name LIKE '华药集团老厂区%'",
    )
    viewer.open()
    viewer.jump(lon, lat, 15)
    x, y = viewer.eval(
        "([lon, lat]) => { const p = window.viewer.map.project([lon, lat]); "
        "const r = window.viewer.map.getCanvas().getBoundingClientRect(); "
        "return [p.x + r.left, p.y + r.top]; }",
        [lon, lat],
    )
    viewer.page.mouse.click(x, y)
    popup = viewer.page.locator(".maplibregl-popup .popup-name")
    popup.wait_for(timeout=15_000)
    assert popup.inner_text() == name
    text = viewer.page.locator(".maplibregl-popup").inner_text()
    assert f"{float(mu):,.2f}".rstrip("0").rstrip(".") in text and "亩" in text
    assert viewer.page.locator(".maplibregl-popup .timeline li").count() == n_hist
    viewer.idle()
    viewer.screenshot("04-popup")


def test_popup_on_a_date_gives_that_dates_status_and_the_current_one(viewer, conn) -> None:
    """With the slider on 2021-06-30 the popup of 华药集团老厂区 says what the map colours it with
    that day, and gives 交割/交付 (its status today) labelled as the current status."""
    fid, name, lon, lat, now = _one(
        conn,
        "SELECT v.id, v.name, ST_X(p), ST_Y(p), v.status "
        "FROM renewal.vacated_land v, ST_PointOnSurface(v.geom) AS p WHERE v.name LIKE '华药集团老厂区%'",
    )
    then = _one(
        conn,
        "SELECT to_status FROM renewal.status_history WHERE layer = 'vacated_land' AND feature_id = %s "
        "AND effective_date <= '2021-06-30' ORDER BY effective_date DESC, id DESC LIMIT 1",
        fid,
    )
    labels = {s.code: (s.label, s.label_en) for s in get_registry().get("vacated_land").lifecycle.statuses}
    assert then != now
    viewer.open()
    viewer.page.locator("#date-input").fill("2021-06-30")
    viewer.page.locator("#date-input").dispatch_event("change")
    viewer.idle()
    viewer.jump(lon, lat, 15)
    state = viewer.eval(
        "(id) => window.viewer.map.getFeatureState({source: 'vacated_land', sourceLayer: 'vacated_land', id}).status",
        fid,
    )
    assert state == then  # the map's colour on that date
    x, y = viewer.eval(
        "([lon, lat]) => { const p = window.viewer.map.project([lon, lat]); "
        "const r = window.viewer.map.getCanvas().getBoundingClientRect(); "
        "return [p.x + r.left, p.y + r.top]; }",
        [lon, lat],
    )
    viewer.page.mouse.click(x, y)
    box = viewer.page.locator(".maplibregl-popup .popup")
    box.wait_for(timeout=15_000)
    assert viewer.page.locator(".maplibregl-popup .popup-name").inner_text() == name
    assert box.get_attribute("data-status") == then
    rows = dict(
        (r[0], r[1]) for r in viewer.eval(
            "() => [...document.querySelectorAll('.maplibregl-popup tr')].map((tr) => "
            "[...tr.querySelectorAll('td')].map((td) => td.textContent))"
        )
    )
    assert rows["2021-06-30 状态"] == labels[then][0]
    assert rows["当前状态"] == labels[now][0] == "交割/交付"
    viewer.screenshot("04b-popup-as-of")
    # in English the same rows, in English (the popup is redrawn on the language switch)
    viewer.page.locator("#btn-lang").click()
    viewer.page.locator(".maplibregl-popup .popup").wait_for(timeout=15_000)
    viewer.page.wait_for_function(
        "() => [...document.querySelectorAll('.maplibregl-popup td')]"
        ".some((td) => td.textContent === 'Current status')",
        timeout=15_000,
    )
    rows = dict(
        (r[0], r[1]) for r in viewer.eval(
            "() => [...document.querySelectorAll('.maplibregl-popup tr')].map((tr) => "
            "[...tr.querySelectorAll('td')].map((td) => td.textContent))"
        )
    )
    assert rows["Status on 2021-06-30"] == (labels[then][1] or labels[then][0])
    assert rows["Current status"] == (labels[now][1] or labels[now][0])


def test_slider_replays_completed_old_compounds(viewer, conn, live_server) -> None:
    viewer.open()
    count = viewer.page.locator("#count-old_compounds-completed")
    now = _one(conn, "SELECT count(*) FROM renewal.old_compounds WHERE status = 'completed'")
    assert count.inner_text() == f"{now:,}"
    viewer.jump(*CITY, 12)
    viewer.page.locator("#date-input").fill("2021-06-30")
    viewer.page.locator("#date-input").dispatch_event("change")
    viewer.idle()
    api = httpx.get(
        f"{live_server.url}/viewer/status-as-of",
        params={"layer": "old_compounds", "as_of": "2021-06-30", "states": "false"},
    ).json()
    expected = _one(
        conn,
        """
        SELECT count(*) FROM renewal.old_compounds t
        WHERE (SELECT h.to_status FROM renewal.status_history h
               WHERE h.layer = 'old_compounds' AND h.feature_id = t.id AND h.effective_date <= '2021-06-30'
               ORDER BY h.effective_date DESC, h.id DESC LIMIT 1) = 'completed'""",
    )
    assert api["counts"]["completed"] == expected
    assert count.inner_text() == f"{expected:,}"
    assert expected != now
    # the map draws the statuses of that date: drawn features are coloured by their as-of state
    drawn = viewer.eval("""() => { const m = window.viewer.map; const out = {};
        for (const f of m.queryRenderedFeatures({layers: ['old_compounds:fill']})) {
          const s = m.getFeatureState({source: 'old_compounds', sourceLayer: 'old_compounds', id: f.id});
          out[f.id] = s.status; }
        return out; }""")
    assert drawn
    ids = [int(k) for k in drawn]
    truth = dict(
        conn.execute(
            """
        SELECT t.id, (SELECT h.to_status FROM renewal.status_history h
               WHERE h.layer = 'old_compounds' AND h.feature_id = t.id AND h.effective_date <= '2021-06-30'
               ORDER BY h.effective_date DESC, h.id DESC LIMIT 1)
        FROM renewal.old_compounds t WHERE t.id = ANY(%s)""",
            (ids,),
        ).fetchall()
    )
    assert {int(k): v for k, v in drawn.items()} == truth
    # the progress panel follows the slider: the 2021 compounds target shows the progress API's value
    progress = httpx.get(f"{live_server.url}/progress", params={"as_of": "2021-06-30"}).json()
    record = next(r for r in progress["targets"] if r["target"] == "compounds_renovated_2021")
    panel = viewer.page.locator('.target[data-target="compounds_renovated_2021"] .t-meta').inner_text()
    assert f"{record['actual']:,.0f}" in panel
    assert viewer.page.locator("#progress-date").inner_text().endswith("2021-06-30")
    viewer.screenshot("05-as-of-2021-06-30")


def test_search_finds_a_named_vacated_plot(viewer, conn) -> None:
    name, code, x0, y0, x1, y1 = _one(
        conn,
        "SELECT name, code, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
        "FROM renewal.vacated_land WHERE name LIKE '石钢集团%'",
    )
    viewer.open()
    viewer.page.locator("#search").fill("石钢")
    first = viewer.page.locator("#search-results li").first
    first.wait_for(timeout=10_000)
    assert name in first.inner_text() and code in first.inner_text()
    first.click()
    viewer.page.locator(".maplibregl-popup .popup-name").wait_for(timeout=15_000)
    assert viewer.page.locator(".maplibregl-popup .popup-name").inner_text() == name
    viewer.page.wait_for_timeout(800)
    viewer.idle()
    lon, lat = viewer.eval("(() => { const c = window.viewer.map.getCenter(); return [c.lng, c.lat]; })()")
    assert x0 <= lon <= x1 and y0 <= lat <= y1
    viewer.screenshot("06-search")


def test_district_selector_zooms_and_filters(viewer, conn) -> None:
    code, dname, x0, y0, x1, y1 = _one(
        conn,
        "SELECT code, name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
        "FROM renewal.districts WHERE code = '130104'",
    )
    viewer.open()
    zoom0 = viewer.eval("window.viewer.map.getZoom()")
    viewer.page.locator("#district").select_option(code)
    viewer.page.wait_for_timeout(900)
    viewer.idle()
    zoom1, (lon, lat), bounds = viewer.eval("""[window.viewer.map.getZoom(),
        [window.viewer.map.getCenter().lng, window.viewer.map.getCenter().lat],
        window.viewer.map.getBounds().toArray()]""")
    assert zoom1 > zoom0 + 1
    assert x0 <= lon <= x1 and y0 <= lat <= y1
    (bw, bs), (be, bn) = bounds
    assert bw <= x0 + 1e-3 and be >= x1 - 1e-3 and bs <= y0 + 1e-3 and bn >= y1 - 1e-3
    # the legend counts only the district's compounds, like the table does
    n = _one(conn, "SELECT count(*) FROM renewal.old_compounds WHERE district_code = %s AND status = 'pending'", code)
    assert viewer.page.locator("#count-old_compounds-pending").inner_text() == f"{n:,}"
    # only the district's features are drawn; the others in view are hidden
    drawn = viewer.eval("""() => { const m = window.viewer.map; const ids = new Set();
        for (const f of m.queryRenderedFeatures({layers: ['old_compounds:fill']})) {
          const s = m.getFeatureState({source: 'old_compounds', sourceLayer: 'old_compounds', id: f.id});
          if (s.on && s.status !== 'none') ids.add(f.id); }
        return [...ids]; }""")
    in_view = viewer.eval(
        "new Set(window.viewer.map.queryRenderedFeatures({layers: ['old_compounds:fill']}).map(f => f.id)).size"
    )
    assert drawn and len(drawn) < in_view
    districts = {
        r[0]
        for r in conn.execute("SELECT DISTINCT district_code FROM renewal.old_compounds WHERE id = ANY(%s)", (drawn,))
    }
    assert districts == {code}
    viewer.screenshot("07-district-qiaoxi")
    # the names follow: label points (their own MVT layer) carry the same states, so only the district's show
    label_zoom = get_registry().get("old_compounds").style.label_min_zoom
    viewer.jump(lon, lat, label_zoom + 1)
    viewer.page.wait_for_function(
        "() => window.viewer.map.queryRenderedFeatures({layers: ['old_compounds:label']}).length > 0", timeout=15_000)
    states = viewer.eval("""() => { const m = window.viewer.map; const out = {};
        for (const f of m.queryRenderedFeatures({layers: ['old_compounds:label']}))
          out[f.id] = !!m.getFeatureState({source: 'old_compounds', sourceLayer: 'old_compounds:label', id: f.id}).on;
        return out; }""")
    ids = [int(k) for k in states]
    inside = {r[0] for r in conn.execute(
        "SELECT id FROM renewal.old_compounds WHERE id = ANY(%s) AND district_code = %s", (ids, code))}
    assert inside and {int(k): v for k, v in states.items()} == {i: i in inside for i in ids}


def test_english_switch_and_downloads(viewer, live_server) -> None:
    viewer.open()
    viewer.page.locator("#btn-lang").click()
    assert viewer.page.locator("#title").inner_text() == "Shijiazhuang urban renewal map"
    assert "Vacated land" in viewer.page.locator('.layer[data-layer="vacated_land"]').inner_text()
    links = viewer.eval("[...document.querySelectorAll('#downloads a')].map(a => a.getAttribute('href'))")
    assert any("/collections/vacated_land/items?f=gpkg" in h for h in links)
    assert any("f=xlsx" in h for h in links)
    progress_map = viewer.page.locator("#link-progress-map").get_attribute("href")
    assert progress_map and progress_map.startswith("/maps/progress")
    r = httpx.get(live_server.url + progress_map)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    viewer.screenshot("08-english")


def test_phone_width(phone) -> None:
    phone.open()
    assert phone.eval("document.getElementById('panel-layers').classList.contains('closed')")
    width = phone.eval("window.viewer.map.getCanvas().getBoundingClientRect().width")
    assert width >= 370
    phone.screenshot("09-phone")
    phone.page.locator("#btn-layers").click()
    assert phone.page.locator("#panel-layers").is_visible()
    phone.screenshot("10-phone-layers")


def test_gcj02_shift_matches_python(viewer) -> None:
    from gis.chinacrs import wgs84_to_gcj02

    viewer.open()
    points = [(114.50, 38.04), (114.70, 38.28), (113.9, 37.6)]
    js = viewer.eval(
        """async (pts) => { const m = await import('/viewer/static/js/gcj02.js');
        return pts.map(([x, y]) => m.wgs84ToGcj02(x, y)); }""",
        points,
    )
    for (lon, lat), (jx, jy) in zip(points, js, strict=True):
        px, py = wgs84_to_gcj02(lon, lat)
        assert abs(float(px) - jx) < 1e-9 and abs(float(py) - jy) < 1e-9
    # the output tile z/x/y over the city is assembled from the GCJ-02 tiles covering its shifted extent
    z = 14
    n = 2**z
    x = int((CITY[0] + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(CITY[1]))) / math.pi) / 2 * n)
    sources = viewer.eval(
        """async ([z, x, y]) => { const m = await import('/viewer/static/js/gcj02.js');
        return m.shiftedSources(z, x, y); }""",
        [z, x, y],
    )
    assert 1 <= len(sources) <= 4
    west = x / n * 360 - 180
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    gx, gy = (float(v) for v in wgs84_to_gcj02(west, north))
    px = (gx + 180) / 360 * 256 * n
    py = (1 - math.asinh(math.tan(math.radians(gy))) / math.pi) / 2 * 256 * n
    first = min(sources, key=lambda s: (s["x"], s["y"]))
    # (source-pixel offsets, stretched to output pixels by the tile's scale w/256, h/256)
    assert first["dx"] == pytest.approx((first["x"] * 256 - px) * first["w"] / 256, abs=0.01)
    assert first["dy"] == pytest.approx((first["y"] * 256 - py) * first["h"] / 256, abs=0.01)
    # the datum shift here is several hundred metres, i.e. tens of pixels at zoom 14
    assert 20 < math.hypot(x * 256 - px, y * 256 - py) < 120
    assert all(abs(s["w"] - 256) < 3 and abs(s["h"] - 256) < 3 for s in sources)
