"""The QGIS project, opened by Debian's QGIS (python3-qgis, offscreen) against a live server.

Checks: the project opens in CGCS2000; every layer is valid and grouped as in the viewer's panel;
each layer's feature count (through OGC API Features) equals the database's; each categorised
renderer's categories are the registry's statuses with their Chinese labels; the MapLibre style
converts into a QGIS vector tile renderer without errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from gis.tilegrid import web_map_scale_denominator
from layers.registry import get_registry
from layers.styles import LABEL_FONTS
from tests.api.server_support import Server, serve
from tests.conftest import api_url

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = Path(__file__).with_name("qgis_probe.py")
REG = get_registry()


def _has_qgis() -> bool:
    if not shutil.which(SYSTEM_PYTHON):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False, timeout=60)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _has_qgis(), reason="python3-qgis not installed (scripts/os-test-deps.sh)")


@pytest.fixture(scope="module")
def server(db_url: str, demo_loaded: Any) -> Iterator[Server]:
    with serve(api_url(db_url), workers=1, env={"RENEWAL_ANON_RATE_PER_S": "0"}) as s:
        yield s


def test_qgis_opens_the_project(server: Server, conn: psycopg.Connection, tmp_path: Path) -> None:
    project = tmp_path / "renewal.qgs"
    r = httpx.get(f"{server.url}/qgis/project.qgs", timeout=30)
    assert r.status_code == 200, r.text
    project.write_bytes(r.content)
    style = tmp_path / "style.json"
    style.write_bytes(httpx.get(f"{server.url}/styles/renewal?f=mapbox", timeout=30).content)
    tiles = f"{server.url}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    env = {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([SYSTEM_PYTHON, str(PROBE), str(project), str(style), tiles], capture_output=True,
                         text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["opened"] and seen["crs"] == "EPSG:4490", seen
    # grouped as the viewer's panel: registry groups, registry order
    want_groups: dict[str, list[str]] = {}
    for layer in REG:
        want_groups.setdefault(layer.group, []).append(f"{layer.id}_renewal")
    assert seen["groups"] == want_groups
    for layer in REG:
        got = seen["layers"][f"{layer.id}_renewal"]
        assert got["valid"], (layer.id, got)
        assert got["provider"] == "OAPIF"
        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(layer.schema_name, layer.table))).fetchone()
        assert n is not None and got["count"] == n[0], (layer.id, got)
        if layer.lifecycle is not None:
            assert got["renderer"] == "categorizedSymbol" and got["attr"] == "status"
            assert got["categories"] == [[s.code, s.label] for s in layer.lifecycle.statuses]
        else:
            assert got["renderer"] == "singleSymbol"
        # names from the registry's label zooms, as the same map scales the browser shows them at
        st = layer.style
        if st.label_min_zoom is None:
            assert got["labels"] is None, (layer.id, got)
        else:
            labels = got["labels"]
            assert labels["field"] == "name" and labels["scale_visibility"], (layer.id, labels)
            assert labels["font"] == LABEL_FONTS[0]
            assert labels["min_scale"] == pytest.approx(
                web_map_scale_denominator(max(st.label_min_zoom, layer.min_zoom)), abs=1)
            assert labels["max_scale"] == (0 if st.label_max_zoom is None else pytest.approx(
                web_map_scale_denominator(st.label_max_zoom), abs=1))
    assert seen["style"]["result"] == 0 and not seen["style"]["error"], seen["style"]
    assert seen["style"]["tiles_valid"] and seen["style"]["styles"] > len(list(REG))


def test_cli_project_with_direct_postgis_connections(db_url: str, demo_loaded: Any, conn: psycopg.Connection,
                                                     tmp_path: Path) -> None:
    import os
    import sys

    from psycopg.conninfo import conninfo_to_dict

    dbname = conninfo_to_dict(db_url)["dbname"]
    project = tmp_path / "direct.qgs"
    r = subprocess.run([sys.executable, "-m", "api.cli", "qgis-project", "-o", str(project),
                        "--postgis", f"dbname='{dbname}'"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "DATABASE_URL": db_url}, check=False)
    assert r.returncode == 0, r.stderr
    style = tmp_path / "style.json"
    style.write_text('{"version":8,"sources":{},"layers":[]}', encoding="utf-8")
    env = {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([SYSTEM_PYTHON, str(PROBE), str(project), str(style), "http://127.0.0.1:9/{z}/{x}/{y}"],
                         capture_output=True, text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["opened"] and seen["crs"] == "EPSG:4490"
    for layer in REG:
        got = seen["layers"][f"{layer.id}_renewal"]
        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(layer.schema_name, layer.table))).fetchone()
        assert got["valid"] and got["provider"] == "postgres" and got["crs"] == "EPSG:4490", (layer.id, got)
        assert n is not None and got["count"] == n[0], (layer.id, got)
