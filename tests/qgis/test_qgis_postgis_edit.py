"""QGIS 3.22 edits a layer through the direct-PostGIS project, unmodified, and the database records every edit.

QGIS 3.22's OAPIF provider is read-only, so officers edit from QGIS through the project of
``renewal qgis-project --postgis CONNINFO`` (``project_qgs(..., postgis=...)``). Debian's QGIS
(python3-qgis, offscreen, ``qgis_edit_probe.py``) opens that project and, on 老旧小区
(old_compounds: status lifecycle, generated ``area_mu``, identity ``id``), in separate
edit sessions: changes a feature's name (Chinese) and status; adds a feature with the add-feature
tool's defaults (QgsVectorLayerUtils.createFeature); moves a vertex; deletes a feature; and tries a
status outside the lifecycle and a self-intersecting polygon, which must fail with the database's
CHECK named in commitErrors() and write nothing. The test then reads the database with psycopg:
stored values, the generated area after the vertex move, the status history and the audit log
with the actor being the database login QGIS used.

The login: the project defines no database login for officers (only ``renewal_api``, the API's
own, and the data owner; migrations 0005/0014), so QGIS connects as the owner's login, the
session user of this suite's databases.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from layers.qgis_project import project_qgs
from layers.registry import get_registry
from tests.conftest import scratch_demo_database
from tests.qgis.test_qgis_project import SYSTEM_PYTHON, pytestmark  # noqa: F401  (skip without python3-qgis)

PROBE = Path(__file__).with_name("qgis_edit_probe.py")
LAYER = "old_compounds"
NEW_NAME = "和平路三号院·更新改造（二期）"
NEW_CODE = "LJXQ-QGIS-0001"
# a square of about 175 m x 220 m in 桥西区, CGCS2000 longitude/latitude, as QGIS's add tool digitises it
NEW_WKT = ("MultiPolygon(((114.480 38.030, 114.482 38.030, 114.482 38.032, 114.480 38.032, 114.480 38.030)))")
BOWTIE_WKT = "MultiPolygon(((114.480 38.030, 114.482 38.032, 114.482 38.030, 114.480 38.032, 114.480 38.030)))"


@pytest.fixture(scope="module")
def edit_db() -> Iterator[str]:
    """A database of its own (the test writes), migrated, with the demo loaded."""
    with scratch_demo_database("renewal_qgis_edit") as url:
        yield url


def qgis_conninfo(url: str) -> str:
    """The libpq URL as the ``key='value'`` connection string QGIS's data source URI reads."""
    params = conninfo_to_dict(url)

    def quoted(value: Any) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quoted(params[key])}" for key in ("dbname", "host", "port", "user", "password",
                                                                 "sslmode") if params.get(key))


def _one(conn: psycopg.Connection, query: str, *args: Any) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None, query
    return row


