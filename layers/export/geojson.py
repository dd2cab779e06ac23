"""GeoJSON file (CRS84 unless another CRS is asked for)."""

from __future__ import annotations

from pathlib import Path

from gis.crs import CRS84
from gis.io.geojson import write_geojson
from layers.export.base import ExportJob, Writer


def write(job: ExportJob, out: Path) -> None:
    """Write the FeatureCollection."""
    write_geojson(job.frame, job.geoms, job.crs, out, layer=job.stem)


WRITER = Writer("geojson", (".geojson", ".json"), "application/geo+json", "GeoJSON", write, default_crs=CRS84)
