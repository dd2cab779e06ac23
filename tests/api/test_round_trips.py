"""The hot paths make one database round trip per request (issue 14).

Every statement the app's pool connections execute (``application_name`` ``renewal-api``) is
counted while one request runs; the listener's heartbeats and the breaker's probes use their own
connections and are not counted. Each route is asked once beforehand (per-process estimates,
prepared statements and layer versions warm up, as in a running server), then with new
parameters: the count is what every later request costs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

POOL_APPLICATION = "renewal-api"


@pytest.fixture()
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements run on the API pool's connections from now on (the real ones, counted on their way)."""
    seen: list[str] = []
    original = psycopg.AsyncCursor.execute

    async def execute(self: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self.connection
        if conn.info.parameter_status("application_name") == POOL_APPLICATION:
            seen.append(query.as_string(conn) if hasattr(query, "as_string") else str(query))
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)
    yield seen


def _within_5s(done: Any, what: str) -> None:
    deadline = time.monotonic() + 5
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _listening(client: Any) -> None:
    _within_5s(lambda: client.app.state.versions.live, "the layer-version listener did not start")


CASES = [
    ("items, bbox, limit 100", "/collections/old_compounds/items?limit=100&bbox=114.40,37.95,114.60,38.10",
     "/collections/old_compounds/items?limit=100&bbox=114.41,37.96,114.61,38.11"),
    ("items, bbox, limit 1000, land parcels", "/collections/land_parcels/items?limit=1000&bbox=114.45,37.96,114.6,38.1",
     "/collections/land_parcels/items?limit=1000&bbox=114.46,37.97,114.61,38.11"),
    ("one feature", "/collections/old_compounds/items/5", "/collections/old_compounds/items/6"),
    ("tile z16", "/collections/old_compounds/tiles/WebMercatorQuad/16/53613/25269",
     "/collections/old_compounds/tiles/WebMercatorQuad/16/53613/25270"),
    ("what is here", "/query/point?lon=114.51&lat=38.04", "/query/point?lon=114.52&lat=38.05"),
    ("nearest", "/query/nearest?layer=parking_sites&lon=114.51&lat=38.04&k=5",
     "/query/nearest?layer=parking_sites&lon=114.52&lat=38.05&k=5"),
]


@pytest.mark.parametrize(("what", "warm", "path"), CASES, ids=[c[0] for c in CASES])
def test_hot_path_is_one_round_trip(client: Any, statements: list[str], what: str, warm: str, path: str) -> None:
    _listening(client)
    assert client.get(warm).status_code in (200, 204)
    statements.clear()
    r = client.get(path)
    assert r.status_code in (200, 204), r.text
    assert len(statements) == 1, f"{what}: {len(statements)} statements: " + " | ".join(s[:90] for s in statements)


def test_a_layer_never_analyzed_is_still_one_round_trip(client: Any, conn: psycopg.Connection,
                                                        statements: list[str]) -> None:
    """Without statistics (autovacuum off, a layer filled by edits) the table's size bounds its rows."""
    from layers.query import execute

    _listening(client)
    conn.execute("UPDATE pg_class SET reltuples = -1 WHERE oid = 'renewal.parking_sites'::regclass")
    try:
        execute._estimates.clear()
        assert client.get("/collections/parking_sites/items?limit=10&bbox=114.40,37.95,114.60,38.10").status_code == 200
        statements.clear()
        r = client.get("/collections/parking_sites/items?limit=10&bbox=114.41,37.96,114.61,38.11")
        assert r.status_code == 200 and r.json()["numberMatched"] >= r.json()["numberReturned"]
        assert len(statements) == 1, " | ".join(s[:90] for s in statements)
    finally:
        conn.execute("ANALYZE renewal.parking_sites")
        execute._estimates.clear()


def test_row_estimates_are_kept_by_the_listener_not_by_requests(db_url: str, demo_loaded: dict[str, int]) -> None:
    """A new app knows every layer table's size before its first request (the listener reads them all)."""
    from layers.query import execute
    from tests.api.edit_support import make_client

    execute._estimates.clear()
    with make_client(db_url):
        _within_5s(lambda: "renewal.old_compounds" in execute._estimates, "the listener did not read the estimates")
        assert {"renewal.land_parcels", "renewal.parking_sites", "renewal.districts"} <= set(execute._estimates)
        assert execute._estimates["renewal.land_parcels"][1] > 0


def test_large_layers_density_grid_is_renewed_by_the_listener(db_url: str, demo_loaded: dict[str, int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer above the filter-first size gets its bbox density grid from the listener, before any request."""
    from layers.query import density, execute
    from tests.api.edit_support import make_client

    monkeypatch.setattr(execute, "FILTER_FIRST_MAX_ROWS", 1_000)  # the demo's parcels count as a large layer
    density._grids.clear()
    with make_client(db_url):
        _within_5s(lambda: "renewal.land_parcels" in density._grids, "the listener did not build the parcels' grid")
        grid = density._grids["renewal.land_parcels"][1]
        assert grid is not None and grid.counts.sum() > 1_000
        assert "renewal.parking_sites" not in density._grids  # small layers never consult a grid
