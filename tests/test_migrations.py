"""Migrations upgrade, downgrade and upgrade again cleanly on a fresh database."""

import psycopg

from api.cli.db import downgrade, upgrade
from tests.conftest import create_database, drop_database


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'renewal'"
        ).fetchall()}


def test_upgrade_downgrade_upgrade() -> None:
    url = create_database("renewal_migr")
    try:
        upgrade(url)
        first = _tables(url)
        assert {"status_history", "land_parcels", "old_compounds"} <= first
        downgrade(url, "base")
        assert _tables(url) == set()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'renewal'").fetchone()[0] == 0
        upgrade(url)
        assert _tables(url) == first
    finally:
        drop_database(url)


def test_status_trigger_records_history_with_session_settings(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL renewal.effective_date = '2022-03-15'")
        conn.execute("SET LOCAL renewal.source_doc = '石政办〔2022〕1号'")
        fid = conn.execute(
            "INSERT INTO renewal.parking_sites (code, name, status, spaces, geom) VALUES "
            "('TEST-P1', '测试停车场', 'planned', 100, ST_SetSRID(ST_MakePoint(114.5, 38.04), 4490)) RETURNING id"
        ).fetchone()[0]
        conn.execute("UPDATE renewal.parking_sites SET status = 'under_construction' WHERE id = %s", (fid,))
        conn.execute("UPDATE renewal.parking_sites SET spaces = 120 WHERE id = %s", (fid,))  # no status change
        rows = conn.execute(
            "SELECT from_status, to_status, effective_date::text, source_doc FROM renewal.status_history "
            "WHERE layer = 'parking_sites' AND feature_id = %s ORDER BY id",
            (fid,),
        ).fetchall()
        assert rows == [
            (None, "planned", "2022-03-15", "石政办〔2022〕1号"),
            ("planned", "under_construction", "2022-03-15", "石政办〔2022〕1号"),
        ]
        conn.execute("DELETE FROM renewal.status_history WHERE layer = 'parking_sites' AND feature_id = %s", (fid,))
        conn.execute("DELETE FROM renewal.parking_sites WHERE id = %s", (fid,))


def test_schema_rejects_invalid_geometry_and_unknown_status(conn: psycopg.Connection) -> None:
    import pytest

    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO renewal.old_compounds (code, name, status, geom) VALUES ('X', 'x', 'pending', "
            "ST_GeomFromText('MULTIPOLYGON(((114.5 38, 114.51 38.01, 114.51 38, 114.5 38.01, 114.5 38)))', 4490))"
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO renewal.old_compounds (code, name, status, geom) VALUES ('X', 'x', 'finished', "
            "ST_GeomFromText('MULTIPOLYGON(((114.5 38, 114.51 38, 114.51 38.01, 114.5 38.01, 114.5 38)))', 4490))"
        )


def test_every_write_bumps_the_layer_version_and_is_audited(conn: psycopg.Connection) -> None:
    def version() -> int:
        row = conn.execute("SELECT version FROM renewal.layer_version WHERE layer = 'parking_sites'").fetchone()
        return int(row[0]) if row else 0

    before = version()
    with conn.transaction():
        conn.execute("SET LOCAL renewal.actor = 'tester'")
        conn.execute("SET LOCAL renewal.request_id = 'req-1'")
        fid = conn.execute(
            "INSERT INTO renewal.parking_sites (code, name, status, spaces, geom) VALUES "
            "('TEST-AUD', '审计测试', 'planned', 10, ST_SetSRID(ST_MakePoint(114.5, 38.04), 4490)) RETURNING id"
        ).fetchone()[0]
    assert version() == before + 1
    conn.execute("UPDATE renewal.parking_sites SET spaces = 11 WHERE id = %s", (fid,))
    conn.execute("DELETE FROM renewal.parking_sites WHERE id = %s", (fid,))
    assert version() == before + 3
    rows = conn.execute(
        "SELECT actor, action, request_id, before->>'spaces', after->>'spaces', after->'geom'->>'type' "
        "FROM renewal.audit_log WHERE layer = 'parking_sites' AND feature_id = %s ORDER BY id",
        (fid,),
    ).fetchall()
    assert [r[1] for r in rows] == ["INSERT", "UPDATE", "DELETE"]
    assert rows[0][0] == "tester" and rows[0][2] == "req-1" and rows[0][5] == "Point"
    assert rows[1][3:5] == ("10", "11")
    conn.execute("DELETE FROM renewal.status_history WHERE layer = 'parking_sites' AND feature_id = %s", (fid,))


def test_app_role_cannot_switch_off_history_or_audit(conn: psycopg.Connection) -> None:
    """The bypass settings are for the data owner (demo loader); the API's role is always recorded."""
    role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'renewal_app'").fetchone()
    assert role, "migration 0005 creates renewal_app"
    audit_before = conn.execute("SELECT count(*) FROM renewal.audit_log").fetchone()[0]
    with conn.transaction():
        conn.execute("SET LOCAL ROLE renewal_app")
        conn.execute("SET LOCAL renewal.audit_mode = 'off'")
        conn.execute("SET LOCAL renewal.history_mode = 'manual'")
        fid = conn.execute(
            "INSERT INTO renewal.parking_sites (code, name, status, spaces, geom) VALUES "
            "('TEST-BYPASS', '绕过测试', 'planned', 5, ST_SetSRID(ST_MakePoint(114.5, 38.04), 4490)) RETURNING id"
        ).fetchone()[0]
        conn.execute("DELETE FROM renewal.parking_sites WHERE id = %s", (fid,))
    hist = conn.execute(
        "SELECT count(*) FROM renewal.status_history WHERE layer = 'parking_sites' AND feature_id = %s", (fid,)
    ).fetchone()[0]
    assert hist == 1
    assert conn.execute("SELECT count(*) FROM renewal.audit_log").fetchone()[0] == audit_before + 2
    # the owner (the demo loader's role) still may bypass
    with conn.transaction():
        conn.execute("SET LOCAL renewal.audit_mode = 'off'")
        conn.execute("UPDATE renewal.parking_sites SET spaces = spaces WHERE false")
    conn.execute("DELETE FROM renewal.status_history WHERE layer = 'parking_sites' AND feature_id = %s", (fid,))