def test_qgis_edits_through_postgis_and_the_edits_are_recorded(edit_db: str, tmp_path: Path) -> None:
    with psycopg.connect(edit_db, autocommit=True) as conn:
        login = _one(conn, "SELECT current_user")[0]
        # the targets: a pending compound for the status change, three others to move, delete, break
        targets = conn.execute(
            "SELECT code, id FROM renewal.old_compounds WHERE status = 'pending' ORDER BY id LIMIT 4").fetchall()
        ids = dict(targets)
        renamed, moved, deleted, broken = (code for code, _ in targets)
        moved_before = _one(conn, "SELECT area_mu, ST_AsText(geom) FROM renewal.old_compounds WHERE code = %s", moved)
        broken_before = _one(conn, "SELECT to_jsonb(c) FROM renewal.old_compounds AS c WHERE code = %s", broken)[0]
        audit_mark = _one(conn, "SELECT coalesce(max(id), 0) FROM renewal.audit_log")[0]
        history_mark = _one(conn, "SELECT coalesce(max(id), 0) FROM renewal.status_history")[0]

    project = tmp_path / "direct.qgs"
    project.write_text(project_qgs(list(get_registry()), service_url="http://127.0.0.1:9",
                                   postgis=qgis_conninfo(edit_db)), encoding="utf-8")
    steps = [
        {"op": "update", "code": renamed, "values": {"name": NEW_NAME, "status": "started"}},
        {"op": "insert", "wkt": NEW_WKT,
         "values": {"code": NEW_CODE, "name": "建华南大街东小区（QGIS新增）", "status": "pending",
                    "district_code": "130104", "built_year": 1992, "households": 240, "reno_class": "basic"}},
        {"op": "move_vertex", "code": moved, "vertex": 2, "scale": 1.5},
        {"op": "delete", "code": deleted},
        {"op": "update", "code": broken, "values": {"status": "abandoned"}},
        {"op": "geometry", "code": broken, "wkt": BOWTIE_WKT},
    ]
    steps_file = tmp_path / "steps.json"
    steps_file.write_text(json.dumps(steps, ensure_ascii=False), encoding="utf-8")
    env = {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([SYSTEM_PYTHON, str(PROBE), str(project), LAYER, str(steps_file)], capture_output=True,
                         text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["opened"] and seen["valid"] and seen["provider"] == "postgres", seen
    # the columns the database computes are read-only in QGIS's forms (the project's <editable>)
    assert {"id", "created_at", "updated_at", "area_mu"} <= set(seen["read_only"]), seen["read_only"]
    assert not {"code", "name", "status", "district_code"} & set(seen["read_only"])
    update, insert, move, delete, bad_status, bad_geom = seen["steps"]
    for step in (update, insert, move, delete):
        assert step["started"] and step["committed"], step
        assert not any(e.startswith("ERROR") for e in step["errors"]), step

    # 1. attributes: QGIS reads back what it wrote
    assert update["after"]["attrs"]["name"] == NEW_NAME and update["after"]["attrs"]["status"] == "started"
    # 2. insert: QGIS left the identity and the generated area to the database (their defaults are clauses)
    assert insert["created_attrs"]["id"].startswith("nextval(") and "st_area" in insert["created_attrs"]["area_mu"]
    new_id = insert["after"]["attrs"]["id"]
    assert isinstance(new_id, int) and insert["after"]["attrs"]["area_mu"] > 0
    # 3./4.
    assert move["moved"] and move["after"]["geom"] != moved_before[1]
    assert delete["deleted"] and delete["after"] is None
    # 5. invalid edits: refused by the database's CHECKs, named in commitErrors(), rolled back
    for step, check in ((bad_status, "old_compounds_status_check"), (bad_geom, "old_compounds_geom_check")):
        assert step["started"] and step["committed"] is False and step["rolled_back"], step
        assert any(check in e for e in step["errors"]), step["errors"]
        assert step["after"]["attrs"]["status"] == "pending"

    with psycopg.connect(edit_db, autocommit=True) as conn:
        row = _one(conn, "SELECT id, name, status FROM renewal.old_compounds WHERE code = %s", renamed)
        assert row == (ids[renamed], NEW_NAME, "started")
        row = _one(conn, "SELECT id, name, status, district_code, households, area_mu, ST_SRID(geom), "
                   "ST_Equals(geom, ST_GeomFromText(%s, 4490)) FROM renewal.old_compounds WHERE code = %s",
                   NEW_WKT, NEW_CODE)
        assert row[:5] == (new_id, "建华南大街东小区（QGIS新增）", "pending", "130104", 240)
        assert row[5] == pytest.approx(insert["after"]["attrs"]["area_mu"]) and row[6] == 4490 and row[7]
        # the generated area follows the moved vertex: larger, and the area of the stored geometry
        row = _one(conn, "SELECT area_mu, ST_Area(geom::geography) * 0.0015, ST_AsText(geom) "
                   "FROM renewal.old_compounds WHERE code = %s", moved)
        assert row[0] > moved_before[0] * 1.05 and row[0] == pytest.approx(row[1], rel=0.01)
        assert row[2] != moved_before[1]
        assert conn.execute("SELECT 1 FROM renewal.old_compounds WHERE code = %s", (deleted,)).fetchone() is None
        # nothing of the refused edits was written
        assert _one(conn, "SELECT to_jsonb(c) FROM renewal.old_compounds AS c WHERE code = %s", broken)[0] \
            == broken_before

        history = conn.execute(
            "SELECT layer, feature_id, code, from_status, to_status, effective_date = current_date, recorded_by "
            "FROM renewal.status_history WHERE id > %s ORDER BY id", (history_mark,)).fetchall()
        assert history == [(LAYER, ids[renamed], renamed, "pending", "started", True, login),
                           (LAYER, new_id, NEW_CODE, None, "pending", True, login)]

        audit = conn.execute(
            "SELECT actor, action, layer, feature_id, code, before, after FROM renewal.audit_log WHERE id > %s "
            "ORDER BY id", (audit_mark,)).fetchall()
        assert [(a[0], a[1], a[2], a[3]) for a in audit] == [
            (login, "UPDATE", LAYER, ids[renamed]), (login, "INSERT", LAYER, new_id),
            (login, "UPDATE", LAYER, ids[moved]), (login, "DELETE", LAYER, ids[deleted])]
        upd, ins, mov, dele = audit
        assert (upd[5]["name"], upd[5]["status"]) != (NEW_NAME, "started")
        assert (upd[6]["name"], upd[6]["status"]) == (NEW_NAME, "started")
        assert upd[5]["geom"] == upd[6]["geom"]
        assert ins[5] is None and ins[6]["code"] == NEW_CODE and ins[6]["geom"]["type"] == "MultiPolygon"
        assert mov[5]["area_mu"] == pytest.approx(moved_before[0]) and mov[6]["area_mu"] > mov[5]["area_mu"]
        assert mov[5]["geom"] != mov[6]["geom"] and mov[5]["name"] == mov[6]["name"]
        assert dele[4] == deleted and dele[5]["code"] == deleted and dele[6] is None
