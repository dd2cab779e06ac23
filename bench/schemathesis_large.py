"""A large randomized schemathesis run against a live server with a restricted layer (issue 12).

The suite's ``tests/api/test_schemathesis.py`` is the deterministic run (2,000+ requests, admin
only, derandomized). This is its larger, randomized sibling, run and reported, not a test:

1. A scratch demo database (``tests.conftest.scratch_demo_database``, dropped at the end) and an
   administrator API key made with the real ``renewal users`` code (``api.cli.users.add_user``).
2. A live uvicorn server (``tests.conftest.LiveServer``: the API's least-privileged login, the
   owner URL for owner paths) with ``RENEWAL_RESTRICTED_LAYERS=land_parcels`` (``--restricted``)
   and anonymous rate limiting off.
3. Two callers at the same time, each getting half of ``--requests`` (default 20,000): the
   anonymous caller and the admin caller (``X-API-Key``). Each runs ``schemathesis run`` in its
   own process with ``--workers 1`` (two processes for the two cores: schemathesis' worker
   threads hit a CPython 3.11 race in ``ast`` through hypothesis, "AST constructor recursion
   depth mismatch", which aborts a phase), in rounds, every round with its own seed (``--seed``
   + caller offset + round) and randomized generation (not ``--generation-deterministic``),
   until its share is reached. Round 0 runs the examples and coverage phases; later rounds
   fuzzing and stateful, ``--max-examples`` sized from the previous round to what is left.
4. Checks: ``not_a_server_error``, ``response_schema_conformance``, ``content_type_conformance``
   and, registered by this file as schemathesis hooks, ``no_restricted_leak``. For the anonymous
   caller that check fails a response that carries, outside of what the request itself sent:

   * ``code``: a feature code of the restricted layer (every code read from the database before
     the run and re-read every 20 s, since the admin may write; tokens shaped like those codes,
     e.g. ``ZD-0001-0004``, are looked up in that set);
   * ``item-link``: a link to one of its features (``/collections/<layer>/items/<digits>``);
   * ``feature``: a JSON object naming the layer (``layer``/``collection``/``layer_id``/
     ``collection_id``) that carries feature data (``id``, ``code``, ``name``, ``geometry``,
     ``bbox``, ``properties``) or a non-null count (``count``, ``numberMatched``, ...), or a
     registry entry of the layer (``"id": <layer>``) with a non-null count or an extent;
   * ``layer-in-tile``: a vector tile containing the layer's name (a tile layer of it);
   * ``layer-named``: the layer's name at all in a 2xx answer of the routes that must not name
     a closed layer (TileJSON, /query/within, /query/district-summary, /viewer/search,
     /qgis/project.qgs).

   For the admin caller the same detector runs without failing: its hits, counted per kind, are
   the positive control showing that the check can fire at all.

Printed at the end: requests per caller (from the HAR files, the independent count), statuses
seen, 5xx seen, failures found (per check, from schemathesis' JSON reports), leak-detector hits,
elapsed time and load average (start, end, highest 1-minute value sampled during the run).
Artifacts (HAR, JSON reports, logs, leak findings) go to ``artifacts/schemathesis_large/``.

Usage::

    .venv/bin/python bench/schemathesis_large.py [--requests 20000] [--seed 20261201] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.documents import unpacked  # noqa: E402

DEFAULT_SEED = 20261201
LEAK_CONFIG_ENV = "STBENCH_LEAK_CONFIG"
CALLER_SEED_OFFSET = {"anonymous": 0, "admin": 1000}
NAMING_KEYS = ("layer", "collection", "layer_id", "collection_id")
FEATURE_KEYS = ("id", "code", "name", "geometry", "bbox", "properties", "feature_id")
COUNT_KEYS = ("count", "numberMatched", "numberReturned", "total", "features", "hits", "extent")
MUST_NOT_NAME = re.compile(r"^/(tiles/WebMercatorQuad/tilejson\.json|collections/[^/]+/tiles/WebMercatorQuad/"
                           r"tilejson\.json|query/within|query/district-summary|viewer/search|qgis/project\.qgs)$")


# --------------------------------------------------------------------------- the leak detector


def code_pattern(codes: list[str]) -> re.Pattern[bytes]:
    """A regex matching every token shaped like one of ``codes`` (digits generalised)."""
    shapes = sorted({re.sub(r"\d", "0", c) for c in codes})
    alts = [re.escape(s).replace("0", r"\d") for s in shapes]
    return re.compile(rb"(?<![\w-])(?:" + "|".join(alts).encode() + rb")(?![\w-])")


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _non_empty(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def leak_findings(layer: str, codes: set[str], pattern: re.Pattern[bytes], path: str, status: int,
                  content_type: str, body: bytes, sent: bytes) -> list[str]:
    """What of the restricted ``layer`` this answer carries (``kind: detail``), ignoring echoes of ``sent``.

    Feature codes and item links are looked for in the answer and in the documents it unpacks to
    (:func:`tests.documents.unpacked`).
    """
    out: list[str] = []
    inside = unpacked(body)
    found = sorted(
        {t.decode() for part in (body, inside) for t in (m.group(0) for m in pattern.finditer(part)) if t not in sent}
        & codes
    )
    if found:
        out.append(f"code: {len(found)} feature code(s) of {layer}, e.g. {', '.join(found[:3])}")
    item_link = re.compile(rb"/collections/" + re.escape(layer.encode()) + rb"/items/\d+")
    link = next((m.group(0) for part in (body, inside) if (m := item_link.search(part))), None)
    if link and link not in sent:
        out.append(f"item-link: {link.decode()}")
    if "vector-tile" in content_type and layer.encode() in body:
        out.append("layer-in-tile")
    if 200 <= status < 300 and MUST_NOT_NAME.match(path) and layer.encode() in body and layer.encode() not in sent:
        out.append(f"layer-named: {path}")
    if "json" in content_type and layer.encode() in body:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        for obj in _walk(doc):
            if any(obj.get(k) == layer for k in NAMING_KEYS):
                carried = [k for k in FEATURE_KEYS if _non_empty(obj.get(k))]
                carried += [k for k in COUNT_KEYS if _non_empty(obj.get(k))]
                if carried:
                    out.append(f"feature: object naming {layer} carries {', '.join(carried)}")
            if obj.get("id") == layer:
                carried = [k for k in COUNT_KEYS if _non_empty(obj.get(k))]
                if carried:
                    out.append(f"feature: registry entry of {layer} carries {', '.join(carried)}")
    return out


def restricted_codes(database_url: str, layer: str) -> list[str]:
    """Every feature code of ``layer`` (as the owner)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute(
            psycopg.sql.SQL("SELECT code FROM renewal.{} WHERE code IS NOT NULL").format(
                psycopg.sql.Identifier(layer)))]


