"""Progress maps over HTTP, the /vendor assets, and a headless Chromium with the network off."""

from __future__ import annotations

import json
import re
import shutil

import psycopg
import pytest

from tests.conftest import ARTIFACTS, IN_CI


@pytest.mark.parametrize(
    "path",
    ["/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css", "/vendor/leaflet/images/layers.png",
     "/vendor/jquery/jquery.min.js", "/vendor/bootstrap/css/bootstrap.min.css",
     "/vendor/fontawesome/css/all.min.css", "/vendor/fontawesome/webfonts/fa-solid-900.woff2"],
)
def test_vendor_files(client, path: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.status_code == 200 and len(r.content) > 100
    assert "max-age=31536000" in r.headers["cache-control"]
    again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    ["/vendor/leaflet/../../package.json", "/vendor/leaflet/%2e%2e/%2e%2e/package-lock.json", "/vendor/nope/a.js",
     "/vendor/leaflet/leaflet-src.esm.js.txt", "/vendor/leaflet/", "/vendor/jquery/../../../etc/passwd"],
)
def test_vendor_whitelist(client, path: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.status_code == 404


def test_map_references_only_local_assets(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/maps/progress", params={"as_of": "2021-09-30", "target": "villages_started_2021"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.findall(r"""(?:src|href)=["']https?://""", html)
    assert '<script src="/vendor/leaflet/leaflet.js"></script>' in html
    assert "截至 2021-09-30" in html and "图例" in html and "数据来源" in html


@pytest.mark.parametrize(
    ("url", "status"),
    [("/maps/progress?as_of=2021-13-01", 400), ("/maps/progress?target=nope", 404),
     ("/maps/progress?basemap=google", 400), ("/maps/progress?basemap=tianditu", 400),
     ("/maps/no_layer", 404), ("/maps/old_compounds?status=bogus", 400), ("/maps/districts?status=x", 400)],
)
def test_map_errors(client, url: str, status: int) -> None:  # type: ignore[no-untyped-def]
    r = client.get(url)
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")


def test_gaode_option_shifts_our_data(client) -> None:  # type: ignore[no-untyped-def]
    plain = client.get("/maps/toll_stations", params={"as_of": "2021-09-01"}).text
    gaode = client.get("/maps/toll_stations", params={"as_of": "2021-09-01", "basemap": "gaode"}).text
    assert "autonavi" in gaode and "autonavi" not in plain

    def first_point(html: str) -> list[float]:
        m = re.search(r'"coordinates": \[([0-9.]+), ([0-9.]+)\]', html)
        assert m, "no point in the map"
        return [float(m.group(1)), float(m.group(2))]

    (x0, y0), (x1, y1) = first_point(plain), first_point(gaode)
    assert 0.003 < x1 - x0 < 0.009 and 0.0 < y1 - y0 < 0.003  # GCJ-02 is a few hundred metres off here


def test_layer_map_status_filter(client, conn: psycopg.Connection, demo_loaded) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/maps/old_compounds", params={"as_of": "2021-09-30", "status": "已完工"}).text
    n = conn.execute(
        "SELECT count(*) FROM renewal.old_compounds t WHERE (SELECT h.to_status FROM renewal.status_history h "
        "WHERE h.layer = 'old_compounds' AND h.feature_id = t.id AND h.effective_date <= '2021-09-30' "
        "ORDER BY h.effective_date DESC, h.id DESC LIMIT 1) = 'completed'"
    ).fetchone()[0]
    assert html.count('"code": "LJXQ-') == n > 0


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
def test_progress_map_in_headless_chromium_offline(live_server, conn: psycopg.Connection) -> None:  # type: ignore[no-untyped-def]
    if shutil.which(CHROMIUM) is None and not IN_CI:
        pytest.skip("Debian chromium is not installed (scripts/os-test-deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    as_of = "2021-09-30"
    url = f"{live_server.url}/maps/progress?as_of={as_of}&target=compounds_renovated_2021"
    # what the data says: features of the target layer with a status by then, districts, rings, river
    n_features = conn.execute(
        "SELECT count(DISTINCT feature_id) FROM renewal.status_history WHERE layer = 'old_compounds' "
        "AND effective_date <= %s", (as_of,),
    ).fetchone()[0]
    n_districts, n_rings, n_river = (conn.execute(f"SELECT count(*) FROM renewal.{t}").fetchone()[0]
                                     for t in ("districts", "ring_roads", "hutuo_river"))
    blocked: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def route(r):  # type: ignore[no-untyped-def]
                if r.request.url.startswith("http://127.0.0.1:"):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="networkidle", timeout=120_000)
            page.wait_for_selector(".leaflet-overlay-pane path", timeout=60_000)
            assert page.locator(".leaflet-map-pane").count() == 1
            assert page.locator(".leaflet-overlay-pane").count() == 1
            assert page.locator(".leaflet-control-layers").count() == 1
            legend = page.locator(".renewal-legend")
            assert legend.count() == 1 and "图例" in legend.inner_text() and "已完工" in legend.inner_text()
            assert as_of in page.locator(".renewal-title").inner_text()
            drawn = page.evaluate(
                """() => ({
                  features: document.querySelectorAll('path.renewal-old_compounds').length,
                  districts: document.querySelectorAll('path.renewal-district').length,
                  rings: document.querySelectorAll('path.renewal-ring').length,
                  river: document.querySelectorAll('path.renewal-river').length,
                  leaflet: typeof L !== 'undefined' ? L.version : null })"""
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "progress_map.png"), full_page=False)
            (ARTIFACTS / "progress_map_counts.json").write_text(json.dumps(drawn))
        finally:
            browser.close()
    assert blocked == [], f"the map needed the internet: {blocked}"
    assert errors == [], errors
    assert drawn["leaflet"] == "1.9.3"
    assert drawn["features"] == n_features > 0
    assert drawn["districts"] >= n_districts  # multipolygons may draw as one path each
    assert drawn["rings"] == n_rings and drawn["river"] == n_river
