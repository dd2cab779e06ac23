"""``offset`` paging (ArcGIS Pro's way) against cursor paging: the same rows, page by page.

For every page size and sort order tried, page k by ``offset=k*limit`` must hold exactly the
features of the k-th page reached by following the cursor ``next`` links, and ``numberMatched``
must be the same number on both.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from layers.query import MAX_OFFSET


def cursor_pages(client: Any, path: str, params: dict[str, str]) -> tuple[list[list[int]], set[Any]]:
    """Every page's feature ids following ``next`` links, and the numberMatched values seen."""
    pages: list[list[int]] = []
    matched: set[Any] = set()
    url: str | None = path
    first = True
    while url:
        r = client.get(url, params=params if first else None)
        first = False
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([f["id"] for f in body["features"]])
        matched.add(body.get("numberMatched"))
        nxt = [lk["href"] for lk in body["links"] if lk["rel"] == "next"]
        url = nxt[0] if nxt else None
    return pages, matched


CASES = [
    ("old_compounds", {"limit": "7"}),
    ("old_compounds", {"limit": "100", "sortby": "-area_mu,name"}),
    ("old_compounds", {"limit": "3", "sortby": "households", "status": "started"}),
    ("old_compounds", {"limit": "50", "sortby": "-households",
                       "filter": "area_mu > 20 AND district_code IN ('130102','130104')"}),
    ("land_parcels", {"limit": "500", "sortby": "far", "properties": "far",
                      "bbox": "114.45,38.0,114.55,38.06"}),
    ("land_parcels", {"limit": "1000", "sortby": "-far,id", "properties": "code,far"}),
]


@pytest.mark.parametrize(("layer_id", "params"), CASES)
def test_offset_pages_equal_cursor_pages(client: Any, layer_id: str, params: dict[str, str]) -> None:
    path = f"/collections/{layer_id}/items"
    pages, matched = cursor_pages(client, path, params)
    assert len(matched) == 1
    limit = int(params["limit"])
    assert sum(len(p) for p in pages) > limit, "the case must span several pages"
    for k, want in enumerate(pages):
        r = client.get(path, params={**params, "offset": str(k * limit)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [f["id"] for f in body["features"]] == want, f"page {k}"
        assert body.get("numberMatched") in matched
        assert body["numberReturned"] == len(want)
        rels = {lk["rel"]: lk["href"] for lk in body["links"]}
        # position paging links to positions; the last page has no next
        assert ("next" in rels) == (k < len(pages) - 1)
        if "next" in rels:
            assert f"offset={(k + 1) * limit}" in rels["next"] and "cursor=" not in rels["next"]
        assert ("prev" in rels) == (k > 0)
        assert f"offset={k * limit}" in rels["self"]
    past = client.get(path, params={**params, "offset": str(len(pages) * limit + 5)}).json()
    assert past["numberReturned"] == 0 and not [lk for lk in past["links"] if lk["rel"] in ("next", "prev")]


def test_offset_next_links_walk_every_feature(client: Any, conn: psycopg.Connection) -> None:
    url: str | None = "/collections/old_compounds/items?limit=250&offset=0&sortby=-area_mu"
    got: list[int] = []
    while url:
        body = client.get(url).json()
        got += [f["id"] for f in body["features"]]
        url = next((lk["href"] for lk in body["links"] if lk["rel"] == "next"), None)
    want = [r[0] for r in conn.execute(
        "SELECT id FROM renewal.old_compounds ORDER BY area_mu DESC NULLS LAST, id").fetchall()]
    assert got == want


def test_unaligned_offset_and_cursor_next_links_unchanged(client: Any) -> None:
    path = "/collections/old_compounds/items"
    whole = [f["id"] for f in client.get(path, params={"limit": "40"}).json()["features"]]
    mid = client.get(path, params={"limit": "10", "offset": "13"}).json()
    assert [f["id"] for f in mid["features"]] == whole[13:23]
    prev = next(lk["href"] for lk in mid["links"] if lk["rel"] == "prev")
    assert "offset=3" in prev
    # without offset, paging is keyset as before: next links carry a cursor and no offset
    plain = client.get(path, params={"limit": "10"}).json()
    nxt = next(lk["href"] for lk in plain["links"] if lk["rel"] == "next")
    assert "cursor=" in nxt and "offset" not in nxt


@pytest.mark.parametrize(("value", "fragment"), [
    (str(MAX_OFFSET + 1), f"maximum of {MAX_OFFSET}"),
    ("-1", "whole number"),
    ("ten", "whole number"),
])
def test_bad_offsets_are_400(client: Any, value: str, fragment: str) -> None:
    r = client.get("/collections/old_compounds/items", params={"offset": value})
    assert r.status_code == 400, r.text
    assert fragment in r.text


def test_max_offset_itself_is_accepted(client: Any) -> None:
    r = client.get("/collections/old_compounds/items", params={"offset": str(MAX_OFFSET)})
    assert r.status_code == 200 and r.json()["numberReturned"] == 0


def test_cursor_and_offset_together_is_400(client: Any) -> None:
    first = client.get("/collections/old_compounds/items", params={"limit": "5"}).json()
    nxt = next(lk["href"] for lk in first["links"] if lk["rel"] == "next")
    r = client.get(nxt + "&offset=5")
    assert r.status_code == 400 and "not both" in r.text


def test_offset_is_documented_in_openapi(client: Any) -> None:
    spec = client.get("/api").json()
    params = {p["name"]: p for p in spec["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]}
    assert "offset" in params and str(MAX_OFFSET) in params["offset"]["description"]
