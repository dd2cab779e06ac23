"""What an export writer is: a format's name, file extension, media type, rules and its write function.

Each format module (:mod:`.gpkg`, :mod:`.shp`, ...) defines one :class:`Writer`; the registry in
:mod:`layers.export` lists them. The shared table building (:func:`frame_of`, :func:`ledger`,
:func:`arrow_schema`, :func:`record_batch`) is here so writers stay a few lines each.

A writer takes either a whole table (``write``: a pandas frame and shapely geometries, for formats
written in one piece: a zipped Shapefile, an Excel workbook, KML) or a stream of Arrow record
batches (``write_batches``: GDAL's columnar path for GeoPackage and GeoJSON, a ledger per batch for
CSV), so a million features never sit in memory whole. :func:`frame_of_batch` is the one conversion
of rows to a pandas table, whichever way they come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from gis.crs import STORAGE, CrsRef, transform_geometry
from gis.errors import InvalidInputError
from gis.io.tabular import XLSX_CELL_LIMIT
from layers.models import Layer


@dataclass(frozen=True)
class ExportJob:
    """Everything a writer needs: the layer, the attribute table, the geometries (already in ``crs``)."""

    layer: Layer
    frame: pd.DataFrame
    geoms: np.ndarray
    crs: CrsRef
    encoding: str | None = None

    @property
    def stem(self) -> str:
        """File and layer name inside the file (the layer id)."""
        return self.layer.id


@dataclass(frozen=True)
class BatchJob:
    """What a streaming writer needs: the layer, the Arrow schema and the record batches (already in ``crs``).

    ``batches`` is read once, as the rows arrive from the database; each batch has the columns of
    :func:`arrow_schema` (the geometry as WKB in :data:`GEOMETRY_COLUMN`).
    """

    layer: Layer
    schema: pa.Schema
    batches: Iterable[pa.RecordBatch]
    crs: CrsRef
    encoding: str | None = None

    @property
    def stem(self) -> str:
        """File and layer name inside the file (the layer id)."""
        return self.layer.id


@dataclass(frozen=True)
class Writer:
    """One export format and the function that writes it.

    ``extensions``: the first is the file extension written, all are recognised in output file
    names. ``default_crs``: the CRS when none is asked for (None: CGCS2000, the storage CRS).
    ``geographic_only``: the format is always longitude/latitude (KML). ``takes_encoding``:
    ``--encoding`` applies (Shapefile DBF, CSV). ``write_batches``: the format is written from
    Arrow record batches (:class:`BatchJob`) instead of ``write``'s frame; exactly one of the two is given.
    """

    name: str
    extensions: tuple[str, ...]
    media_type: str
    label: str
    write: Callable[[ExportJob, Path], None] | None = None
    default_crs: CrsRef | None = None
    geographic_only: bool = False
    takes_encoding: bool = False
    write_batches: Callable[[BatchJob, Path], None] | None = None

    def __post_init__(self) -> None:
        if (self.write is None) == (self.write_batches is None):
            raise ValueError(f"Writer {self.name!r} needs exactly one of write and write_batches.")

    @property
    def extension(self) -> str:
        """The extension of the files this writer makes."""
        return self.extensions[0]


def export_columns(layer: Layer) -> list[str]:
    """Columns written to every format: code, name, district, status, fields (computed ones included)."""
    cols = ["code", "name", "district_code"]
    if layer.has_status:
        cols.append("status")
    return cols + [f.name for f in layer.fields]


GEOMETRY_COLUMN: Final = "geom"
"""The geometry column of :func:`arrow_schema` batches (WKB), and so of the written layer."""

ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "text": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}
"""Arrow type of each registry field type (integers as int64, as the frame's ``Int64`` was written)."""


def arrow_schema(layer: Layer) -> pa.Schema:
    """The columns of :func:`export_columns` in registry types, then the geometry as WKB."""
    types = {f.name: ARROW_TYPES[f.type] for f in layer.fields}
    columns = [pa.field(c, types.get(c, pa.string())) for c in export_columns(layer)]
    return pa.schema([*columns, pa.field(GEOMETRY_COLUMN, pa.binary())])


def record_batch(schema: pa.Schema, rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """One Arrow record batch of rows from :func:`layers.export.select_sql` (fetched in binary, WKB last).

    Column by column in Arrow's C code: no pandas frame, no shapely objects.
    """
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=t) for col, t in zip(columns, schema.types, strict=True)], schema=schema
    )


