"""GeoJSON file (CRS84 unless another CRS is asked for), written from Arrow batches as they arrive."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gis.crs import CRS84
from gis.io.geojson import write_geojson
from layers.export.base import GEOMETRY_COLUMN, BatchJob, Writer


def write_batches(job: BatchJob, out: Path) -> None:
    """Write the FeatureCollection as the batches arrive."""
    write_geojson(
        pa.RecordBatchReader.from_batches(job.schema, job.batches), job.crs, out,
        layer=job.stem, geometry_column=GEOMETRY_COLUMN, geometry_type=job.layer.geometry_type,
    )


WRITER = Writer("geojson", (".geojson", ".json"), "application/geo+json", "GeoJSON", write_batches=write_batches,
                default_crs=CRS84)
