"""The land-parcel overview at zooms 10-12: served, small, and exactly as fresh as the parcels.

The overview counts are kept by triggers (migration 0012); these tests write parcels with
plain SQL (as the owner) and check the counts and the tiles the API serves after each write.
"""

from __future__ import annotations

from collections.abc import Iterator

import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import make_client

TMS = morecantile.tms.get("WebMercatorQuad")
EMPTY_SPOT = (114.05, 37.70)  # inside the city's extent, far from every demo parcel


@pytest.fixture(scope="module")
def oc(edit_db: str) -> Iterator[TestClient]:
    """The app on the editing database."""
    with make_client(edit_db) as c:
        yield c


def _counts_match(conn: psycopg.Connection) -> None:
    n = conn.execute("SELECT count(*) FROM renewal.land_parcels").fetchone()[0]
    per_zoom = dict(conn.execute("SELECT z, sum(n) FROM renewal.land_parcels_overview GROUP BY z").fetchall())
    assert per_zoom == {10: n, 11: n, 12: n}
    assert conn.execute("SELECT count(*) FROM renewal.land_parcels_overview WHERE n <= 0").fetchone()[0] == 0


def _lsn(conn: psycopg.Connection) -> dict[str, str]:
    return {"Renewal-LSN": conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]}


def test_overview_tiles_at_z10_to_12_are_small_and_hold_cells(oc: TestClient, econn: psycopg.Connection) -> None:
    _counts_match(econn)
    lon, lat = econn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c "
                             "FROM renewal.land_parcels) s").fetchone()
    for z in (10, 11, 12):
        t = TMS.tile(lon, lat, z)
        r = oc.get(f"/collections/land_parcels/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}")
        assert r.status_code == 200 and b"land_parcels" in r.content and b"overview" in r.content
        assert len(r.content) < 500 * 1024
    t = TMS.tile(lon, lat, 9)  # below the overview: outside the layer's zooms
    assert oc.get(f"/collections/land_parcels/tiles/WebMercatorQuad/9/{t.x}/{t.y}").status_code == 404
    tj = oc.get("/collections/land_parcels/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["minzoom"] == 10


def test_overview_follows_insert_update_and_delete(oc: TestClient, econn: psycopg.Connection) -> None:
    t = TMS.tile(*EMPTY_SPOT, 12)
    url = f"/collections/land_parcels/tiles/WebMercatorQuad/12/{t.x}/{t.y}"
    assert oc.get(url).status_code == 204
    lon, lat = EMPTY_SPOT
    e, n = lon + 0.001, lat + 0.001
    square = f"MULTIPOLYGON((({lon} {lat},{e} {lat},{e} {n},{lon} {n},{lon} {lat})))"
    fid = econn.execute(
        "INSERT INTO renewal.land_parcels (code, name, district_code, status, land_use_code, geom) "
        "VALUES ('OV-TEST-1', '概览测试', '130108', 'existing', '1401', ST_GeomFromText(%s, 4490)) RETURNING id",
        (square,)).fetchone()[0]
    try:
        _counts_match(econn)
        r = oc.get(url, headers=_lsn(econn))
        assert r.status_code == 200 and b"1401" in r.content
        econn.execute("UPDATE renewal.land_parcels SET land_use_code = '1001' WHERE id = %s", (fid,))
        _counts_match(econn)
        r = oc.get(url, headers=_lsn(econn))
        assert r.status_code == 200 and b"1001" in r.content and b"1401" not in r.content
    finally:
        econn.execute("DELETE FROM renewal.land_parcels WHERE id = %s", (fid,))
    _counts_match(econn)
    assert oc.get(url, headers=_lsn(econn)).status_code == 204


def test_overview_clean_up_reads_only_emptied_cells(econn: psycopg.Connection) -> None:
    """The trigger's ``DELETE ... WHERE n <= 0`` after every write probes the partial index (0018), no full scan.

    Without it each edit of one parcel read every overview cell (11 ms at a million parcels).
    """
    plan = econn.execute(
        "EXPLAIN (FORMAT JSON) DELETE FROM renewal.land_parcels_overview WHERE n <= 0"
    ).fetchone()[0]
    text = str(plan)
    assert "land_parcels_overview_emptied_idx" in text and "Seq Scan" not in text
