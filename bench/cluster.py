"""A real cluster on this machine: a primary, two streaming replicas, two API instances, HAProxy.

Builds everything from throwaway pieces (``bench/pgcluster.py``: ``initdb``, ``pg_basebackup``;
``renewal serve``; HAProxy from the Debian package, installed when missing), then shows what
issue 18 asks, printing each result:

1. throughput of reads through HAProxy with one database node (instances read the primary)
   and with three (reads spread over two replicas), on this 2-core machine;
2. reads spread over the replicas (``pg_stat_activity`` and ``pg_stat_database`` per node);
3. a write through one instance, read at once through the other (read-your-writes cookie);
4. a replica killed under load: errors seen by clients;
5. an API instance killed under load: errors seen by clients (HAProxy retries);
6. the primary stopped: reads go on, a write gets 503 with Retry-After;
7. ``pg_ctl promote`` of a replica and a configuration reload (instances restarted one by one
   with the new primary URL): writes work again.

Usage: ``.venv/bin/python bench/cluster.py [--seconds 8] [--concurrency 8]`` (as root: the
PostgreSQL servers run as the ``postgres`` OS user). Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.settings import API_LOGIN, with_user  # noqa: E402
from bench.pgcluster import Cluster, Node, free_port  # noqa: E402

BBOX = (114.42, 37.99, 114.60, 38.10)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Instance:
    """One API instance (``renewal serve --workers 1``) on its own port."""

    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, primary: str, replicas: list[str]) -> None:
        # the app's own least-privileged login (migration 0014) instead of the superuser
        env = {**os.environ, "DATABASE_URL": with_user(primary, API_LOGIN),
               "RENEWAL_OWNER_DATABASE_URL": primary,
               "RENEWAL_READ_DATABASE_URLS": ",".join(with_user(r, API_LOGIN) for r in replicas),
               "RENEWAL_ANON_RATE_PER_S": "0", "RENEWAL_LOG_LEVEL": "warning", "RENEWAL_POOL_MAX_SIZE": "8",
               "RENEWAL_POOL_TIMEOUT_S": "2"}
        logf = open(self.base / f"{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"], cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                body = httpx.get(self.url + "/healthz", timeout=3).json()
                if all(r["in_service"] for r in body.get("replicas", [])):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not become healthy")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class HAProxy:
    """HAProxy in front of the instances: health checks on /healthz, retries on a dead server."""

    def __init__(self, base: Path, instances: list[Instance]) -> None:
        self.port = free_port()
        self.cfg = base / "haproxy.cfg"
        servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port} check inter 1s fall 2 rise 2"
                            for i in instances)
        self.cfg.write_text(f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 3s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend api
    bind 127.0.0.1:{self.port}
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers}
""")
        self.proc = subprocess.Popen(["haproxy", "-f", str(self.cfg), "-db"], stdout=subprocess.DEVNULL,
                                     stderr=open(base / "haproxy.log", "wb"))  # noqa: SIM115
        time.sleep(1.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ensure_haproxy() -> None:
    if shutil.which("haproxy") is None:
        log("installing HAProxy from the OS packages (apt-get install -y haproxy)")
        subprocess.run(["apt-get", "install", "-y", "haproxy"], check=True, capture_output=True)


def random_read(rnd: random.Random) -> str:
    x0, y0, x1, y1 = BBOX
    x, y = rnd.uniform(x0, x1 - 0.02), rnd.uniform(y0, y1 - 0.02)
    if rnd.random() < 0.5:
        return f"/collections/old_compounds/items?limit=50&bbox={x:.4f},{y:.4f},{x + 0.02:.4f},{y + 0.02:.4f}"
    return f"/query/point?lon={x:.5f}&lat={y:.5f}"


async def load(base_url: str, seconds: float, concurrency: int, seed: int = 1,
               during: Any = None) -> dict[str, Any]:
    """Reads for ``seconds``; returns count, errors (non-200 or transport) and req/s."""
    rnd = random.Random(seed)
    ok = errors = 0
    samples: list[str] = []
    t_end = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok, errors
        while time.monotonic() < t_end:
            try:
                r = await client.get(random_read(rnd))
                if r.status_code == 200:
                    ok += 1
                else:
                    errors += 1
                    samples.append(f"{r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                errors += 1
                samples.append(repr(exc)[:120])

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        t0 = time.monotonic()
        tasks = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        if during is not None:
            await asyncio.sleep(seconds / 3)
            await asyncio.get_running_loop().run_in_executor(None, during)
        await asyncio.gather(*tasks)
        wall = time.monotonic() - t0
    return {"ok": ok, "errors": errors, "rps": ok / wall, "samples": samples[:5]}


def db_reads(node: Node) -> tuple[int, int]:
    """(app connections in pg_stat_activity, committed transactions in the database) on a node."""
    with psycopg.connect(node.url(), autocommit=True, connect_timeout=3) as c:
        row = c.execute(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'renewal-api' "
            "AND datname = 'renewal'), (SELECT xact_commit FROM pg_stat_database WHERE datname = 'renewal')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class Results(list[tuple[str, str]]):
    """Collected outcomes, also logged the moment they are known."""

    def append(self, item: tuple[str, str]) -> None:
        log(f"{item[0]}: {item[1]}")
        super().append(item)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    ensure_haproxy()
    from api.cli.db import upgrade
    from api.cli.users import add_user
    from layers.demo import load_demo

    log(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (a shared machine)")
    cluster = Cluster(replicas=2)
    instances: list[Instance] = []
    proxy: HAProxy | None = None
    results = Results()
    try:
        p, r1, r2 = cluster.primary, *cluster.replicas
        log(f"primary :{p.port}, replicas :{r1.port} :{r2.port} (pg_basebackup, streaming)")
        with psycopg.connect(p.url("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE renewal")
        with psycopg.connect(p.url(), autocommit=True) as c:
            c.execute("CREATE EXTENSION postgis")
        upgrade(p.url())
        load_demo(p.url())
        key = add_user(p.url(), "cluster_admin", "admin", [])
        cluster.wait_replayed(timeout=120)
        log("schema and demo city loaded on the primary, replayed by both replicas")
        replicas = [r1.url(), r2.url()]
        instances = [Instance("api1", cluster.base), Instance("api2", cluster.base)]

        # 1. one database node against three
        for i in instances:
            i.start(p.url(), [])
        proxy = HAProxy(cluster.base, instances)
        one = asyncio.run(load(proxy.url, args.seconds, args.concurrency))
        for i in instances:
            i.stop()
            i.start(p.url(), replicas)
        three = asyncio.run(load(proxy.url, args.seconds, args.concurrency))
        results.append(("throughput, 1 database node (2 instances, HAProxy)",
                        f"{one['rps']:.1f} req/s, {one['errors']} errors"))
        results.append(("throughput, 3 database nodes (reads on 2 replicas)",
                        f"{three['rps']:.1f} req/s, {three['errors']} errors; ratio {three['rps'] / one['rps']:.2f}"))

        # 2. reads spread over the replicas
        before = {n.name: db_reads(n) for n in (p, r1, r2)}
        spread = asyncio.run(load(proxy.url, 3, args.concurrency, seed=2))
        after = {n.name: db_reads(n) for n in (p, r1, r2)}
        results.append(("reads spread (app connections, transactions during 3 s of reads)", "; ".join(
            f"{k}: {after[k][0]} conns, +{after[k][1] - before[k][1]} xacts" for k in after)
            + f" ({spread['ok']} reads)"))

        # 3. write through one instance, read at once through the other
        a, b = instances
        with httpx.Client(base_url=a.url, timeout=30) as wa:
            feat = wa.get("/collections/parking_sites/items?limit=1").json()["features"][0]
            item = f"/collections/parking_sites/items/{feat['id']}"
            new = feat["properties"]["name"] + "（集群）"
            etag = wa.get(item).headers["etag"]
            w = wa.patch(item, json={"properties": {"name": new}}, headers={
                "X-API-Key": key, "If-Match": etag, "Content-Type": "application/merge-patch+json"})
            with httpx.Client(base_url=b.url, cookies=wa.cookies, timeout=30) as rb:
                seen = rb.get(item).json()["properties"]["name"]
        results.append(("write via api1, read at once via api2 (cookie)",
                        f"write {w.status_code}, Renewal-LSN {w.headers.get('renewal-lsn')}, "
                        f"read {'NEW value' if seen == new else 'OLD value (FAIL)'}"))

        # 4. kill a replica under load
        killed = asyncio.run(load(proxy.url, args.seconds, args.concurrency, seed=3,
                                  during=lambda: r1.stop("immediate")))
        health = httpx.get(a.url + "/healthz").json()["replicas"]
        results.append(("replica1 killed under load", f"{killed['ok']} ok, {killed['errors']} errors "
                        f"{killed['samples']}; api1 sees " + ", ".join(
                            f"{h['name']} in_service={h['in_service']}" for h in health)))
        r1.start()
        t0 = time.monotonic()
        while not all(h["in_service"] for h in httpx.get(a.url + "/healthz").json()["replicas"]):
            time.sleep(0.2)
        results.append(("replica1 restarted", f"back in service after {time.monotonic() - t0:.1f} s"))

        # 5. kill an API instance under load
        gone = asyncio.run(load(proxy.url, args.seconds, args.concurrency, seed=4, during=a.kill))
        results.append(("api1 killed (SIGKILL) under load", f"{gone['ok']} ok, {gone['errors']} errors "
                        f"{gone['samples']}"))
        a.start(p.url(), replicas)

        # 6. primary down
        p.stop("immediate")
        down = asyncio.run(load(proxy.url, 3, args.concurrency, seed=5))
        with httpx.Client(base_url=proxy.url, timeout=30) as c:
            got = c.get(item)
            log(f"read of the feature with the primary down: {got.status_code} {got.text[:200]}")
            etag = got.headers.get("etag", "*")
            t0 = time.monotonic()
            w = c.patch(item, json={"properties": {"name": new + "2"}}, headers={
                "X-API-Key": key, "If-Match": etag, "Content-Type": "application/merge-patch+json"})
            took = time.monotonic() - t0
            hz = c.get("/healthz")
            status = hz.json()["status"] if hz.status_code == 200 else hz.status_code
        results.append(("primary stopped", f"reads {down['ok']} ok / {down['errors']} errors; write -> "
                        f"{w.status_code} Retry-After={w.headers.get('retry-after')} in {took:.1f} s; "
                        f"/healthz status {status}"))

        # 7. promote replica1, point replica2 at it, reload the instances one by one
        r1.promote()
        with open(r2.datadir / "postgresql.auto.conf", "a") as f:
            f.write(f"primary_conninfo = 'host=127.0.0.1 port={r1.port} user=postgres'\n")
        r2.stop()
        r2.start()
        for i in instances:
            i.stop()
            i.start(r1.url(), [r2.url()])
        with httpx.Client(base_url=proxy.url, timeout=30) as c:
            etag = c.get(item).headers["etag"]
            w = c.patch(item, json={"properties": {"name": new + "3"}}, headers={
                "X-API-Key": key, "If-Match": etag, "Content-Type": "application/merge-patch+json"})
            back = c.get(item).json()["properties"]["name"]
        results.append(("after pg_ctl promote of replica1 + reload", f"write -> {w.status_code}, read back "
                        f"{'NEW value' if back == new + '3' else back}"))
    finally:
        if proxy:
            proxy.stop()
        for i in instances:
            i.stop()
        log(f"load average {os.getloadavg()[0]:.2f}")
        cluster.close()
    print()
    for what, outcome in results:
        print(f"{what:66} {outcome}")


if __name__ == "__main__":
    main()
