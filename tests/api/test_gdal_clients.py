"""GDAL as a real client of the live server: the OAPIF driver (Part 1–3) and the MVT driver."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import morecantile
import psycopg
import pytest
import shapely
from psycopg import sql

from layers.registry import get_registry

REG = get_registry()
pytestmark = [pytest.mark.gdal, pytest.mark.slow]


def run(*args: str) -> str:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} (gdal-bin) is not installed")
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def read_csv(url: str, *extra: str) -> list[dict[str, str]]:
    out = run("ogr2ogr", "-f", "CSV", "/vsistdout/", "-oo", "PAGE_SIZE=5000", f"OAPIF:{url}", *extra)
    return list(csv.DictReader(io.StringIO(out)))


def test_lists_every_collection(live_server: Any) -> None:
    out = run("ogrinfo", "-ro", "-q", f"OAPIF:{live_server.url}")
    names = re.findall(r"^\d+: (\w+)", out, re.M)
    assert names == REG.ids


@pytest.mark.parametrize("layer_id", REG.ids)
def test_reads_every_feature(live_server: Any, conn: psycopg.Connection, layer_id: str) -> None:
    rows = read_csv(f"{live_server.url}/collections/{layer_id}", "-select", "code")
    table = sql.Identifier("renewal", REG.get(layer_id).table)
    codes = [r[0] for r in conn.execute(sql.SQL("SELECT code FROM {}").format(table)).fetchall()]
    assert len(rows) == len(codes)
    assert sorted(r["code"] for r in rows) == sorted(codes)


def test_cql2_filter_equals_sql(live_server: Any, conn: psycopg.Connection) -> None:
    cql = "status IN ('pending','started') AND households > 200 AND name LIKE '%小区%'"
    url = f"{live_server.url}/collections/old_compounds?filter={quote(cql)}"
    rows = read_csv(url, "-select", "code,name,status")
    want = conn.execute(
        "SELECT code, name, status FROM renewal.old_compounds WHERE status IN ('pending','started') "
        "AND households > 200 AND name LIKE '%小区%' ORDER BY code"
    ).fetchall()
    assert sorted((r["code"], r["name"], r["status"]) for r in rows) == want
    assert want


def test_crs_4547_equals_sql(live_server: Any, conn: psycopg.Connection) -> None:
    url = f"{live_server.url}/collections/parking_sites?crs={quote('http://www.opengis.net/def/crs/EPSG/0/4547')}"
    rows = read_csv(url, "-lco", "GEOMETRY=AS_WKT", "-select", "code")
    want = dict(
        conn.execute(
            "SELECT code, ST_AsText(ST_FlipCoordinates(ST_Transform(geom, 4547))) FROM renewal.parking_sites"
        ).fetchall()
    )
    assert len(rows) == len(want) > 0
    for r in rows:
        got = shapely.from_wkt(r["WKT"])
        ref = shapely.from_wkt(want[r["code"]])
        assert got.distance(ref) < 0.002  # millimetres: N,E order as EPSG:4547 defines it
    head = httpx.get(f"{live_server.url}/collections/parking_sites/items", params={"crs": "EPSG:4547", "limit": 1})
    assert head.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4547>"


def test_mvt_driver_opens_a_tile(live_server: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    t = morecantile.tms.get("WebMercatorQuad").tile(114.50, 38.04, 14)
    r = httpx.get(f"{live_server.url}/tiles/WebMercatorQuad/14/{t.x}/{t.y}", timeout=60)
    assert r.status_code == 200
    path = tmp_path / "tile.mvt"
    path.write_bytes(r.content)
    out = run("ogrinfo", "-ro", "-so", "-al", "-oo", "Z=14", "-oo", f"X={t.x}", "-oo", f"Y={t.y}", str(path))
    counts = {m[0]: int(m[1]) for m in re.findall(r"Layer name: (\w+)\n.*?Feature Count: (\d+)", out, re.S)}
    assert counts.get("old_compounds", 0) > 0 and counts.get("land_parcels", 0) > 0
    n = conn.execute(
        "SELECT count(*) FROM renewal.old_compounds WHERE ST_Intersects(ST_Transform(geom, 3857), "
        "ST_TileEnvelope(14, %s, %s))",
        (t.x, t.y),
    ).fetchone()[0]
    assert counts["old_compounds"] >= n
