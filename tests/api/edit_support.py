"""Shared helpers and fixtures for the editing, access-control and audit tests.

Imported explicitly by ``tests/api/test_edit*.py`` and ``tests/api/test_auth*.py`` (not a
conftest, so other packages' fixtures stay untouched). Users are created through the real
``renewal users`` code; features are inserted with plain SQL as the database owner so the
fixtures do not depend on the code under test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi.testclient import TestClient

YUHUA = "130108"  # 裕华区: the editor's district
QIAOXI = "130104"  # 桥西区: another district

LAYER_PROPS: dict[str, dict[str, Any]] = {
    "old_compounds": {"status": "pending", "households": 120, "buildings": 4},
    "land_parcels": {"status": "existing", "land_use_code": "0701"},
    "urban_villages": {"status": "planned", "households": 300},
    "parking_sites": {"status": "planned", "spaces": 80},
    "districts": {},
}


EDIT_USERS: dict[str, tuple[str, str, list[str]]] = {
    "admin": ("admin", "admin", []),
    "viewer": ("viewer", "viewer", []),
    "editor_in": ("yuhua", "editor", ["裕华区"]),
    "editor_out": ("qiaoxi", "editor", ["130104"]),
}
"""The API tests' users: key name -> (user name prefix, role, districts)."""
REVIEW_USERS: dict[str, tuple[str, str, list[str]]] = {
    **EDIT_USERS,
    "reviewer": ("rev", "reviewer", []),
    "reviewer_qiaoxi": ("revqx", "reviewer", ["130104"]),
}
"""The editing users and two reviewers, one of them for 桥西区 only."""


def role_keys(db_url: str, users: dict[str, tuple[str, str, list[str]]] = EDIT_USERS) -> dict[str, str]:
    """API keys of ``users`` in ``db_url``, created with the real ``renewal users`` code (unique names).

    Why one function: the shared editing database (conftest's ``keys``) and a module with a
    database of its own (test_submissions' ``people``) need the same users; the list lives here once.
    """
    from api.cli.users import add_user

    tag = uuid.uuid4().hex[:6]
    return {key: add_user(db_url, f"{prefix}_{tag}", role, where) for key, (prefix, role, where) in users.items()}


def unique(prefix: str = "T") -> str:
    """A unique feature code."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def make_client(db_url: str, **overrides: Any) -> Iterator[TestClient]:
    """A TestClient on its own app with the given settings overrides (lifespan running)."""
    from api.app import create_app
    from tests.conftest import api_settings

    # review_required off: these tests exercise direct edits by editors; tests/api/test_submissions.py turns it on
    settings = api_settings(db_url, **{"anon_rate_per_s": 0, "review_required": False, **overrides})
    with TestClient(create_app(settings)) as c:
        yield c


def inner_square_wkt(conn: psycopg.Connection, district: str, half: float = 0.0006, dx: float = 0.0) -> str:
    """A small square (MultiPolygon WKT) well inside a district, around its inscribed-circle centre."""
    row = conn.execute(
        "SELECT ST_AsText(ST_Multi(ST_Envelope(ST_Expand(ST_Translate(c, %s, 0), %s)))) FROM "
        "(SELECT (ST_MaximumInscribedCircle(geom)).center AS c FROM renewal.districts WHERE code = %s) AS s",
        (dx, half, district),
    ).fetchone()
    assert row is not None, f"district {district} missing"
    return str(row[0])


def geojson_of(conn: psycopg.Connection, wkt: str, *, single: bool = False) -> dict[str, Any]:
    """The GeoJSON of a WKT (CRS84 = lon/lat) geometry, optionally its first part only."""
    expr = "ST_GeometryN(ST_GeomFromText(%s), 1)" if single else "ST_GeomFromText(%s)"
    row = conn.execute(f"SELECT ST_AsGeoJSON({expr}, 9)", (wkt,)).fetchone()
    assert row is not None
    return dict(json.loads(row[0]))


def point_in(conn: psycopg.Connection, district: str) -> tuple[float, float]:
    """A point well inside a district."""
    row = conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT (ST_MaximumInscribedCircle(geom)).center AS c "
        "FROM renewal.districts WHERE code = %s) AS s", (district,)).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def insert_feature(conn: psycopg.Connection, layer_id: str, district: str = YUHUA, **props: Any) -> int:
    """Insert a feature with SQL (as the owner) inside ``district``; return its id."""
    from layers.registry import get_registry

    layer = get_registry().get(layer_id)
    values: dict[str, Any] = {"code": unique(layer_id[:3].upper()), "name": "测试要素", "district_code": district,
                              **LAYER_PROPS.get(layer_id, {}), **props}
    if layer.geometry_type == "Point":
        x, y = point_in(conn, district)
        geom_sql, geom_args = "ST_SetSRID(ST_MakePoint(%s, %s), 4490)", [x, y]
    elif layer.geometry_type == "MultiLineString":
        x, y = point_in(conn, district)
        geom_sql = ("ST_Multi(ST_MakeLine(ST_SetSRID(ST_MakePoint(%s, %s), 4490), "
                    "ST_SetSRID(ST_MakePoint(%s, %s), 4490)))")
        geom_args = [x - 0.001, y, x + 0.001, y]
    else:
        geom_sql, geom_args = "ST_GeomFromText(%s, 4490)", [inner_square_wkt(conn, district)]
    cols = ", ".join(values)
    ph = ", ".join(["%s"] * len(values))
    with conn.transaction():
        conn.execute("SET LOCAL renewal.actor = 'fixture'")
        row = conn.execute(
            f"INSERT INTO renewal.{layer.table} ({cols}, geom) VALUES ({ph}, {geom_sql}) RETURNING id",  # noqa: S608
            [*values.values(), *geom_args],
        ).fetchone()
    assert row is not None
    return int(row[0])


def row_md5(conn: psycopg.Connection, table: str, fid: int) -> str | None:
    """md5 of a feature row (None if absent)."""
    row = conn.execute(f"SELECT md5(t::text) FROM renewal.{table} AS t WHERE id = %s", (fid,)).fetchone()  # noqa: S608
    return str(row[0]) if row else None


def table_md5(conn: psycopg.Connection, table: str) -> str:
    """md5 over a whole table in id order (proves that nothing changed)."""
    row = conn.execute(
        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM renewal.{table} AS t"  # noqa: S608
    ).fetchone()
    assert row is not None
    return str(row[0])


def audit_count(conn: psycopg.Connection, table: str | None = None, fid: int | None = None) -> int:
    """Audit records, optionally of one feature."""
    row = conn.execute(
        "SELECT count(*) FROM renewal.audit_log WHERE (%(t)s::text IS NULL OR layer = %(t)s) "
        "AND (%(f)s::bigint IS NULL OR feature_id = %(f)s)", {"t": table, "f": fid}).fetchone()
    assert row is not None
    return int(row[0])


def auth(keys: dict[str, str], role: str) -> dict[str, str]:
    """Headers authenticating as ``role`` (none for anonymous)."""
    return {} if role == "anonymous" else {"X-API-Key": keys[role]}
