"""The viewer of a second city (no plan catalog) in a real browser: it opens on the city, titled for it.

Same app, another database: the map starts at the city profile's centre, the title is the city's,
its districts are drawn from its own tiles, and the page logs no errors although the city has no
plan targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from layers.importer import ImportOptions, run_import
from tests.browser.conftest import ViewerPage, _check, _new_page
from tests.conftest import LiveServer
from tests.fixtures import second_city as sc


@pytest.fixture(scope="module")
def city_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("city_browser")
    with sc.second_city_database(tmp) as url:
        report = run_import(url, "land_parcels", sc.parcels_geojson(tmp / "p.geojson"), ImportOptions())
        assert report.status == "applied"
        server = LiveServer(url)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture()
def city_viewer(browser: Any, city_server: LiveServer) -> Iterator[ViewerPage]:
    context, vp = _new_page(browser, city_server.url, 1280, 800)
    try:
        yield vp
        _check(vp)
    finally:
        context.close()


def test_viewer_opens_on_the_second_city(city_viewer: ViewerPage) -> None:
    city_viewer.open()
    lon, lat = city_viewer.eval("(() => { const c = window.viewer.map.getCenter(); return [c.lng, c.lat]; })()")
    assert 120.2 < lon < 120.4 and 36.0 < lat < 36.2
    assert city_viewer.page.locator("#title").inner_text() == "青岛城市更新一张图"
    assert city_viewer.page.title() == "青岛城市更新一张图"
    assert city_viewer.rendered("districts") > 0
    w, s, e, n = city_viewer.eval("window.viewer.map.getBounds().toArray().flat()")
    assert w < sc.XS[0] and e > sc.XS[-1] and s < sc.YS[0] and n > sc.YS[-1]  # every district in view
    assert "synthetic demo data" not in city_viewer.page.locator(".maplibregl-ctrl-attrib").inner_text()
    city_viewer.screenshot("city-qingdao")
