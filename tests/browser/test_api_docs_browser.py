"""The interactive API document (``/api.html``) renders with the network off.

FastAPI's own page loaded Swagger UI from cdn.jsdelivr.net, so on a closed intranet it stayed
blank; the app now serves the pinned ``swagger-ui-dist`` (api/routers/assets.py). The ``viewer``
fixture aborts and records every request that leaves 127.0.0.1 and fails on console errors.
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ViewerPage


def test_api_document_page_renders_every_operation_offline(viewer: ViewerPage) -> None:
    viewer.page.goto(viewer.base_url + "/api.html")
    viewer.page.wait_for_selector(".opblock", timeout=60_000)
    operations = viewer.page.locator(".opblock").count()
    documented = viewer.page.evaluate("fetch('/api').then(r => r.json()).then(d => Object.values(d.paths)"
                                      ".reduce((n, item) => n + Object.keys(item).length, 0))")
    assert operations >= 50 and operations == documented, (operations, documented)
    assert "城市更新" in viewer.page.locator(".info .title").inner_text()


def test_api_document_page_names_only_local_files(client: Any) -> None:
    html = client.get("/api.html").text
    assert "cdn.jsdelivr.net" not in html and "tiangolo" not in html
    for path in ("/vendor/swagger-ui-dist/swagger-ui-bundle.js", "/vendor/swagger-ui-dist/swagger-ui.css"):
        assert path in html
        assert client.get(path).status_code == 200
