"""The audit trail of an import: one audit row per added, updated and deleted feature, a history row per status.

The layer's statement triggers (migration 0009) write the trail for every writer; the importer has
no trail SQL of its own. Both roles must leave the same trail: the data owner (the CLI) and the
API's ``renewal_app``. Every audit row is compared with the layer row itself, read with independent
SQL before and after the import; every history row with the statuses in the files. A bulk load by
the data owner records its insert once in the audit log (each feature keeps its history row);
``renewal_app`` cannot ask for that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import layers.importer.trail as trail_module
from layers.importer import TRAIL_NOTE, ImportOptions, run_import
from layers.registry import get_registry
from tests.conftest import REFERENCE_DISTRICTS, create_database, drop_database, shared_file
from tests.fixtures.io_files import compound_frame, write_shapefile

IMAGE = "(to_jsonb(t) - 'geom') || jsonb_build_object('geom', ST_AsGeoJSON(t.geom)::jsonb)"


@pytest.fixture()
def trail_db() -> Iterator[str]:
    """A fresh migrated database with the districts only (the replace step deletes the rest of the layer)."""
    from api.cli.db import upgrade

    url = create_database("renewal_trail")
    try:
        upgrade(url)
        report = run_import(url, "districts", shared_file(REFERENCE_DISTRICTS),
        ImportOptions(mode="replace", crs="gcj02"))
        assert report.status == "applied", report.as_dict()
        yield url
    finally:
        drop_database(url)


def images(conn: psycopg.Connection, prefix: str) -> dict[str, Any]:
    """Code → the row as the audit trigger shows it (all columns, geometry as GeoJSON)."""
    rows = conn.execute(
        f"SELECT t.code, {IMAGE} FROM renewal.old_compounds AS t WHERE t.code LIKE %s", (f"{prefix}-%",)
    ).fetchall()
    return {code: image for code, image in rows}


def audit_rows(conn: psycopg.Connection, import_id: int | None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT action, code, feature_id, before, after, actor, channel, request_id, source_doc, note "
        "FROM renewal.audit_log WHERE layer = 'old_compounds' AND note LIKE %s ORDER BY code",
        (f"import #{import_id}:%",),
    ).fetchall()


def history_rows(conn: psycopg.Connection, import_id: int | None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT code, from_status, to_status, effective_date, source_doc, recorded_by, feature_id "
        "FROM renewal.status_history WHERE layer = 'old_compounds' AND note LIKE %s ORDER BY code",
        (f"import #{import_id}:%",),
    ).fetchall()


@pytest.mark.parametrize("path", ["owner", "app_role"])
def test_import_trail_is_complete_on_both_paths(path: str, trail_db: str, tmp_path: Path) -> None:
    conninfo = trail_db if path == "owner" else make_conninfo(trail_db, options="-c role=renewal_app")
    prefix = "TR"
    labels = get_registry().get("old_compounds").lifecycle.by_label()  # type: ignore[union-attr]
    frame = compound_frame(6, prefix=prefix)
    with psycopg.connect(trail_db, autocommit=True) as conn:
        ids = {
            code: fid for code, fid in conn.execute("SELECT code, id FROM renewal.old_compounds WHERE code LIKE 'TR-%'")
        }
        assert ids == {}

        # 1. append: one INSERT audit row and one history row (none → status) per feature
        shp = write_shapefile(frame, tmp_path / "a", "v1", encoding="GBK")
        opts = ImportOptions(mode="append", actor="王工", effective_date=dt.date(2024, 1, 2), source_doc="文件1")
        report = run_import(conninfo, "old_compounds", shp, opts)
        assert report.status == "applied", report.as_dict()
        assert TRAIL_NOTE not in report.notes  # a small file: one full image per feature
        after = images(conn, prefix)
        ids = {code: image["id"] for code, image in after.items()}
        rows = audit_rows(conn, report.import_id)
        assert [r[1] for r in rows] == sorted(after) and len(rows) == 6
        note = f"import #{report.import_id}: v1.shp"
        for action, code, fid, before, aft, actor, channel, request_id, source_doc, rnote in rows:
            assert (action, fid, before, actor, channel, request_id, source_doc, rnote) == (
                "INSERT",
                ids[code],
                None,
                "王工",
                "import",
                None,
                "文件1",
                note,
            )
            assert aft == after[code]
        expected_hist = sorted(
            (code, None, labels[st], dt.date(2024, 1, 2), "文件1", "王工", ids[code])
            for code, st in zip(frame["编号"], frame["状态"], strict=True)
        )
        assert history_rows(conn, report.import_id) == expected_hist

        # 2. upsert: UPDATE rows (before/after) only for changed features; history only for status changes
        frame2 = frame.copy()
        frame2.loc[0, "状态"] = "已开工" if frame2.loc[0, "状态"] != "已开工" else "待改造"
        frame2.loc[1, "状态"] = "已开工" if frame2.loc[1, "状态"] != "已开工" else "待改造"
        frame2.loc[3, "户数"] = 999
        shp2 = write_shapefile(frame2, tmp_path / "b", "v2", encoding="GBK")
        before_images = images(conn, prefix)
        opts = ImportOptions(mode="upsert", actor="李工", effective_date=dt.date(2025, 3, 9), source_doc="文件2")
        report = run_import(conninfo, "old_compounds", shp2, opts)
        assert report.status == "applied", report.as_dict()
        assert (report.counts["updated"], report.counts["unchanged"]) == (3, 3)
        after = images(conn, prefix)
        changed = sorted(c for c in after if after[c] != before_images[c])
        assert changed == ["TR-001", "TR-002", "TR-004"]
        rows = audit_rows(conn, report.import_id)
        assert [r[1] for r in rows] == changed
        for action, code, fid, before, aft, actor, channel, _, source_doc, _ in rows:
            assert (action, fid, actor, channel, source_doc) == ("UPDATE", ids[code], "李工", "import", "文件2")
            assert before == before_images[code] and aft == after[code]
        assert history_rows(conn, report.import_id) == [
            (c, before_images[c]["status"], after[c]["status"], dt.date(2025, 3, 9), "文件2", "李工", ids[c])
            for c in ("TR-001", "TR-002")
        ]

        # 3. replace with two features fewer: DELETE rows with the last image, nothing after
        frame3 = frame2.iloc[:4]
        shp3 = write_shapefile(frame3, tmp_path / "c", "v3", encoding="GBK")
        before_images = images(conn, prefix)
        report = run_import(conninfo, "old_compounds", shp3, ImportOptions(mode="replace", actor="赵工"))
        assert report.status == "applied", report.as_dict()
        assert (report.counts["deleted"], report.counts["updated"]) == (2, 0)
        assert sorted(images(conn, prefix)) == ["TR-001", "TR-002", "TR-003", "TR-004"]
        rows = audit_rows(conn, report.import_id)
        assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
            ("DELETE", c, ids[c], before_images[c], None, "赵工") for c in ("TR-005", "TR-006")
        ]
        assert history_rows(conn, report.import_id) == []


@pytest.mark.parametrize("path", ["owner", "app_role"])
def test_bulk_load_records_the_import_once_for_the_owner_only(
    path: str, trail_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trail_module, "SUMMARY_ROWS", 5)  # a 6-feature file counts as a bulk load
    conninfo = trail_db if path == "owner" else make_conninfo(trail_db, options="-c role=renewal_app")
    frame = compound_frame(6, prefix="BULK")
    shp = write_shapefile(frame, tmp_path / "bulk", "bulk", encoding="GBK")
    opts = ImportOptions(mode="append", actor="钱工", effective_date=dt.date(2024, 5, 6), source_doc="批量")
    report = run_import(conninfo, "old_compounds", shp, opts)
    assert report.status == "applied", report.as_dict()
    with psycopg.connect(trail_db, autocommit=True) as conn:
        ids = sorted(r[0] for r in conn.execute("SELECT id FROM renewal.old_compounds WHERE code LIKE 'BULK-%'"))
        assert len(ids) == 6
        rows = audit_rows(conn, report.import_id)
        hist = history_rows(conn, report.import_id)
        imported = conn.execute(
            "SELECT file_name, file_sha256, actor, added FROM renewal.imports WHERE id = %s", (report.import_id,)
        ).fetchone()
    assert sorted(h[6] for h in hist) == ids and {h[3] for h in hist} == {dt.date(2024, 5, 6)}
    assert imported == ("bulk.shp", report.file_sha256, "钱工", 6)
    if path == "owner":
        assert TRAIL_NOTE in report.notes
        assert len(rows) == 1
        action, code, fid, before, after, actor, channel, _, source_doc, note = rows[0]
        assert (action, code, fid, before, actor, channel, source_doc) == (
            "INSERT", None, None, None, "钱工", "import", "批量"
        )
        assert after == {"bulk_insert": True, "features": 6, "first_id": ids[0], "last_id": ids[-1]}
        assert note == f"import #{report.import_id}: bulk.shp"
    else:  # the API's role may not summarise: one full image per feature
        assert TRAIL_NOTE not in report.notes
        assert sorted(r[2] for r in rows) == ids and all(r[4] is not None for r in rows)
