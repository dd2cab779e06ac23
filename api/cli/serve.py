"""``renewal serve``: run the API, viewer and maps with uvicorn, one worker process per core.

Several workers are safe because nothing a worker keeps in memory can go stale unseen: layer
versions (and so tile-cache keys, ETags and collection extents) follow the database through
LISTEN/NOTIFY (:mod:`api.versions`), and a client that has just written carries the WAL
position of its write (:mod:`api.consistency`) so any worker serves its next read fresh.
"""

from __future__ import annotations

import os
from typing import Any

import typer

from api.settings import Settings


def default_workers(settings: Settings) -> int:
    """``RENEWAL_WORKERS`` when set, else one worker per CPU core available to this process."""
    if settings.workers:
        return settings.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def serve(
    host: str = typer.Option(None, help="Bind address (default from RENEWAL_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default from RENEWAL_PORT, 8000)"),
    workers: int = typer.Option(None, min=1, help="Worker processes (default RENEWAL_WORKERS, else one per core)"),
) -> None:
    """Serve the app."""
    import uvicorn

    from api.cli.supervisor import run_workers

    settings = Settings()
    n = workers or default_workers(settings)
    typer.echo(f"serving on http://{host or settings.host}:{port or settings.port} with {n} worker process(es)")
    config: dict[str, Any] = {"app": "api.app:create_app", "factory": True, "host": host or settings.host,
              "port": port or settings.port, "log_level": settings.log_level}
    if n == 1:
        uvicorn.run(**config)
    else:
        run_workers(n, config)  # one socket per worker (SO_REUSEPORT), so keep-alive clients use every core


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root CLI."""
    app.command("serve")(serve)
