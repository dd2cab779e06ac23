"""Benchmark: our items and tiles vs tipg serving the same tables vs the raw SQL through psycopg.

One run, same machine, same database, same pool sizes and client concurrency. Prints p50/p95 latency
and requests per second per case, and the ratios (ours/tipg throughput, ours/raw p50).

Usage::

    createdb renewal_bench && psql -d renewal_bench -c 'CREATE EXTENSION postgis'
    DATABASE_URL=postgresql:///renewal_bench renewal db upgrade
    DATABASE_URL=postgresql:///renewal_bench renewal demo load --scale 40     # ≈ 1 million parcels
    .venv/bin/python bench/bench_api.py --db postgresql:///renewal_bench

Notes
-----
* Tiles use a fixed, seeded list of distinct tiles around the city centre; each tile is requested
  once per target, so our in-process tile cache never hits (cold numbers).
* land_parcels has ``min_zoom: 13`` in the registry, so our service answers z10/z12 parcel tiles
  with an empty 204 by design; tipg renders them. Those rows are marked.
* tipg computes ``numberMatched`` with ``count(*)`` on every page; we omit it on tables above
  ``layers.query.COUNT_MAX_ROWS`` (documented choice), which is part of the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import morecantile
from psycopg_pool import AsyncConnectionPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.routers.tiles import tile_sql  # noqa: E402
from layers.query import Binder, choose_filter_first, page_sql, parse_items_params  # noqa: E402
from layers.registry import get_registry  # noqa: E402

LAYER = "land_parcels"
SMALL_BBOX = "114.49,38.03,114.51,38.05"
LARGE_BBOX = "114.40,37.98,114.62,38.11"
ZOOMS = (10, 12, 14, 16)
CITY = (114.40, 37.98, 114.62, 38.11)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def asyncpg_url(url: str) -> str:
    """tipg (asyncpg, pydantic PostgresDsn) needs a host: use the local socket directory."""
    if url.startswith("postgresql:///"):
        name = url.removeprefix("postgresql:///")
        user = os.environ.get("USER", "root")
        return f"postgresql://{user}@localhost/{name}?host=/var/run/postgresql"
    return url


def start(cmd: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"{cmd} did not start: {log.read_text()[-2000:]}")


async def measure(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> tuple[float, float, float]:
    """Run calls with bounded concurrency; return (p50 ms, p95 ms, requests/s)."""
    lat: list[float] = []
    queue = list(calls)
    queue.reverse()

    async def worker() -> None:
        while queue:
            fn = queue.pop()
            t0 = time.perf_counter()
            await fn()
            lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    return statistics.median(lat), p95, len(lat) / wall


def tile_list(z: int, n: int, seed: int) -> list[tuple[int, int, int]]:
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = sorted({(t.x, t.y) for t in tms.tiles(*CITY, zooms=[z])})
    rnd = random.Random(seed * 100 + z)
    rnd.shuffle(tiles)
    picked = tiles[:n] if len(tiles) >= n else [tiles[i % len(tiles)] for i in range(n)]
    return [(z, x, y) for x, y in picked]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("DATABASE_URL", "postgresql:///renewal_bench"))
    ap.add_argument("--requests", type=int, default=60, help="requests per case and target")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--pool", type=int, default=8, help="pool size of every target")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    reg = get_registry()
    layer = reg.get(LAYER)
    logs = ROOT / "artifacts"
    logs.mkdir(exist_ok=True)
    ours_port, tipg_port = free_port(), free_port()
    ours = start(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(ours_port),
         "--log-level", "warning"],
        {"DATABASE_URL": args.db, "RENEWAL_POOL_MIN_SIZE": str(args.pool), "RENEWAL_POOL_MAX_SIZE": str(args.pool),
         "RENEWAL_ANON_RATE_PER_S": "0"},
        f"http://127.0.0.1:{ours_port}/healthz", logs / "bench-ours.log")
    tipg = start(
        [sys.executable, "-m", "uvicorn", "tipg.main:app", "--port", str(tipg_port), "--log-level", "warning"],
        {"DATABASE_URL": asyncpg_url(args.db), "TIPG_DB_SCHEMAS": '["renewal"]',
         "DB_MIN_CONN_SIZE": str(args.pool), "DB_MAX_CONN_SIZE": str(args.pool),
         "TIPG_MAX_FEATURES_PER_QUERY": "10000"},
        f"http://127.0.0.1:{tipg_port}/collections", logs / "bench-tipg.log")
    pool = AsyncConnectionPool(args.db, min_size=args.pool, max_size=args.pool, open=False,
                               kwargs={"autocommit": True})
    await pool.open(wait=True)
    rows: list[tuple[str, str, tuple[float, float, float]]] = []
    try:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=args.concurrency * 2)) as http:
            ob = f"http://127.0.0.1:{ours_port}"
            tb = f"http://127.0.0.1:{tipg_port}"

            async def get(url: str, params: dict[str, str] | None = None) -> None:
                r = await http.get(url, params=params)
                if r.status_code not in (200, 204):
                    raise RuntimeError(f"{url} {params} -> {r.status_code}: {r.text[:300]}")
                _ = r.content

            async def raw(stmt: Any, params: dict[str, Any]) -> None:
                async with pool.connection() as conn:
                    cur = await conn.execute(stmt, params)
                    await cur.fetchall()

            # warm-up (plans, caches, connections) on requests not used below
            for _ in range(3):
                await get(f"{ob}/collections/{LAYER}/items", {"limit": "10"})
                await get(f"{tb}/collections/renewal.{LAYER}/items", {"limit": "10"})

            for limit in (100, 1000):
                for bname, bbox in (("small bbox", SMALL_BBOX), ("large bbox", LARGE_BBOX)):
                    case = f"items limit={limit} {bname}"
                    params = {"limit": str(limit), "bbox": bbox}
                    q = parse_items_params(layer, params)
                    async with pool.connection() as conn:
                        ff = await choose_filter_first(conn, q)
                    b = Binder()
                    stmt = page_sql(q, b, filter_first=ff)  # the statement the service runs
                    n = args.requests
                    ours_url = f"{ob}/collections/{LAYER}/items"
                    tipg_url = f"{tb}/collections/renewal.{LAYER}/items"
                    rows.append((case, "ours", await measure(
                        [lambda u=ours_url, p=params: get(u, p)] * n, args.concurrency)))
                    rows.append((case, "tipg", await measure(
                        [lambda u=tipg_url, p=params: get(u, p)] * n, args.concurrency)))
                    rows.append((case, "raw SQL", await measure(
                        [lambda s=stmt, p=b.params: raw(s, p)] * n, args.concurrency)))

            for z in ZOOMS:
                case = f"tiles z{z}" + (" (ours: empty by min_zoom)" if z < layer.min_zoom else "")
                tiles = tile_list(z, args.requests * 3, args.seed)
                t_ours, t_tipg, t_raw = (tiles[i::3] for i in range(3))
                rows.append((case, "ours", await measure(
                    [lambda t=t: get(f"{ob}/collections/{LAYER}/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}")
                     for t in t_ours], args.concurrency)))
                rows.append((case, "tipg", await measure(
                    [lambda t=t: get(f"{tb}/collections/renewal.{LAYER}/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}")
                     for t in t_tipg], args.concurrency)))
                rows.append((case, "raw SQL", await measure(
                    [lambda t=t: raw(*tile_sql([layer], *t)) for t in t_raw], args.concurrency)))
    finally:
        await pool.close()
        for proc in (ours, tipg):
            proc.terminate()
            proc.wait(timeout=20)

    print(f"database {args.db}; {args.requests} requests per case and target; concurrency {args.concurrency}; "
          f"pool {args.pool}")
    print(f"{'case':44} {'target':8} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
    by_case: dict[str, dict[str, tuple[float, float, float]]] = {}
    for case, target, (p50, p95, rps) in rows:
        by_case.setdefault(case, {})[target] = (p50, p95, rps)
        print(f"{case:44} {target:8} {p50:8.1f} {p95:8.1f} {rps:8.1f}")
    print()
    print(f"{'case':44} {'ours/tipg req/s':>16} {'ours/raw p50':>13}")
    for case, t in by_case.items():
        print(f"{case:44} {t['ours'][2] / t['tipg'][2]:16.2f} {t['ours'][0] / t['raw SQL'][0]:13.2f}")


if __name__ == "__main__":
    asyncio.run(main())
