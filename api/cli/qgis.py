"""``renewal qgis-project -o FILE``: write the QGIS project (OGC API or direct PostGIS connections)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layers.qgis_project import project_qgs
from layers.registry import get_registry


def register(app: typer.Typer) -> None:
    """Add ``qgis-project``."""

    @app.command("qgis-project")
    def qgis_project(
        output: Annotated[Path, typer.Option("-o", "--output", help="The .qgs file to write")],
        url: Annotated[str, typer.Option(help="The service's public URL (the layers read its OGC API)")] = (
            "http://127.0.0.1:8000"),
        postgis: Annotated[str | None, typer.Option(
            help="Connect the layers to PostGIS directly with this libpq string, e.g. \"dbname='renewal' host=db\"",
        )] = None,
    ) -> None:
        """Write a QGIS project with every layer, grouped as in the viewer, styled by status, in CGCS2000."""
        from api.cli import console

        output.write_text(project_qgs(list(get_registry()), service_url=url, postgis=postgis), encoding="utf-8")
        console.print(f"wrote {output} ({'PostGIS' if postgis else 'OGC API ' + url})")
