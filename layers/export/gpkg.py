"""GeoPackage: one table named after the layer, in the export CRS, with the layer's geometry type."""

from __future__ import annotations

from pathlib import Path

from gis.io.geopackage import write_geopackage
from layers.export.base import ExportJob, Writer


def write(job: ExportJob, out: Path) -> None:
    """Write the GeoPackage."""
    write_geopackage(job.frame, job.geoms, job.crs, out, layer=job.stem, geometry_type=job.layer.geometry_type)


WRITER = Writer("gpkg", (".gpkg",), "application/geopackage+sqlite3", "GeoPackage", write)
