"""Zipped Shapefile with ``.cpg`` (UTF-8, or GBK for old desktop software via ``--encoding``)."""

from __future__ import annotations

from pathlib import Path

from gis.io.shapefile import write_shapefile_zip
from layers.export.base import ExportJob, Writer


def write(job: ExportJob, out: Path) -> None:
    """Write the .shp/.shx/.dbf/.prj/.cpg set into one zip."""
    write_shapefile_zip(job.frame, job.geoms, job.crs, out, stem=job.stem, encoding=job.encoding or "UTF-8",
                        geometry_type=job.layer.geometry_type)


WRITER = Writer("shp", (".zip", ".shp"), "application/zip", "Shapefile (zipped)", write, takes_encoding=True)
