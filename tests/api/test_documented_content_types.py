"""Every answer's Content-Type is one its operation documents (found by bench/schemathesis_large.py).

The randomized run's ``content_type_conformance`` check (ST105 Undocumented Content-Type) found
200 answers whose media type the OpenAPI document did not list: the XLSX of ``/due``, the
JSON Schema of the queryables and the MapLibre/SLD/QML styles. These are its exact requests.
"""

from __future__ import annotations

from typing import Any

import pytest

CASES = [
    ("/due", "/due?f=xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("/due", "/due?f=xlsx&district=", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("/due", "/due", "application/json"),
    ("/collections/{collection_id}/queryables", "/collections/core_area_projects/queryables",
     "application/schema+json"),
    ("/collections/{collection_id}/queryables", "/collections/districts/queryables?f=html", "text/html"),
    ("/styles/{style_id}", "/styles/waterlogging_points", "application/vnd.mapbox.style+json"),
    ("/styles/{style_id}", "/styles/waterlogging_points?f=sld10", "application/vnd.ogc.sld+xml"),
    ("/styles/{style_id}", "/styles/waterlogging_points?f=qml", "application/vnd.qgis.qml"),
    ("/styles/{style_id}", "/styles/renewal", "application/vnd.mapbox.style+json"),
    ("/collections/{collection_id}/styles/{style_id}", "/collections/districts/styles/districts?f=qml",
     "application/vnd.qgis.qml"),
]


def _main_type(media_type: str) -> str:
    return media_type.split(";")[0].strip().lower()


@pytest.mark.parametrize(("template", "url", "expected"), CASES)
def test_content_type_is_documented(client: Any, template: str, url: str, expected: str) -> None:
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    got = _main_type(r.headers["content-type"])
    assert got == expected
    documented = client.get("/api").json()["paths"][template]["get"]["responses"]["200"].get("content", {})
    assert got in {_main_type(m) for m in documented}, (url, got, sorted(documented))
