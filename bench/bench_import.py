"""Import of a 1-million-parcel GeoPackage: `renewal import` vs `ogr2ogr -f PostgreSQL` (+ the same indexes).

One run, side by side:

* the source: the demo city at ``--scale 40`` (≈ 1 million land parcels) loaded into a scratch
  database, written to a GeoPackage with ``ogr2ogr`` (reused between runs if present);
* **renewal import**: ``layers.importer.run_import`` into an empty, migrated ``land_parcels``
  (read with GDAL in Arrow batches, mapping, geometry checks and COPY batch by batch while a
  loader thread normalises the previous batch in SQL with district lookups, insert with every
  constraint and index of the layer table
  (indexes rebuilt after the load, then ANALYZE), the generated area, and the trail written by
  the layer's statement triggers: one status-history row per parcel and, since the benchmark runs
  as the data owner and the file is a bulk load, the insert recorded once in the audit log);
* **ogr2ogr**: ``ogr2ogr -f PostgreSQL --config PG_USE_COPY YES`` into a new table with no index,
  then the same indexes built (GiST on geom, unique code, district, status, land use) and ANALYZE;
* **the database's share** (the floor no importer can go under with this schema): the imported
  rows, already in the database, inserted again into the emptied layer table by one ``INSERT ...
  SELECT``, as the import's own insert does (secondary indexes dropped, the generated area, every
  constraint, the trail triggers), then the indexes rebuilt and ANALYZE; again with none of the
  trail triggers and with each alone (status history, parcel overview, audit summary), to show
  what each costs. Each in a transaction of its own that is rolled back;
* **export**: the imported million parcels to a GeoPackage with ``layers.export`` and with
  ``ogr2ogr -f GPKG`` from PostGIS (same columns).

Prints rows/s for each, the ratios, the import's peak memory (RSS) and the load average (the
machine is shared). Usage: ``python bench/bench_import.py [--scale 40] [--source file.gpkg]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.db import upgrade  # noqa: E402
from layers.importer import ImportOptions, ImportReport, run_import  # noqa: E402
from layers.importer.apply import drop_indexes_for_bulk_load, insert_work_mem  # noqa: E402
from layers.importer.mapping import writable_columns  # noqa: E402
from layers.registry import get_registry  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "shijiazhuang_districts_datav_gcj02.json"
WORK = ROOT / "artifacts" / "bench"
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql:///postgres")


def db_url(name: str) -> str:
    base = SERVER.rsplit("/", 1)[0]
    return f"{base}/{name}"


def ensure_db(name: str, *, fresh: bool) -> str:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = db_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    upgrade(url)
    return url


def source_gpkg(scale: int) -> tuple[Path, int]:
    WORK.mkdir(parents=True, exist_ok=True)
    gpkg = WORK / f"land_parcels_scale{scale}.gpkg"
    if not gpkg.exists():
        from layers.demo import load_demo

        url = ensure_db(f"renewal_bench_src_{scale}", fresh=False)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM renewal.land_parcels").fetchone()
        if not row or row[0] == 0:
            print(f"loading the demo city at scale {scale} ...", flush=True)
            load_demo(url, scale=scale)
        print("writing the GeoPackage ...", flush=True)
        tmp = gpkg.with_suffix(".tmp.gpkg")
        subprocess.run(
            [
                "ogr2ogr",
                "-f",
                "GPKG",
                str(tmp),
                f"PG:dbname=renewal_bench_src_{scale}",
                "-nln",
                "land_parcels",
                "-sql",
                "SELECT code, name, district_code, status, land_use_code, land_use_label, far, "
                "building_density, owner_type, supply_year, geom FROM renewal.land_parcels ORDER BY id",
            ],
            check=True,
        )
        tmp.rename(gpkg)
    out = subprocess.run(["ogrinfo", "-so", "-al", str(gpkg)], check=True, capture_output=True, text=True).stdout
    count = int(next(line for line in out.splitlines() if line.startswith("Feature Count")).split(":")[1])
    return gpkg, count


def bench(scale: int, source: Path | None = None) -> None:
    if source is None:
        gpkg, n = source_gpkg(scale)
    else:
        gpkg = source
        out = subprocess.run(["ogrinfo", "-so", "-al", str(gpkg)], check=True, capture_output=True, text=True).stdout
        n = int(next(line for line in out.splitlines() if line.startswith("Feature Count")).split(":")[1])
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"source: {gpkg.name}, {n:,} parcels, {gpkg.stat().st_size / 1e6:.0f} MB")
    dst_name = f"renewal_bench_dst_{scale}"
    dst = ensure_db(dst_name, fresh=True)
    report = run_import(dst, "districts", REFERENCE, ImportOptions(mode="replace", crs="gcj02"))
    assert report.status == "applied", report.message

    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    t0 = time.perf_counter()
    report = run_import(dst, "land_parcels", gpkg, ImportOptions(mode="append", on_invalid="repair"))
    t_import = time.perf_counter() - t0
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_import = os.getloadavg()[0]
    assert report.status == "applied", (report.message, report.error_counts)
    added = report.counts["added"]

    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA bench_ogr")
        conn.execute("CHECKPOINT")
    t0 = time.perf_counter()
    subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            f"PG:dbname={dst_name}",
            str(gpkg),
            "land_parcels",
            "-nln",
            "bench_ogr.land_parcels",
            "-lco",
            "GEOMETRY_NAME=geom",
            "-lco",
            "SPATIAL_INDEX=NONE",
            "-lco",
            "FID=id",
            "-nlt",
            "MULTIPOLYGON",
            "--config",
            "PG_USE_COPY",
            "YES",
        ],
        check=True,
    )
    t_load = time.perf_counter() - t0
    with psycopg.connect(dst, autocommit=True) as conn:
        for stmt in (
            "CREATE INDEX ON bench_ogr.land_parcels USING gist (geom)",
            "CREATE UNIQUE INDEX ON bench_ogr.land_parcels (code)",
            "CREATE INDEX ON bench_ogr.land_parcels (district_code)",
            "CREATE INDEX ON bench_ogr.land_parcels (status)",
            "CREATE INDEX ON bench_ogr.land_parcels (land_use_code)",
            "ANALYZE bench_ogr.land_parcels",
        ):
            conn.execute(stmt)
        row = conn.execute("SELECT count(*) FROM bench_ogr.land_parcels").fetchone()
        ogr_rows = int(row[0]) if row else 0
    t_ogr = time.perf_counter() - t0
    load_ogr = os.getloadavg()[0]
    floor = database_floor(dst)
    t_export, t_ogr_export, exported = export_both(dst, dst_name)
    load_export = os.getloadavg()[0]

    print()
    print(f"{'':34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    print(f"{'renewal import (validated)':34}{added:>12,}{t_import:>10.1f}{added / t_import:>12,.0f}")
    print(f"{'ogr2ogr PG_USE_COPY + indexes':34}{ogr_rows:>12,}{t_ogr:>10.1f}{ogr_rows / t_ogr:>12,.0f}")
    print(f"{'  of which ogr2ogr load':34}{'':>12}{t_load:>10.1f}")
    print(f"ratio renewal/ogr2ogr (rows/s): {(added / t_import) / (ogr_rows / t_ogr):.2f}")
    print(f"import time / ogr2ogr time: {t_import / t_ogr:.2f} (aim: at most 2)")
    print(f"import peak memory (RSS): {rss_import:,.0f} MB (aim: under 2,048 MB)")
    t_floor = floor["insert"] + floor["rebuild"]
    bare = floor["insert_no_triggers"]
    print(
        f"the database's share alone (insert with triggers {floor['insert']:.1f} s + indexes and ANALYZE "
        f"{floor['rebuild']:.1f} s): {t_floor:.1f} s = {t_floor / t_ogr:.2f} x ogr2ogr; "
        f"without the trail triggers the insert takes {bare:.1f} s"
    )
    print(
        "  each trail trigger alone adds to that insert: "
        + ", ".join(f"{kind} {floor[f'insert_{kind}_only'] - bare:+.1f} s" for kind in TRAIL_TRIGGERS)
    )
    print(f"{'export to GeoPackage (layers.export)':34}{exported:>12,}{t_export:>10.1f}{exported / t_export:>12,.0f}")
    print(f"{'ogr2ogr PostGIS -> GPKG':34}{exported:>12,}{t_ogr_export:>10.1f}{exported / t_ogr_export:>12,.0f}")
    print(f"export time / ogr2ogr time: {t_export / t_ogr_export:.2f} (aim: at most 1)")
    print(
        f"1-min load average after the import {load_import:.2f}, after ogr2ogr {load_ogr:.2f}, "
        f"after the exports {load_export:.2f} (2 cores)"
    )
    print("renewal import stages (s): " + ", ".join(f"{k} {v}" for k, v in report.timings_s.items()))
    for note in report.notes:
        print(f"  note: {note}")


TRAIL_TRIGGERS = {
    "history": "land_parcels_history_ins",
    "overview": "land_parcels_overview_ins",
    "audit": "land_parcels_audit_ins",
}
"""The layer's statement triggers on INSERT that write its trail, by what they write (migrations 0009, 0012)."""


