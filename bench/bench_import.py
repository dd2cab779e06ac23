"""Import of a 1-million-parcel GeoPackage: `renewal import` vs `ogr2ogr -f PostgreSQL` (+ the same indexes).

One run, side by side:

* the source: the demo city at ``--scale 40`` (≈ 1 million land parcels) loaded into a scratch
  database, written to a GeoPackage with ``ogr2ogr`` (reused between runs if present);
* **renewal import**: ``layers.importer.run_import`` into an empty, migrated ``land_parcels``
  (read with GDAL through Arrow, geometry checks, COPY to staging, SQL validation, insert with
  every constraint and index of the layer table (indexes rebuilt after the load), the generated
  area, and a full audit trail: one audit row and one status-history row per parcel, written
  set-based since the benchmark runs as the data owner);
* **ogr2ogr**: ``ogr2ogr -f PostgreSQL --config PG_USE_COPY YES`` into a new table with no index,
  then the same indexes built (GiST on geom, unique code, district, status, land use).

Prints rows/s for each and the ratio. Usage: ``python bench/bench_import.py [--scale 40]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli.db import upgrade  # noqa: E402
from layers.importer import ImportOptions, run_import  # noqa: E402

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


def bench(scale: int) -> None:
    gpkg, n = source_gpkg(scale)
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
        ):
            conn.execute(stmt)
        row = conn.execute("SELECT count(*) FROM bench_ogr.land_parcels").fetchone()
        ogr_rows = int(row[0]) if row else 0
    t_ogr = time.perf_counter() - t0

    print()
    print(f"{'':34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    print(f"{'renewal import (validated)':34}{added:>12,}{t_import:>10.1f}{added / t_import:>12,.0f}")
    print(f"{'ogr2ogr PG_USE_COPY + indexes':34}{ogr_rows:>12,}{t_ogr:>10.1f}{ogr_rows / t_ogr:>12,.0f}")
    print(f"{'  of which ogr2ogr load':34}{'':>12}{t_load:>10.1f}")
    print(f"ratio renewal/ogr2ogr (rows/s): {(added / t_import) / (ogr_rows / t_ogr):.2f}")
    print("renewal import stages (s): " + ", ".join(f"{k} {v}" for k, v in report.timings_s.items()))
    for note in report.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40, help="demo scale (40 ≈ 1 million parcels)")
    bench(parser.parse_args().scale)
