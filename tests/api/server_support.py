"""Real API servers for the multi-worker, multi-instance and replica tests.

``serve(url, workers=2)`` runs ``renewal serve --workers N`` (uvicorn's supervisor with N worker
processes sharing one socket), exactly as ``make run`` does, and stops it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import ARTIFACTS, ROOT, api_url, free_port, stop_group


class Server:
    """A running ``renewal serve`` process group."""

    def __init__(self, url: str, port: int, proc: subprocess.Popen[bytes], log: Any) -> None:
        self.url = url
        self.port = port
        self.proc = proc
        self._log = log

    def workers_seen(self, tries: int = 60) -> set[int]:
        """Worker pids answering /healthz over fresh connections (each may land on any worker)."""
        pids: set[int] = set()
        for _ in range(tries):
            pids.add(int(httpx.get(self.url + "/healthz", timeout=10).json()["worker"]))
        return pids

    def stop(self) -> None:
        """Stop the supervisor and its workers (the process group this test started)."""
        stop_group(self.proc)
        self._log.close()


@contextmanager
def serve(database_url: str, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``renewal serve --workers N`` on a free port until every worker listens for version changes."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed by Server.stop
    # the app logs in as its least-privileged login; the owner URL serves the owner's paths
    full_env = {**os.environ, "DATABASE_URL": api_url(database_url), "RENEWAL_OWNER_DATABASE_URL": database_url,
                "RENEWAL_LOG_LEVEL": "warning", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(ARTIFACTS / f'serve-{port}.log').read_text()}")
            try:
                body = httpx.get(server.url + "/healthz", timeout=5).json()
                if body.get("layer_versions", {}).get("listening"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become healthy")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
