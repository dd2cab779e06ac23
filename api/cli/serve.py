"""``renewal serve``: run the API, viewer and maps with uvicorn."""

from __future__ import annotations

import typer

from api.settings import Settings


def serve(
    host: str = typer.Option(None, help="Bind address (default from RENEWAL_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default from RENEWAL_PORT, 8000)"),
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Serve the app."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root CLI."""
    app.command("serve")(serve)
