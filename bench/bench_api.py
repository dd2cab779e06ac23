"""Benchmark: our items and tiles vs tipg serving the same tables vs the raw SQL through psycopg.

One run, same machine, same database, same pool sizes. For every case each target answers distinct,
unseen requests in two phases: latency (p50/p95) at concurrency 1, then throughput (req/s) at
``--concurrency`` on other requests. Prints both, and the ratios the issue sets as aims: ours/tipg
throughput (items at least 5x, tiles z14/z16 at least 2x) and ours/raw p50 (items at most 1.5x).

Usage::

    createdb renewal_bench && psql -d renewal_bench -c 'CREATE EXTENSION postgis'
    DATABASE_URL=postgresql:///renewal_bench renewal db upgrade
    DATABASE_URL=postgresql:///renewal_bench renewal demo load --scale 40     # ≈ 1 million parcels
    .venv/bin/python bench/bench_api.py --db postgresql:///renewal_bench

Notes
-----
* Fairness: the three targets get the same pool size (``--pool``) and the same requests. Our service
  and the raw pool use identical connections (``api.db.make_pool``: ``jit=off``, serial, statement
  timeout, role); "raw SQL" runs the very statement the service runs, the way the service runs it
  (``layers.query.fetch_one_serial``), without HTTP and Python serialisation. The raw statement's
  plan choice (filter first or walk the key) is made before the timing, as the service would.
* Unseen requests: items use seeded random boxes (a few blocks, or most of the city), each box
  asked once per target; tiles are distinct seeded tiles over the city, each asked once per target
  (a zoom with fewer tiles than requests repeats them: z10 and z12, where our in-process cache then
  hits). Nothing the latency phase asked is asked again in the throughput phase.
* Measurements are interleaved: every phase runs in ``--rounds`` rounds, and in each round every
  target runs its share of the requests, in rotating order, so machine load (this box is shared)
  hits the three targets alike. p50/p95 pool all rounds; req/s is requests over summed wall time.
* tipg caps tiles at ``TIPG_MAX_FEATURES_PER_TILE`` features (default 10,000; a z14 tile in the
  city centre holds about 16,000 parcels). By default this benchmark lifts the cap
  (``--tipg-tile-cap``) so both services draw the same features; the table prints the average
  features (by SQL) and bytes per tile of each target so any difference in content is visible.
* land_parcels is drawn from z13; at z10-z12 our service draws its overview (land-use cells,
  ``layers.overview``) where tipg draws every parcel. Those rows compare different work and are
  marked; they show the overview's size and time (aim: a z10 tile under 500 KB and 200 ms).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.db import make_pool  # noqa: E402
from api.params import parse_items_params  # noqa: E402
from api.routers.tiles import tile_sql  # noqa: E402
from api.settings import Settings  # noqa: E402
from layers.query import (  # noqa: E402
    Binder,
    build_where,
    choose_filter_first,
    fetch_one_serial,
    page_sql,
)
from layers.registry import get_registry  # noqa: E402

LAYER = "land_parcels"
SMALL_BOX_DEG = (0.02, 0.02)
"""A few blocks: about 1,800 parcels in the centre."""
LARGE_BOX_DEG = (0.16, 0.10)
"""Most of the city."""
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


def api_login_url(url: str) -> str:
    """The same database as the service's least-privileged login (migration 0014), not the superuser."""
    from api.settings import API_LOGIN, with_user

    return with_user(url, API_LOGIN)


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


Stats = tuple[float, float, float]
TARGETS = ("ours", "tipg", "raw SQL")


