"""Session fixtures: a fresh PostGIS database, migrated and loaded once, and a live server.

The database is created on the server of ``DATABASE_URL`` (default: the local socket)
with a unique name, migrated with ``alembic upgrade heads``, and dropped at the end.
Skips are allowed locally only: with ``CI=true`` a skipped test is reported as failed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE_DISTRICTS = SHARED / "reference" / "shijiazhuang_districts_datav_gcj02.json"
PLAN_TEXT_FILE = SHARED / "seed" / "shijiazhuang_implementation_plan_zh.txt"
ARTIFACTS = ROOT / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Anonymous rate limiting off for the suite (also inherited by live servers); tests/api/test_auth*.py
# turns it on where it is the subject.
os.environ.setdefault("RENEWAL_ANON_RATE_PER_S", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """In CI a skipped test is a failure: nothing the suite needs may be missing there."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {reason}"


def shared_file(path: Path) -> Path:
    """A file from ``../shared/`` (plan text, reference data), or a skip that names it.

    A user's clone has no ``../shared/``: the few tests that read it skip with this message
    (and in CI, where it must be present, the skip is a failure like any other).
    """
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared/ directory), which is absent in this clone")
    return path


@pytest.fixture
def reference_districts() -> Path:
    """The real DataV district boundaries (GCJ-02), skipping when ../shared/ is absent."""
    return shared_file(REFERENCE_DISTRICTS)


@pytest.fixture(scope="session")
def plan_text() -> str:
    """The plan's Chinese text, skipping when ../shared/ is absent."""
    return shared_file(PLAN_TEXT_FILE).read_text(encoding="utf-8")


def base_url() -> str:
    """The server to create test databases on."""
    return os.environ.get("DATABASE_URL") or "postgresql:///postgres"


def url_for_db(name: str) -> str:
    """The base URL with another database name (a URL stays a URL, for every client)."""
    base = base_url()
    if "://" in base:
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")
    params = conninfo_to_dict(base)
    params["dbname"] = name
    return make_conninfo("", **params)  # type: ignore[arg-type]


def _maintenance_url() -> str:
    return url_for_db("postgres")


def api_url(url: str) -> str:
    """The same database reached as the API's least-privileged login (``renewal_api``, migration 0014).

    The suite creates databases as the server's superuser; the app under test must not run as one,
    so every app fixture connects through this URL. With password authentication the role gets the
    base URL's password (harmless on a test server; roles are cluster-wide).
    """
    from api.settings import API_LOGIN, with_user

    password = conninfo_to_dict(url).get("password")
    if password:
        with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(API_LOGIN), psycopg.sql.Literal(password)))
    return with_user(url, API_LOGIN, str(password) if password else None)


def api_settings(db_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    """App settings on ``db_url`` logging in as the API's own login, with the owner URL for the owner paths."""
    from api.settings import Settings

    return Settings(database_url=api_url(db_url), owner_database_url=db_url, **overrides)  # type: ignore[arg-type]


def create_database(prefix: str = "renewal_test") -> str:
    """Create a fresh database with PostGIS; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL server reachable: {exc}")
    url = url_for_db(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_database(url: str) -> None:
    """Drop a database created by :func:`create_database`."""
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


@contextmanager
def scratch_demo_database(prefix: str) -> Iterator[str]:
    """A separate migrated database with the demo loaded, for tests that write to it."""
    from api.cli.db import upgrade
    from layers.demo import load_demo

    url = create_database(prefix)
    try:
        upgrade(url)
        load_demo(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """A fresh, migrated PostGIS database for the whole session."""
    from api.cli.db import upgrade

    url = create_database()
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def demo_loaded(db_url: str) -> dict[str, int]:
    """The synthetic demo city, loaded once into the session database."""
    from layers.demo import load_demo

    return load_demo(db_url)


@pytest.fixture()
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session database (autocommit)."""
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def app_settings(db_url: str):  # type: ignore[no-untyped-def]
    """Settings pointing at the session database."""
    return api_settings(db_url)


@pytest.fixture(scope="session")
def client(app_settings, demo_loaded):  # type: ignore[no-untyped-def]
    """An in-process TestClient with the lifespan running, on the demo data."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(app_settings)) as c:
        yield c


T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on its own thread: works even when an earlier test left this thread's loop marked running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LIVE_SERVER_WORKERS = 2
"""Worker processes of the live server: real clients (GDAL, OWSLib, QGIS's requests, browsers) run their
tile, items, paging and edit checks against several workers, as ``make run`` serves."""


class LiveServer:
    """A real ``renewal serve`` (several uvicorn workers) serving the app, for real clients (GDAL, browsers)."""

    def __init__(self, database_url: str, env: dict[str, str] | None = None,
                 workers: int = LIVE_SERVER_WORKERS) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"server-{self.port}.log"
        # the server logs in as the API's least-privileged login; the owner URL serves owner paths
        full_env = {**os.environ, "DATABASE_URL": api_url(database_url), "RENEWAL_OWNER_DATABASE_URL": database_url,
                    "RENEWAL_LOG_LEVEL": "warning", **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not become healthy: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Terminate the server: the supervisor and its workers."""
        stop_group(self.proc)
        self._log.close()


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in a session of its own: SIGTERM to its process group, SIGKILL after 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(db_url: str, demo_loaded: dict[str, int]) -> Iterator[LiveServer]:
    """A live HTTP server on the demo data."""
    server = LiveServer(db_url)
    try:
        yield server
    finally:
        server.stop()