def shifted(batch: pa.RecordBatch, crs: CrsRef) -> pa.RecordBatch:
    """``batch`` with its EPSG:4490 geometry moved to GCJ-02/BD-09, which PostGIS cannot compute."""
    i = batch.schema.get_field_index(GEOMETRY_COLUMN)
    geoms = shapely.from_wkb(batch.column(i).to_numpy(zero_copy_only=False))
    moved = transform_geometry(geoms, STORAGE, crs) if len(geoms) else geoms
    return batch.set_column(i, batch.schema.field(i), pa.array(shapely.to_wkb(moved), type=pa.binary()))


def frame_of(layer: Layer, rows: Sequence[Sequence[Any]]) -> tuple[pd.DataFrame, np.ndarray]:
    """The attribute table (registry types) and the geometries of rows from :func:`layers.export.select_sql`."""
    return frame_of_batch(record_batch(arrow_schema(layer), rows))


def frame_of_batch(batch: pa.RecordBatch) -> tuple[pd.DataFrame, np.ndarray]:
    """The attribute table and geometries of an :func:`arrow_schema` batch: the one conversion to pandas.

    Integers become nullable ``Int64`` (a missing year stays empty, not ``2019.0``), numbers
    ``float64``, text and dates Python objects; the WKB column becomes shapely geometries.
    """
    i = batch.schema.get_field_index(GEOMETRY_COLUMN)
    frame = batch.drop_columns([GEOMETRY_COLUMN]).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    wkb = batch.column(i).to_numpy(zero_copy_only=False)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.empty(0, dtype=object)
    return frame, np.asarray(geoms, dtype=object)


def ledger(job: ExportJob, *, cell_limit: int | None = None) -> pd.DataFrame:
    """The table of a CSV/XLSX ledger: Chinese headers, status label, areas in mu, geometry as lon/lat or WKT.

    ``cell_limit``: the longest text a cell may hold (Excel's 32,767); WKT is rounded to 8
    decimals to fit, and a geometry still too long is a 400 pointing to a GIS format.
    """
    layer, frame, geoms = job.layer, job.frame, job.geoms
    out = frame.copy()
    if layer.lifecycle is not None and "status" in out:
        labels = {s.code: s.label for s in layer.lifecycle.statuses}
        out["status"] = out["status"].map(lambda c: labels.get(c, c))
    for name in ("area_mu", "length_m"):
        if name in out:
            out[name] = out[name].round(2)
    if layer.geometry_type == "Point":
        xy = shapely.get_coordinates(geoms) if len(geoms) else np.empty((0, 2))
        out["经度"] = xy[:, 0]
        out["纬度"] = xy[:, 1]
    else:
        wkt = shapely.to_wkt(geoms, rounding_precision=-1, trim=True) if len(geoms) else []
        if cell_limit is not None and len(geoms) and max(len(w) for w in wkt) > cell_limit:
            wkt = shapely.to_wkt(geoms, rounding_precision=8, trim=True)
            if max(len(w) for w in wkt) > cell_limit:
                raise InvalidInputError(
                    f"Some {layer.title} geometries have too many vertices for an Excel cell (32,767 characters). "
                    "Export to GeoPackage or Shapefile instead."
                )
        out["WKT"] = list(wkt)
    labels = layer.labels
    out.columns = pd.Index([labels.get(c, c) for c in out.columns])
    return out


__all__ = [
    "GEOMETRY_COLUMN",
    "XLSX_CELL_LIMIT",
    "BatchJob",
    "ExportJob",
    "Writer",
    "arrow_schema",
    "export_columns",
    "frame_of",
    "frame_of_batch",
    "ledger",
    "record_batch",
    "shifted",
]
