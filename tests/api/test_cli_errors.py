"""Every ``renewal`` command answers a database it cannot use with one clear line and exit code 2.

Four states: no server at that address, a database that does not exist, a database that exists
but has not been migrated, and one without PostGIS. No traceback, one line naming what to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, create_database, drop_database, url_for_db

COMMANDS = [
    ["layers", "list"],
    ["users", "list"],
    ["users", "add", "cli.check", "--role", "viewer"],
    ["import", "old_compounds", "{file}"],
    ["export", "old_compounds", "{out}"],
    ["progress"],
    ["ranking", "2022Q3"],
    ["city", "show"],
    ["demo", "load"],
]
HINTS = {
    "unreachable": "Cannot reach the database",
    "missing": "does not exist",
    "unmigrated": "renewal db upgrade",
    "no_postgis": "renewal db upgrade",
}


@pytest.fixture(scope="module")
def states() -> Iterator[dict[str, str]]:
    unmigrated = create_database("renewal_cli_unmigrated")  # PostGIS, no tables
    name = "renewal_cli_nopostgis_" + os.urandom(4).hex()
    with psycopg.connect(url_for_db("postgres"), autocommit=True) as c:
        c.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    no_postgis = url_for_db(name)
    try:
        yield {
            "unreachable": "postgresql://127.0.0.1:1/renewal?connect_timeout=1",
            "missing": url_for_db("renewal_no_such_database_" + os.urandom(4).hex()),
            "unmigrated": unmigrated,
            "no_postgis": no_postgis,
        }
    finally:
        drop_database(unmigrated)
        drop_database(no_postgis)


@pytest.mark.parametrize("state", list(HINTS))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_cli_database_problems_are_one_line(states: dict[str, str], state: str, command: list[str],
                                            tmp_path: Path) -> None:
    src = tmp_path / "in.geojson"
    square = [[[114.50, 38.04], [114.501, 38.04], [114.501, 38.041], [114.50, 38.041], [114.50, 38.04]]]
    src.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
        "properties": {"code": "CLI-1", "name": "检查"}}]}))
    args = [a.format(file=src, out=tmp_path / "out.geojson") for a in command]
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "DATABASE_URL": states[state], "RENEWAL_OWNER_DATABASE_URL": states[state]},
                         timeout=120, check=False)
    assert out.returncode == 2, (out.returncode, out.stdout[-500:], out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error:")
    hint = HINTS[state]
    if command[0] == "import" and state in ("unmigrated", "no_postgis"):
        hint = "migrat"  # the importer names the missing tables
    assert hint in lines[0] or "make db" in lines[0], lines[0]
