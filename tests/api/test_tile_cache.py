"""The nginx tile cache of docs/deployment.md, run for real: Debian's nginx in front of a live server.

The test includes ``docs/nginx/tile-cache.conf`` itself, so the documented configuration is the
tested one. It shows: a tile is cached (HIT), revalidated with the API's ETag (REVALIDATED, a
304 from the API) and replaced within 1-2 s of a write (nginx counts validity in whole seconds);
a signed-in caller's tiles never enter the cache, so a restricted layer's tile cannot reach an
anonymous reader; TileJSON names the address the client used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import morecantile
import psycopg
import pytest

from tests.conftest import ROOT, LiveServer, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SNIPPET = ROOT / "docs" / "nginx" / "tile-cache.conf"
MERGE = "application/merge-patch+json"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (scripts/os-test-deps.sh)")


@pytest.fixture(scope="module")
def proxy(edit_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """nginx on its own port, caching tiles of a live server that closes land_parcels to anonymous readers."""
    server = LiveServer(edit_db, env={"RENEWAL_RESTRICTED_LAYERS": "land_parcels", "RENEWAL_ANON_RATE_PER_S": "0"})
    d = tmp_path_factory.mktemp("nginx")
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""  # workers must write the cache under the test's tmp dir
    (d / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream renewal_api {{ server 127.0.0.1:{server.port}; }}
    proxy_cache_path {d}/cache levels=1:2 keys_zone=renewal_tiles:10m max_size=100m inactive=1h;
    server {{
        listen 127.0.0.1:{port};
        include {SNIPPET};
        location / {{ proxy_pass http://renewal_api; proxy_set_header Host $http_host; }}
    }}
}}
""")
    subprocess.run([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d)], check=True, capture_output=True)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "url": edit_db}
    finally:
        subprocess.run([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d), "-s", "quit"], check=False)
        server.stop()


def _tile_of(url: str, table: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM renewal.{table} "  # noqa: S608
            "ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    fid, lon, lat = row
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)
    return int(fid), f"{t.z}/{t.x}/{t.y}"


def test_tiles_are_cached_revalidated_and_fresh_within_a_second_of_a_write(proxy: dict[str, Any],
                                                                           keys: dict[str, str]) -> None:
    base = proxy["base"]
    fid, zxy = _tile_of(proxy["url"], "parking_sites")
    tile = f"{base}/collections/parking_sites/tiles/WebMercatorQuad/{zxy}"
    first, second = httpx.get(tile), httpx.get(tile)
    assert first.status_code == 200 and first.headers["x-cache"] in ("MISS", "EXPIRED")
    assert second.headers["x-cache"] == "HIT" and second.content == first.content
    time.sleep(2.2)  # valid 1 s, counted by nginx in whole seconds (expired once the clock passes stored + 1)
    again = httpx.get(tile)
    assert again.headers["x-cache"] == "REVALIDATED" and again.headers["etag"] == first.headers["etag"]

    item = f"{base}/collections/parking_sites/items/{fid}"
    etag = httpx.get(item).headers["etag"]
    r = httpx.patch(item, json={"properties": {"name": "缓存后改名停车场"}},
                    headers={"X-API-Key": keys["admin"], "If-Match": etag, "Content-Type": MERGE})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 4
    while (fresh := httpx.get(tile)).headers["etag"] == first.headers["etag"]:
        assert time.monotonic() < deadline, "the cached tile outlived the write by more than 4 s"
        time.sleep(0.2)
    assert "缓存后改名停车场".encode() in fresh.content


def test_a_signed_in_callers_tiles_never_reach_the_cache(proxy: dict[str, Any], keys: dict[str, str]) -> None:
    base = proxy["base"]
    _, zxy = _tile_of(proxy["url"], "land_parcels")
    tile = f"{base}/collections/land_parcels/tiles/WebMercatorQuad/{zxy}"
    for how in ({"headers": {"X-API-Key": keys["admin"]}}, {"params": {"apikey": keys["admin"]}}):
        for _ in range(2):
            r = httpx.get(tile, **how)  # type: ignore[arg-type]
            assert r.status_code == 200 and r.headers["x-cache"] == "BYPASS"
        anonymous = httpx.get(tile)
        assert anonymous.status_code == 401 and b"land_parcels" not in anonymous.content.split(b'"detail"')[0]
    multi = httpx.get(f"{base}/tiles/WebMercatorQuad/{zxy}", headers={"X-API-Key": keys["admin"]})
    assert multi.headers["x-cache"] == "BYPASS" and b"land_parcels" in multi.content
    anonymous = httpx.get(f"{base}/tiles/WebMercatorQuad/{zxy}")
    assert anonymous.status_code in (200, 204) and b"land_parcels" not in anonymous.content


def test_tilejson_names_the_address_the_client_used(proxy: dict[str, Any]) -> None:
    tj = httpx.get(f"{proxy['base']}/collections/parking_sites/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tiles"][0].startswith(proxy["base"] + "/collections/parking_sites/tiles/")
