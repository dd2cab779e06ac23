"""The OGC HTML pages print numbers to their field's precision and instants in local time; data keeps full precision."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from api.ogc.html import display
from layers.registry import get_registry

REG = get_registry()


def test_registry_precisions() -> None:
    want = {"area_mu": 2, "far": 2, "length_m": 1}
    for layer in REG:
        for name, digits in want.items():
            if any(f.name == name for f in layer.fields):
                assert layer.precisions[name] == digits, (layer.id, name)


def test_display_rule() -> None:
    p = {"area_mu": 2, "length_m": 1}
    assert display(611.9999999999126, "area_mu", p) == "612.00"
    assert display(12.34567, "length_m", p) == "12.3"
    assert display(7, "households", p) == "7" and display(None, "area_mu", p) == ""
    assert display("2024-05-01T16:30:00+00:00", "updated_at", p) == "2024-05-02 00:30"
    assert display("2024-05-01", "d", p) == "2024-05-01" and display("裕华区", "name", p) == "裕华区"


def test_items_html_uses_precision_and_local_time(client: Any, conn: psycopg.Connection) -> None:
    r = client.get("/collections/old_compounds/items", params={"f": "html", "limit": "50",
                                                                "properties": "name,area_mu,floor_area_m2"})
    assert r.status_code == 200
    cells = re.findall(r'<td class="num">([^<]*)</td>', r.text)
    assert cells and all(re.fullmatch(r"-?\d+\.\d{1,2}", c) for c in cells if c), cells[:5]
    assert not re.search(r"\d+\.\d{5,}", r.text.split("<script", 1)[0])
    assert "white-space: nowrap" in r.text
    # the feature page: updated_at in local time, no raw ISO instant
    fid = conn.execute("SELECT id FROM renewal.old_compounds ORDER BY id LIMIT 1").fetchone()[0]
    page = client.get(f"/collections/old_compounds/items/{fid}", params={"f": "html"}).text
    table = page.split("<table", 1)[1].split("</table>", 1)[0]
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", table)


def test_geojson_keeps_full_precision(client: Any, conn: psycopg.Connection) -> None:
    rows = dict(conn.execute("SELECT id, area_mu FROM renewal.old_compounds ORDER BY id LIMIT 20").fetchall())
    body = client.get("/collections/old_compounds/items", params={"limit": "20", "properties": "area_mu"}).json()
    for f in body["features"]:
        assert f["properties"]["area_mu"] == float(rows[f["id"]])
