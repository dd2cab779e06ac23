"""Areas for any city: planar in the city's Gauss-Krüger zone vs geodesic on the spheroid, in PostGIS.

Two ways to keep ``area_mu`` within 0.1 % of the true (geodesic) area for any city in China:

* **zone**: ``ST_Area(ST_Transform(geom, <the city's CGCS2000 3° GK zone>))`` (what the generated
  columns do; :mod:`layers.city` picks the zone whose central meridian is nearest the city);
* **geodesic**: ``ST_Area(geom::geography)`` (GeographicLib on the spheroid, no CRS to choose).

For cities across China (and Shijiazhuang's fixed EPSG:4547 applied to them, the bug of issue 15)
it measures, in one scratch database:

* accuracy: the worst relative error of each against pyproj's geodesic area (``Geod.geometry_area_perimeter``
  on the CGCS2000 ellipsoid) over parcel-sized (~0.1 km²) and district-sized (~500 km²) polygons
  spread over the city's extent;
* speed: the time to compute the expression over ``--parcels`` parcel polygons (min of 3 runs),
  and the ratio.

Usage: ``python bench/bench_area.py [--parcels 100000]``. Needs a local PostgreSQL with PostGIS
(``BENCH_DATABASE_SERVER``, default ``postgresql:///postgres``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.crs import nearest_gauss_kruger_3deg  # noqa: E402
from gis.geodesy import geodesic_area_m2  # noqa: E402

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql:///postgres")
CITIES = {
    # name: (min lon, min lat, max lon, max lat) of the municipality, roughly
    "Shijiazhuang": (113.5, 37.4, 115.5, 38.8),
    "Qingdao": (119.5, 35.6, 121.0, 37.1),
    "Harbin": (125.7, 44.1, 130.2, 46.3),
    "Urumqi": (86.7, 42.7, 88.9, 44.1),
    "Sanya": (108.9, 18.1, 109.8, 18.6),
    "Chongqing": (105.3, 28.2, 110.2, 32.2),
}


def polygons(extent: tuple[float, float, float, float], n: int, size: float, seed: int) -> list[shapely.Polygon]:
    """``n`` jittered quadrilaterals of about ``size`` degrees spread over ``extent`` (deterministic)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent
    out = []
    for _ in range(n):
        cx = rng.uniform(x0 + size, x1 - size) if x1 - x0 > 2 * size else (x0 + x1) / 2
        cy = rng.uniform(y0 + size, y1 - size) if y1 - y0 > 2 * size else (y0 + y1) / 2
        d = rng.uniform(-0.2, 0.2, (4, 2)) * size
        ring = [(cx - size / 2 + d[0, 0], cy - size / 2 + d[0, 1]), (cx + size / 2 + d[1, 0], cy - size / 2 + d[1, 1]),
                (cx + size / 2 + d[2, 0], cy + size / 2 + d[2, 1]), (cx - size / 2 + d[3, 0], cy + size / 2 + d[3, 1])]
        out.append(shapely.segmentize(shapely.Polygon(ring), size / 20))
    return out


def accuracy(conn: psycopg.Connection, name: str, extent: tuple[float, float, float, float]) -> dict[str, float]:
    """Worst relative error (%) of zone, geodesic and fixed-4547 areas against pyproj."""
    zone = nearest_gauss_kruger_3deg((extent[0] + extent[2]) / 2)
    geoms = polygons(extent, 200, 0.003, 1) + polygons(extent, 40, 0.2, 2)
    worst = {"zone": 0.0, "geodesic": 0.0, "4547": 0.0}
    for g in geoms:
        ref = geodesic_area_m2(g)
        row = conn.execute(
            "SELECT ST_Area(ST_Transform(g, %(z)s)), ST_Area(g::geography), ST_Area(ST_Transform(g, 4547)) "
            "FROM (SELECT ST_GeomFromText(%(w)s, 4490) AS g) s",
            {"z": zone, "w": g.wkt},
        ).fetchone()
        assert row is not None
        for key, value in zip(("zone", "geodesic", "4547"), row, strict=True):
            worst[key] = max(worst[key], abs(value - ref) / ref * 100)
    return {"epsg": float(zone), **worst}


def speed(conn: psycopg.Connection, n: int) -> dict[str, float]:
    """Seconds to compute each expression over ``n`` parcels (min of 3), table built once."""
    conn.execute("DROP TABLE IF EXISTS parcels")
    conn.execute("CREATE TABLE parcels (geom geometry(Polygon, 4490))")
    geoms = polygons(CITIES["Qingdao"], n, 0.003, 3)
    with conn.cursor().copy("COPY parcels (geom) FROM STDIN") as copy:
        for g in geoms:
            copy.write_row((f"SRID=4490;{g.wkt}",))
    conn.execute("ANALYZE parcels")
    zone = nearest_gauss_kruger_3deg(120.3)
    exprs = {
        "zone": sql.SQL("ST_Area(ST_Transform(geom, {}))").format(sql.Literal(zone)),
        "geodesic": sql.SQL("ST_Area(geom::geography)"),
        "geodesic_sphere": sql.SQL("ST_Area(geom::geography, false)"),
    }
    out = {}
    for key, expr in exprs.items():
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            conn.execute(sql.SQL("SELECT sum({}) FROM parcels").format(expr)).fetchone()
            runs.append(time.perf_counter() - t)
        out[key] = min(runs)
    return out


def main() -> None:
    """Create a scratch database, measure, print, drop it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parcels", type=int, default=100_000)
    args = parser.parse_args()
    name = f"bench_area_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(SERVER, dbname=name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute("SET jit = off")
            print("Worst relative error against pyproj's geodesic area (%), 200 parcels + 40 districts per city:")
            print(f"{'city':<14}{'zone EPSG':>10}{'zone':>10}{'geodesic':>10}{'EPSG:4547':>11}")
            for city, extent in CITIES.items():
                a = accuracy(conn, city, extent)
                print(f"{city:<14}{int(a['epsg']):>10}{a['zone']:>10.4f}{a['geodesic']:>10.6f}{a['4547']:>11.4f}")
            s = speed(conn, args.parcels)
            print(f"\nTime to compute the area of {args.parcels:,} parcels (min of 3 runs):")
            for key, seconds in s.items():
                print(f"  {key:<16}{seconds:8.3f} s  ({args.parcels / seconds:,.0f} polygons/s)")
            print(f"  geodesic / zone: {s['geodesic'] / s['zone']:.2f}x")
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