class Acc:
    """Latencies (ms), wall time (s) and response sizes (bytes) of one target in one case."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.wall = 0.0
        self.sizes: list[int] = []

    def stats(self) -> Stats:
        lat = sorted(self.lat)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        return statistics.median(lat), p95, len(lat) / self.wall


async def run_calls(calls: list[Callable[[], Awaitable[int]]], concurrency: int, acc: Acc) -> None:
    """Run calls with bounded concurrency, adding latencies, sizes and wall time to ``acc``."""
    queue = list(calls)
    queue.reverse()

    async def worker() -> None:
        while queue:
            fn = queue.pop()
            t0 = time.perf_counter()
            size = await fn()
            acc.lat.append((time.perf_counter() - t0) * 1000)
            acc.sizes.append(size)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    acc.wall += time.perf_counter() - t0


async def interleaved(calls: dict[str, list[Callable[[], Awaitable[int]]]], rounds: int,
                      concurrency: int) -> dict[str, Acc]:
    """Split each target's calls into ``rounds`` chunks; per round run every target's chunk, rotating the order."""
    accs = {t: Acc() for t in calls}
    names = list(calls)
    for r in range(rounds):
        for k in range(len(names)):
            t = names[(r + k) % len(names)]
            chunk = calls[t][r::rounds]
            if chunk:
                await run_calls(chunk, concurrency, accs[t])
    return accs


def tile_list(z: int, n: int, seed: int) -> list[tuple[int, int, int]]:
    """``n`` tiles over the city at zoom ``z`` in a seeded order, each once while there are enough."""
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = sorted({(t.x, t.y) for t in tms.tiles(*CITY, zooms=[z])})
    rnd = random.Random(seed * 100 + z)
    rnd.shuffle(tiles)
    picked = tiles[:n] if len(tiles) >= n else [tiles[i % len(tiles)] for i in range(n)]
    return [(z, x, y) for x, y in picked]


def bbox_list(size: tuple[float, float], n: int, seed: int) -> list[str]:
    """``n`` distinct boxes of ``size`` degrees placed at seeded random spots in the city: unseen requests."""
    rnd = random.Random(seed)
    w, h = size
    out = []
    for _ in range(n):
        x = rnd.uniform(CITY[0], max(CITY[0], CITY[2] - w))
        y = rnd.uniform(CITY[1], max(CITY[1], CITY[3] - h))
        out.append(f"{x:.5f},{y:.5f},{x + w:.5f},{y + h:.5f}")
    return out


async def two_phases(calls: dict[str, list[Callable[[], Awaitable[int]]]],
                     args: argparse.Namespace) -> tuple[dict[str, Acc], dict[str, Acc]]:
    """Latency at concurrency 1 on the first half of the calls, throughput at ``--concurrency`` on the second half.

    The halves hold different requests, so neither phase repeats what a target has already answered.
    """
    half = {t: c[: len(c) // 2] for t, c in calls.items()}
    rest = {t: c[len(c) // 2:] for t, c in calls.items()}
    latency = await interleaved(half, args.rounds, 1)
    throughput = await interleaved(rest, args.rounds, args.concurrency)
    return latency, throughput


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("DATABASE_URL", "postgresql:///renewal_bench"))
    ap.add_argument("--requests", type=int, default=60, help="requests per case and target")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds per case")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--pool", type=int, default=8, help="pool size of every target")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--zooms", default=",".join(map(str, ZOOMS)))
    ap.add_argument("--tipg-tile-cap", type=int, default=100_000,
                    help="TIPG_MAX_FEATURES_PER_TILE (tipg's default is 10000)")
    ap.add_argument("--skip-items", action="store_true")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="worker processes of each service (default: every core, as `renewal serve`)")
    args = ap.parse_args()
    per_worker_pool = max(2, args.pool // args.workers)
    load_before = os.getloadavg()
    zooms = [int(z) for z in args.zooms.split(",") if z.strip()]

    reg = get_registry()
    layer = reg.get(LAYER)
    logs = ROOT / "artifacts"
    logs.mkdir(exist_ok=True)
    ours_port, tipg_port = free_port(), free_port()
    ours = start(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(ours_port), "--workers", str(args.workers)],
        {"DATABASE_URL": api_login_url(args.db), "RENEWAL_OWNER_DATABASE_URL": args.db,
         "RENEWAL_POOL_MIN_SIZE": str(per_worker_pool),
         "RENEWAL_POOL_MAX_SIZE": str(per_worker_pool), "RENEWAL_ANON_RATE_PER_S": "0", "RENEWAL_LOG_LEVEL": "warning"},
        f"http://127.0.0.1:{ours_port}/healthz", logs / "bench-ours.log")
    tipg = start(
        [sys.executable, "-m", "uvicorn", "tipg.main:app", "--port", str(tipg_port), "--log-level", "warning",
         "--workers", str(args.workers)],
        {"DATABASE_URL": asyncpg_url(args.db), "TIPG_DB_SCHEMAS": '["renewal"]',
         "DB_MIN_CONN_SIZE": str(per_worker_pool), "DB_MAX_CONN_SIZE": str(per_worker_pool),
         "TIPG_MAX_FEATURES_PER_QUERY": "10000", "TIPG_MAX_FEATURES_PER_TILE": str(args.tipg_tile_cap)},
        f"http://127.0.0.1:{tipg_port}/collections", logs / "bench-tipg.log")
    # the raw pool: the same construction and connection settings as the service's pool
    pool = make_pool(Settings(database_url=api_login_url(args.db), pool_min_size=args.pool, pool_max_size=args.pool))
    await pool.open(wait=True)
    results: list[tuple[str, dict[str, Acc], dict[str, Acc], dict[str, float]]] = []
    retries: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=args.concurrency * 2)) as http:
            ob = f"http://127.0.0.1:{ours_port}"
            tb = f"http://127.0.0.1:{tipg_port}"

            async def get(url: str, params: dict[str, str] | None = None) -> int:
                for attempt in range(4):
                    try:
                        r = await http.get(url, params=params)
                        break
                    except httpx.TransportError as exc:  # a dropped keep-alive connection under load: retry, count it
                        retries.append(f"{url}: {exc!r}")
                        if attempt == 3:
                            raise
                if r.status_code not in (200, 204):
                    raise RuntimeError(f"{url} {params} -> {r.status_code}: {r.text[:300]}")
                return len(r.content)

            async def raw(stmt: Any, params: dict[str, Any]) -> int:
                async with pool.connection() as conn:
                    row = await fetch_one_serial(conn, stmt, params)
                return len(row[0]) if row and row[0] is not None else 0

            # warm-up (plans, caches, connections) on requests not used below
            for _ in range(3):
                await get(f"{ob}/collections/{LAYER}/items", {"limit": "10"})
                await get(f"{tb}/collections/renewal.{LAYER}/items", {"limit": "10"})

            n = args.requests
            for limit in () if args.skip_items else (100, 1000):
                for bname, size in (("small bbox", SMALL_BOX_DEG), ("large bbox", LARGE_BOX_DEG)):
                    case = f"items limit={limit} {bname}"
                    calls: dict[str, list[Callable[[], Awaitable[int]]]] = {t: [] for t in TARGETS}
                    for bbox in bbox_list(size, 2 * n, args.seed + limit):
                        params = {"limit": str(limit), "bbox": bbox}
                        q = parse_items_params(layer, params)
                        where = build_where(q)
                        async with pool.connection() as conn:  # the service's own plan decision, outside the timing
                            ff = await choose_filter_first(conn, q, where)
                        b = Binder()
                        stmt = page_sql(q, b, where=where, filter_first=ff)  # the statement the service runs
                        stmt_params = where.with_params(b.params)
                        calls["ours"].append(lambda p=params: get(f"{ob}/collections/{LAYER}/items", p))
                        calls["tipg"].append(lambda p=params: get(f"{tb}/collections/renewal.{LAYER}/items", p))
                        calls["raw SQL"].append(lambda s=stmt, p=stmt_params: raw(s, p))
                    results.append((case, *await two_phases(calls, args), {t: float(limit) for t in TARGETS}))

            for z in zooms:
                case = f"tiles z{z}" + (" (ours: overview cells)" if z < layer.min_zoom else "")
                tiles = tile_list(z, 2 * n, args.seed)
                feats = await tile_feature_counts(pool, tiles)
                mean = statistics.fmean(feats)
                avg_feats = {"ours": mean if z >= layer.min_zoom else float("nan"),
                             "tipg": statistics.fmean(min(f, args.tipg_tile_cap) for f in feats),
                             "raw SQL": mean if z >= layer.min_zoom else float("nan")}
                calls = {
                    "ours": [lambda t=t: get(f"{ob}/collections/{LAYER}/tiles/WebMercatorQuad/{t[0]}/{t[1]}/{t[2]}")
                             for t in tiles],
                    "tipg": [lambda t=t: get(f"{tb}/collections/renewal.{LAYER}/tiles/WebMercatorQuad/"
                                             f"{t[0]}/{t[1]}/{t[2]}") for t in tiles],
                    "raw SQL": [lambda t=t: raw(*tile_sql([layer], *t)) for t in tiles],
                }
                results.append((case, *await two_phases(calls, args), avg_feats))
    finally:
        await pool.close()
        for proc in (ours, tipg):
            proc.terminate()  # uvicorn's supervisor stops its workers
            proc.wait(timeout=30)

    load_after = os.getloadavg()
    print(f"database {args.db}; per case and target {args.requests} distinct requests at concurrency 1 (latency), then "
          f"{args.requests} others at concurrency {args.concurrency} (throughput), each in {args.rounds} interleaved "
          f"rounds; {args.workers} worker(s) per service, pool {per_worker_pool} per worker (raw: {args.pool}); "
          f"tipg tile cap {args.tipg_tile_cap}")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min) on {os.cpu_count()} cores; "
          "the machine is shared with other jobs, so absolute numbers move with their load; ratios are interleaved")
    print(f"{'case':40} {'target':8} {'p50 ms c1':>10} {'p95 ms c1':>10} {'req/s c' + str(args.concurrency):>10} "
          f"{'features':>9} {'kB/resp':>8}")
    for case, lat, thr, feats in results:
        for t in TARGETS:
            p50, p95, _ = lat[t].stats()
            rps = thr[t].stats()[2]
            kb = statistics.fmean(lat[t].sizes + thr[t].sizes) / 1024
            print(f"{case:40} {t:8} {p50:10.1f} {p95:10.1f} {rps:10.1f} {feats[t]:9.0f} {kb:8.1f}")
    print()
    for line in retries:
        print("retried after a transport error:", line)
    print(f"{'case':40} {'ours/tipg req/s':>16} {'tipg/ours p50':>14} {'ours/raw p50':>13}  aims")
    for case, lat, thr, _ in results:
        (o50, _, _), (t50, _, _), (r50, _, _) = (lat[x].stats() for x in TARGETS)
        ratio = thr["ours"].stats()[2] / thr["tipg"].stats()[2]
        aim = ("req/s >= 5x tipg, p50 <= 1.5x raw" if case.startswith("items")
               else "req/s >= 2x tipg" if case in ("tiles z14", "tiles z16") else "")
        print(f"{case:40} {ratio:16.2f} {t50 / o50:14.2f} {o50 / r50:13.2f}  {aim}")


async def tile_feature_counts(pool: Any, tiles: list[tuple[int, int, int]]) -> list[int]:
    """Features per tile (rows whose box meets the tile with its buffer), counted in SQL."""
    out = []
    async with pool.connection() as conn:
        for z, x, y in tiles:
            cur = await conn.execute(
                "SELECT count(*) FROM renewal.land_parcels WHERE geom && "
                "ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => 64.0 / 4096), 4490)", (z, x, y))
            row = await cur.fetchone()
            out.append(int(row[0]) if row else 0)
    return out


if __name__ == "__main__":
    asyncio.run(main())
