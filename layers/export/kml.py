"""KML for Google Earth and phones: always longitude/latitude (CRS84, EPSG:4490 or GCJ-02)."""

from __future__ import annotations

from pathlib import Path

from gis.crs import CRS84
from gis.io.kml import write_kml
from layers.export.base import ExportJob, Writer


def write(job: ExportJob, out: Path) -> None:
    """Write the KML document."""
    write_kml(job.frame, job.geoms, job.crs, out, layer=job.stem)


WRITER = Writer("kml", (".kml",), "application/vnd.google-earth.kml+xml", "KML", write, default_crs=CRS84,
                geographic_only=True)
