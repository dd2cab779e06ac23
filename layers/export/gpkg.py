"""GeoPackage: one table named after the layer, in the export CRS, with the layer's geometry type.

Written from Arrow record batches (GDAL's columnar path), so ``renewal export`` of a million
parcels streams from the database into the file as fast as ogr2ogr, in flat memory.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gis.io.geopackage import write_geopackage
from layers.export.base import GEOMETRY_COLUMN, BatchJob, Writer


def write_batches(job: BatchJob, out: Path) -> None:
    """Write the GeoPackage as the batches arrive."""
    write_geopackage(
        pa.RecordBatchReader.from_batches(job.schema, job.batches), job.crs, out,
        layer=job.stem, geometry_column=GEOMETRY_COLUMN, geometry_type=job.layer.geometry_type,
    )


WRITER = Writer("gpkg", (".gpkg",), "application/geopackage+sqlite3", "GeoPackage", write_batches=write_batches)