def _install_check() -> None:
    """Register ``no_restricted_leak`` (this file loaded by schemathesis through SCHEMATHESIS_HOOKS)."""
    import schemathesis

    cfg = json.loads(Path(os.environ[LEAK_CONFIG_ENV]).read_text())
    layer, caller, findings_path = cfg["layer"], cfg["caller"], Path(cfg["findings"])
    codes = set(cfg["codes"])
    pattern = code_pattern(cfg["codes"])
    lock = threading.Lock()
    refreshed = [time.monotonic()]

    def current_codes() -> tuple[set[str], re.Pattern[bytes]]:
        """The codes known so far plus those of features the admin created or recoded meanwhile."""
        nonlocal codes, pattern
        with lock:
            if time.monotonic() - refreshed[0] > 20:
                refreshed[0] = time.monotonic()
                codes = codes | set(restricted_codes(cfg["database"], layer))
                pattern = code_pattern(sorted(codes))
            return codes, pattern

    @schemathesis.check
    def no_restricted_leak(ctx: Any, response: Any, case: Any) -> bool | None:
        """No answer to the anonymous caller carries anything of the restricted layer."""
        req = response.request
        sent = unquote_to_bytes(req.url or "")
        if req.body:
            sent += req.body if isinstance(req.body, bytes) else str(req.body).encode()
        content_type = ",".join(response.headers.get("content-type", []))
        known, shapes = current_codes()
        found = leak_findings(layer, known, shapes, case.path, response.status_code, content_type,
                              response.content or b"", sent)
        if not found:
            return None
        with lock, findings_path.open("a") as f:
            for item in found:
                f.write(json.dumps({"caller": caller, "method": case.method, "path": case.path,
                                    "url": req.url, "status": response.status_code, "finding": item}) + "\n")
        if caller == "anonymous":
            raise AssertionError(f"Restricted layer {layer} leaks to an anonymous caller: {'; '.join(found[:5])}")
        return None


