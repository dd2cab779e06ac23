"""The API's database login: not a superuser, owning nothing, refused when it is a superuser.

The suite creates its databases as the server's superuser; the app fixtures log in as
``renewal_api`` (``tests.conftest.api_url``), as ``make run`` does.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.settings import API_LOGIN, Settings

_APP_CONNECTIONS = """
SELECT a.usename::text, r.rolsuper, a.application_name
FROM pg_stat_activity AS a JOIN pg_roles AS r ON r.rolname = a.usename
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.application_name LIKE 'renewal-api%'
"""


def test_every_connection_the_app_holds_is_least_privileged(client: TestClient, conn: psycopg.Connection) -> None:
    for path in ("/healthz", "/collections/old_compounds/items?limit=2", "/query/district-summary", "/progress"):
        assert client.get(path).status_code == 200, path
    rows = conn.execute(_APP_CONNECTIONS).fetchall()
    assert rows, "the app holds no connection to the database"
    assert {r[0] for r in rows} == {API_LOGIN}
    assert not any(r[1] for r in rows)

    async def ask() -> list[Any]:
        app: Any = client.app
        async with app.state.pool.connection() as c:
            cur = await c.execute("SELECT usesuper FROM pg_user WHERE usename = session_user")
            first = await cur.fetchone()
            await c.execute("RESET ROLE")  # what an injected statement could try
            cur = await c.execute("SELECT rolsuper, current_user::text, "
                                  "(SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner "
                                  " WHERE o.rolname = current_user) FROM pg_roles WHERE rolname = current_user")
            second = await cur.fetchone()
            await c.execute("SET ROLE renewal_app")
            return [first, second]

    first, second = client.portal.call(ask)
    assert first == (False,)
    assert second == (False, API_LOGIN, 0)  # still not a superuser after RESET ROLE, and owns nothing


def test_the_api_login_cannot_switch_off_history_or_audit(db_url: str) -> None:
    from tests.conftest import api_url

    with psycopg.connect(api_url(db_url), autocommit=True) as c:
        c.execute("SET renewal.audit_mode = 'off'")
        assert c.execute("SELECT renewal.bypass_allowed('renewal.audit_mode', 'off')").fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM renewal.audit_log")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("ALTER TABLE renewal.old_compounds DISABLE TRIGGER USER")


def test_a_superuser_login_is_refused_unless_allowed(db_url: str, demo_loaded: dict[str, int]) -> None:
    from api.app import create_app
    from api.db import SuperuserLoginError

    with pytest.raises(SuperuserLoginError, match="superuser"):
        with TestClient(create_app(Settings(database_url=db_url))):
            pass
    with TestClient(create_app(Settings(database_url=db_url, allow_superuser=True))) as c:
        body = c.get("/healthz").json()
        assert body["status"] == "ok"
        assert any("superuser" in w for w in body["warnings"])


def test_owner_url_defaults() -> None:
    s = Settings(database_url=f"postgresql://{API_LOGIN}@/renewal")
    assert s.owner_url == "postgresql:///renewal"
    assert s.sqlalchemy_url == "postgresql+psycopg:///renewal"
    assert Settings(database_url="postgresql://a:b@h:5432/x").owner_url == "postgresql://a:b@h:5432/x"
    assert Settings(database_url="postgresql:///x", owner_database_url="postgresql://o@/x").owner_url == \
        "postgresql://o@/x"
    assert Settings().database_url == f"postgresql://{API_LOGIN}@/renewal"