def database_floor(dst: str) -> dict[str, float]:
    """Seconds the database needs for the imported parcels with no reading, checking or staging at all.

    The layer's rows are copied once to an UNLOGGED scratch table. Each variant then runs in a
    transaction of its own that is rolled back: the layer emptied, its secondary indexes dropped
    (the importer's own :func:`drop_indexes_for_bulk_load`), a CHECKPOINT from another session
    (as before the import), and the rows inserted back by one ``INSERT ... SELECT`` in the session
    the import sets up (bulk audit summary, actor, note): the heap, its primary key, the generated
    area, the constraints and the statement triggers writing the status history, the parcel
    overview and the audit summary. The full variant then rebuilds the indexes and runs ANALYZE.
    The other variants keep none of the trail triggers, or one of them, to show what each costs.
    Every variant runs twice, the rounds interleaved, and keeps its faster run: one run of each
    moved by up to a second on a shared 2-core machine, more than the smaller triggers cost.
    (Savepoints would leave each rolled-back insert's pages behind for the next one to skip.)
    """
    layer = get_registry().get("land_parcels")
    target = sql.Identifier(layer.schema_name, layer.table)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in [*writable_columns(layer), "geom"])
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.bench_floor_src")
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE public.bench_floor_src AS SELECT {} FROM {} ORDER BY id").format(
                cols, target
            )
        )
        row = conn.execute("SELECT count(*) FROM public.bench_floor_src").fetchone()
        n = int(row[0]) if row else 0
    out: dict[str, float] = {}
    variants: list[tuple[str, set[str]]] = [
        ("insert", set(TRAIL_TRIGGERS)),
        ("insert_no_triggers", set()),
        *[(f"insert_{kind}_only", {kind}) for kind in TRAIL_TRIGGERS],
    ]
    for key, kept in [*variants, *variants]:  # two rounds, interleaved; each variant keeps its faster run
        with psycopg.connect(dst) as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true), "
                "set_config('synchronous_commit', 'off', true), set_config('maintenance_work_mem', '256MB', true), "
                "set_config('renewal.actor', 'bench', true), set_config('renewal.note', 'bench floor', true), "
                "set_config('renewal.audit_mode', 'summary', true)",
                (insert_work_mem(n),),
            )
            cur.execute(sql.SQL("TRUNCATE {}").format(target))
            report = ImportReport(layer=layer.id, file_name="bench", mode="append")
            rebuild = drop_indexes_for_bulk_load(cur, layer, report, n)
            for kind, trigger in TRAIL_TRIGGERS.items():
                cur.execute(
                    sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                        target, sql.SQL("ENABLE" if kind in kept else "DISABLE"), sql.Identifier(trigger)
                    )
                )
            with psycopg.connect(dst, autocommit=True) as other:
                other.execute("CHECKPOINT")
            t0 = time.perf_counter()
            cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM public.bench_floor_src").format(target, cols, cols))
            out[key] = min(out.get(key, float("inf")), time.perf_counter() - t0)
            if key == "insert":
                t0 = time.perf_counter()
                for stmt in rebuild:
                    cur.execute(stmt)
                out["rebuild"] = min(out.get("rebuild", float("inf")), time.perf_counter() - t0)
            conn.rollback()
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("DROP TABLE public.bench_floor_src")
    return out


def export_both(dst: str, dst_name: str) -> tuple[float, float, int]:
    """Seconds to write the imported parcels to a GeoPackage with layers.export and with ogr2ogr, and the count."""
    from layers.export import export_to_path, whole_layer

    layer = get_registry().get("land_parcels")
    ours, theirs = WORK / "export_renewal.gpkg", WORK / "export_ogr.gpkg"
    for f in (ours, theirs):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    count = export_to_path(dst, whole_layer(layer), ours)
    t_ours = time.perf_counter() - t0
    columns = ", ".join(["code", "name", "district_code", "status", *(f.name for f in layer.fields), "geom"])
    t0 = time.perf_counter()
    subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(theirs), f"PG:dbname={dst_name}", "-nln", "land_parcels",
         "-sql", f"SELECT {columns} FROM renewal.land_parcels ORDER BY id"],
        check=True,
    )
    return t_ours, time.perf_counter() - t0, count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40, help="demo scale (40 ≈ 1 million parcels)")
    parser.add_argument("--source", type=Path, help="a land-parcel GeoPackage instead of the demo at --scale")
    args = parser.parse_args()
    bench(args.scale, args.source)
