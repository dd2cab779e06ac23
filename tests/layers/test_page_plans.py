"""The two page plans give the same pages on PostGIS, and the bbox density grid estimates real counts.

``filter_first`` only changes how PostgreSQL finds a page (sorted box candidates tested one by
one, or the primary key walked and filtered); every page, cursor and offset must be identical,
and a feature whose bounding box meets the bbox while its geometry does not must stay out.
"""

from __future__ import annotations

import psycopg
import pytest

from layers.query import Binder, FeatureQuery, build_where, decode_cursor, page_sql, read_page
from layers.query.density import estimate_bbox_rows
from layers.registry import get_registry
from tests.conftest import run_coroutine

BOXES = [(114.40, 37.98, 114.62, 38.11), (114.48, 38.02, 114.52, 38.06), (114.50, 38.04, 114.505, 38.045)]


def _page(conn: psycopg.Connection, q: FeatureQuery, filter_first: bool) -> tuple[object, ...]:
    where = build_where(q)
    b = Binder()
    row = conn.execute(page_sql(q, b, where=where, filter_first=filter_first), where.with_params(b.params)).fetchone()
    assert row is not None
    page = read_page(q, row, None)
    return (page.features, page.number_returned, page.next_cursor, page.prev_cursor, page.next_offset)


@pytest.mark.parametrize("layer_id", ["old_compounds", "planned_roads", "land_parcels"])
@pytest.mark.parametrize("bbox", BOXES)
def test_both_plans_give_the_same_pages(conn: psycopg.Connection, demo_loaded: dict[str, int], layer_id: str,
                                        bbox: tuple[float, float, float, float]) -> None:
    layer = get_registry().get(layer_id)
    for q in (FeatureQuery(layer=layer, bbox=bbox, limit=7),
              FeatureQuery(layer=layer, bbox=bbox, limit=7, offset=5),
              FeatureQuery(layer=layer, bbox=bbox, limit=7, equals=(("district_code", "130102"),))):
        first = _page(conn, q, True)
        assert first == _page(conn, q, False)
        # the next page and, from there, the page back
        nxt = first[2]
        if nxt:
            q2 = q.with_cursor(decode_cursor(q, str(nxt)))
            second = _page(conn, q2, True)
            assert second == _page(conn, q2, False)
            if second[3]:
                q3 = q.with_cursor(decode_cursor(q, str(second[3])))
                assert _page(conn, q3, True) == _page(conn, q3, False)
                assert _page(conn, q3, True)[0] == first[0]


def test_box_first_page_keeps_out_a_feature_whose_box_meets_the_bbox(conn: psycopg.Connection,
                                                                     demo_loaded: dict[str, int]) -> None:
    """A diagonal road's bounding box covers a corner its line never reaches: a bbox there matches nothing of it."""
    layer = get_registry().get("planned_roads")
    row = conn.execute(
        "SELECT id, x0, y0, x1, y1 FROM (SELECT id, ST_XMin(geom) + (ST_XMax(geom) - ST_XMin(geom)) * f AS x0, "
        "ST_YMin(geom) + (ST_YMax(geom) - ST_YMin(geom)) * g AS y0, "
        "ST_XMin(geom) + (ST_XMax(geom) - ST_XMin(geom)) * (f + 0.05) AS x1, "
        "ST_YMin(geom) + (ST_YMax(geom) - ST_YMin(geom)) * (g + 0.05) AS y1, geom "
        "FROM renewal.planned_roads, (VALUES (0.0, 0.0), (0.95, 0.0), (0.0, 0.95), (0.95, 0.95)) AS c(f, g)) AS s "
        "WHERE NOT ST_Intersects(geom, ST_MakeEnvelope(x0, y0, x1, y1, 4490)) ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None, "the demo has a road that misses a corner of its own bounding box"
    fid, *bbox = row
    q = FeatureQuery(layer=layer, bbox=(bbox[0], bbox[1], bbox[2], bbox[3]), limit=1000)
    for ff in (True, False):
        features = _page(conn, q, ff)[0]
        assert f'"id":{fid},' not in str(features)
    count = conn.execute(
        "SELECT count(*) FROM renewal.planned_roads WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4490))",
        bbox).fetchone()
    assert count is not None and _page(conn, q, True)[1] == count[0]


def test_density_grid_estimates_bbox_counts(db_url: str, demo_loaded: dict[str, int]) -> None:
    """The in-memory estimate that picks the plan is within a factor of two of the true count on city boxes."""
    layer = get_registry().get("land_parcels")

    async def run() -> list[tuple[float, int]]:
        async with await psycopg.AsyncConnection.connect(db_url) as aconn:
            cur = await aconn.execute("SELECT count(*) FROM renewal.land_parcels")
            total = (await cur.fetchone() or (0,))[0]
            out = []
            for bbox in BOXES[:2]:
                est = await estimate_bbox_rows(aconn, layer, total, bbox)
                cur = await aconn.execute(
                    "SELECT count(*) FROM renewal.land_parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)",
                    bbox)
                out.append((est, (await cur.fetchone() or (0,))[0]))
            return out

    for est, true in run_coroutine(run()):
        assert true > 0 and true / 2 <= est <= true * 2, (est, true)