def _install_value_hooks() -> None:
    """Draw about half of the layer, feature, tile, target, district and place parameters from real values.

    Without this nearly every request naming a layer or feature is a 404 (the schema cannot know
    the ids); with it the fuzzing reaches the queries, tiles and edits behind them. The other half
    keeps whatever schemathesis generated.
    """
    import schemathesis
    from hypothesis import strategies as st

    v = json.loads(Path(os.environ[LEAK_CONFIG_ENV]).read_text())["values"]
    w, s, e, n = v["bbox"]
    layer_ids = st.sampled_from(v["layers"])
    lon, lat = st.floats(w, e), st.floats(s, n)
    real: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "path": {"collection_id": layer_ids, "layer": layer_ids, "feature_id": st.integers(1, v["max_id"]),
                 "tms": st.just("WebMercatorQuad"), "style_id": st.sampled_from(v["styles"]),
                 "target": st.sampled_from(v["targets"]), "indicator": st.sampled_from(v["indicators"]),
                 "district": st.sampled_from(v["districts"]), "sid": st.integers(1, 20)},
        "query": {"layer": layer_ids, "collection": layer_ids, "from_layer": layer_ids,
                  "layers": st.lists(layer_ids, min_size=1, max_size=3).map(",".join),
                  "target": st.sampled_from(v["targets"]), "district": st.sampled_from(v["districts"]),
                  "lon": lon, "lat": lat, "q": st.sampled_from(v["codes"]), "from_code": st.sampled_from(v["codes"]),
                  "from_id": st.integers(1, v["max_id"]), "distance": st.floats(1, 2000),
                  "bbox": st.tuples(lon, lat, st.floats(0.001, 0.05), st.floats(0.001, 0.05)).map(
                      lambda t: f"{t[0]},{t[1]},{t[0] + t[2]},{t[1] + t[3]}")},
    }

    def tile(zoom: int, x: float, y: float) -> tuple[int, int, int]:
        import math

        k = 2**zoom
        return zoom, int((x + 180) / 360 * k), int((1 - math.asinh(math.tan(math.radians(y))) / math.pi) / 2 * k)

    def realistic(where: str, params: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
        if not params:
            return st.just(params)
        parts: dict[str, st.SearchStrategy[Any]] = {
            name: (st.one_of(st.just(value), real[where][name]) if name in real[where] else st.just(value))
            for name, value in params.items()}
        out = st.fixed_dictionaries(parts)
        if where == "path" and {"z", "x", "y"} <= params.keys():
            tiles = st.builds(tile, st.integers(8, 17), lon, lat)
            out = st.tuples(out, st.one_of(st.none(), tiles)).map(
                lambda pair: pair[0] if pair[1] is None else {**pair[0], **dict(zip("zxy", pair[1], strict=True))})
        return out

    @schemathesis.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        return realistic("path", path_parameters)

    @schemathesis.hook
    def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
        return realistic("query", query)


if __name__ == "_schemathesis_hooks":  # loaded by schemathesis (SCHEMATHESIS_HOOKS=<this file>)
    _install_check()
    _install_value_hooks()


# --------------------------------------------------------------------------- the run


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every few seconds; keeps the highest."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.highest = os.getloadavg()[0]
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(5):
            self.highest = max(self.highest, os.getloadavg()[0])


def _fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


def run_caller(caller: str, server_url: str, key: str | None, share: int, args: argparse.Namespace,
               out_dir: Path, leak_cfg: dict[str, Any]) -> dict[str, Any]:
    """Rounds of ``schemathesis run`` as one caller until ``share`` requests were sent."""
    cfg_path = out_dir / f"leak-config-{caller}.json"
    cfg_path.write_text(json.dumps({**leak_cfg, "caller": caller}))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).resolve()), LEAK_CONFIG_ENV: str(cfg_path)}
    sent = 0
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    failure_titles: dict[str, set[str]] = {}
    server_errors: list[str] = []
    rounds: list[dict[str, Any]] = []
    max_examples = args.max_examples
    started = time.monotonic()
    rnd = 0
    while sent < share:
        seed = args.seed + CALLER_SEED_OFFSET[caller] + rnd
        har = out_dir / f"{caller}-{rnd}.har"
        report = out_dir / f"{caller}-{rnd}.json"
        phases = "examples,coverage" if rnd == 0 else "fuzzing,stateful"
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server_url}/api",
               "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,"
                           "status_code_conformance,response_headers_conformance,no_restricted_leak",
               "--phases", phases, "--max-examples", str(max_examples), "--workers", str(args.workers),
               "--seed", str(seed), "--request-timeout", "60", "--suppress-health-check", "all",
               "--report", "har,json", "--report-har-path", str(har), "--report-json-path", str(report)]
        if key:
            cmd += ["--header", f"X-API-Key: {key}"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        took = time.monotonic() - t0
        (out_dir / f"{caller}-{rnd}.log").write_text(proc.stdout + proc.stderr)
        entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
        doc = json.loads(report.read_text()) if report.exists() else {}
        n = len(entries)
        sent += n
        for e in entries:
            status = int(e["response"]["status"])
            statuses[status] += 1
            if status >= 500:
                server_errors.append(f"{e['request']['method']} {e['request']['url']} -> {status}")
        for group in doc.get("failures", []):
            name = f"{group.get('code')} {group.get('title')}"
            failures[name] += int(group.get("count") or 0)
            failure_titles.setdefault(name, set()).update(group.get("operations") or [])
        for err in doc.get("errors", []):
            errors[err["title"]] += int(err.get("count") or 0)
        rounds.append({"round": rnd, "seed": seed, "phases": phases, "max_examples": max_examples, "requests": n,
                       "seconds": round(took, 1), "exit": proc.returncode})
        print(f"  {caller} round {rnd}: seed {seed}, phases {phases}, -n {max_examples}: {n} requests in "
              f"{took:.0f} s (exit {proc.returncode}); {sent}/{share}", flush=True)
        if n == 0:
            print(proc.stdout[-3000:] + proc.stderr[-3000:], flush=True)
            break
        if rnd > 0 and sent < share:  # size the next round to what is left (fuzzing scales with -n)
            per_example = n / max_examples
            max_examples = max(10, min(5000, int((share - sent) / max(per_example, 1) * 1.05) + 1))
        rnd += 1
    return {"caller": caller, "requests": sent, "statuses": dict(sorted(statuses.items())),
            "server_errors": server_errors, "failures": dict(failures), "errors": dict(errors),
            "failure_titles": {k: sorted(v) for k, v in failure_titles.items()}, "rounds": rounds,
            "seconds": round(time.monotonic() - started, 1)}


def real_values(db: str, server_url: str, key: str) -> dict[str, Any]:
    """Ids and codes of the demo city, for the value hooks."""
    import httpx
    import psycopg

    def get(path: str) -> Any:
        r = httpx.get(f"{server_url}{path}", headers={"X-API-Key": key}, timeout=60)
        r.raise_for_status()
        return r.json()

    layers = [lyr["id"] for lyr in get("/layers")["layers"]]
    targets = [t["target"] for t in get("/progress")["targets"]]
    indicators = [i["indicator"] for i in get("/indicators")["indicators"]]
    styles = [s["id"] for s in get("/styles")["styles"]]
    codes: list[str] = []
    max_id = 1
    with psycopg.connect(db) as conn:
        districts = [x for row in conn.execute("SELECT code, name FROM renewal.districts") for x in row]
        for layer in layers:
            rows = conn.execute(psycopg.sql.SQL("SELECT code, max(id) OVER () FROM renewal.{} ORDER BY md5(code) "
                                                "LIMIT 4").format(psycopg.sql.Identifier(layer))).fetchall()
            codes += [r[0] for r in rows if r[0]]
            codes += [r[0][:7] for r in rows[:1] if r[0]]  # a prefix: a search with many hits
            # (md5 order: a spread of codes, the same every run, so a seed means the same values)
            max_id = max([max_id] + [int(r[1]) for r in rows])
    return {"layers": layers, "targets": targets, "indicators": indicators, "styles": styles,
            "districts": districts, "codes": sorted(set(codes)), "max_id": min(max_id, 30000),
            "bbox": [114.38, 37.96, 114.62, 38.12]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests in total, split between the callers")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=1,
                        help="schemathesis workers per caller (the callers run at the same time)")
    parser.add_argument("--max-examples", type=int, default=100, help="--max-examples of the first round")
    parser.add_argument("--restricted", default="land_parcels", help="layer closed to anonymous readers")
    parser.add_argument("--callers", default="anonymous,admin",
                        help=f"comma-separated, of: {', '.join(CALLER_SEED_OFFSET)}")
    args = parser.parse_args()

    from concurrent.futures import ThreadPoolExecutor

    from api.cli.users import add_user
    from tests.conftest import ARTIFACTS, LiveServer, scratch_demo_database

    out_dir = ARTIFACTS / "schemathesis_large"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        old.unlink()
    findings = out_dir / "leak-findings.jsonl"
    callers = [c.strip() for c in args.callers.split(",") if c.strip()]
    unknown = sorted(set(callers) - set(CALLER_SEED_OFFSET))
    if not callers or unknown:
        parser.error(f"--callers: choose one or more of {', '.join(CALLER_SEED_OFFSET)}"
                     + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    share = args.requests // len(callers)
    load_start = os.getloadavg()
    sampler = LoadSampler()
    sampler.start()
    t0 = time.monotonic()
    results = []
    with scratch_demo_database("renewal_stbench") as db:
        codes = restricted_codes(db, args.restricted)
        key = add_user(db, f"stbench_admin_{uuid.uuid4().hex[:6]}", "admin", [])
        server = LiveServer(db, env={"RENEWAL_RESTRICTED_LAYERS": args.restricted, "RENEWAL_ANON_RATE_PER_S": "0",
                                     "RENEWAL_POOL_MAX_SIZE": "12"})
        try:
            leak_cfg = {"layer": args.restricted, "codes": codes, "findings": str(findings), "database": db,
                        "values": real_values(db, server.url, key)}
        except BaseException:
            server.stop()
            raise
        print(f"server {server.url} on {db.rsplit('/', 1)[-1]}, restricted layer {args.restricted} "
              f"({len(codes)} feature codes), seed {args.seed}, {args.workers} worker(s) per caller, "
              f"{args.requests} requests over {', '.join(callers)}", flush=True)
        try:
            with ThreadPoolExecutor(len(callers)) as pool:
                futures = [pool.submit(run_caller, caller, server.url, key if caller == "admin" else None, share,
                                       args, out_dir, leak_cfg) for caller in callers]
                results = [f.result() for f in futures]
        finally:
            server.stop()
    elapsed = time.monotonic() - t0
    sampler.stopped.set()
    load_end = os.getloadavg()

    hits: Counter[tuple[str, str]] = Counter()
    examples: dict[str, list[str]] = {}
    if findings.exists():
        for line in findings.read_text().splitlines():
            f = json.loads(line)
            kind = f["finding"].split(":")[0]
            hits[(f["caller"], kind)] += 1
            if f["caller"] == "anonymous":
                examples.setdefault(kind, []).append(f"{f['method']} {f['url']} -> {f['status']}: {f['finding']}")

    print("\n== schemathesis_large: results")
    total = 0
    for r in results:
        total += r["requests"]
        print(f"{r['caller']}: {r['requests']} requests in {len(r['rounds'])} rounds, {r['seconds']:.0f} s")
        print(f"  statuses: {', '.join(f'{s}: {n}' for s, n in r['statuses'].items())}")
        print(f"  5xx: {len(r['server_errors'])}" + "".join(f"\n    {e}" for e in r["server_errors"][:20]))
        if r["failures"]:
            for name, n in sorted(r["failures"].items()):
                print(f"  failures {name}: {n}")
                for title in r["failure_titles"].get(name, [])[:10]:
                    print(f"    {title}")
        else:
            print("  failures: none")
        if r["errors"]:
            print("  schemathesis errors (the tool, not a check): "
                  + ", ".join(f"{k}: {n}" for k, n in r["errors"].items()))
        kinds = {k: n for (c, k), n in sorted(hits.items()) if c == r["caller"]}
        label = "leaks (failures)" if r["caller"] == "anonymous" else "leak detector hits (positive control)"
        print(f"  {label}: " + (", ".join(f"{k}: {n}" for k, n in kinds.items()) or "none"))
    for kind, lines in sorted(examples.items()):
        print(f"  anonymous leak {kind}, e.g.:" + "".join(f"\n    {x}" for x in lines[:5]))
    print(f"total requests: {total}")
    print(f"elapsed: {elapsed:.0f} s ({total / max(elapsed, 1e-9):.1f} requests/s)")
    print(f"load average: start {_fmt_load(load_start)}, end {_fmt_load(load_end)}, "
          f"highest 1-min sampled {sampler.highest:.2f} ({os.cpu_count()} cores)")
    print(f"artifacts: {out_dir.relative_to(ROOT)}")
    (out_dir / "summary.json").write_text(json.dumps({"results": results, "elapsed_s": round(elapsed, 1),
                                                      "leak_hits": {f"{c}/{k}": n for (c, k), n in hits.items()},
                                                      "load_start": load_start, "load_end": load_end,
                                                      "load_highest": sampler.highest}, indent=2))
    failed = any(r["failures"] or r["server_errors"] for r in results)
    return 1 if failed or total < args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
