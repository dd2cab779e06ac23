"""File readers and writers, split by format (as geopandas splits ``io/``).

Public API
----------
read_source(path, *, layer_name=None, encoding=None, prefer=()) -> Source
    Read any supported input (format from the extension): Shapefile (``.shp`` or ``.zip``),
    GeoPackage, GeoJSON (FeatureCollection, Feature, bare array), KML or KMZ, CSV, XLSX.
stream_source(path, *, layer_name=None, encoding=None, prefer=(), batch_rows=100_000) -> SourceStream
    The same, batch by batch: a GeoPackage is read in Arrow batches; other formats in one batch.

The writers (``write_shapefile_zip``, ...) are plain functions of a table and geometries
(``write_geopackage`` takes an Arrow stream with WKB geometry, so a large export streams); which
formats the toolkit exports, with their names, extensions and media types, is the registry of
:mod:`layers.export` (one module per format).
"""

from __future__ import annotations

from pathlib import Path

from gis.errors import InvalidInputError
from gis.io._common import Source, SourceBatch, SourceInfo, SourceStream, linearized_note
from gis.io.geojson import read_geojson
from gis.io.geopackage import read_geopackage, stream_geopackage
from gis.io.kml import read_kml
from gis.io.shapefile import read_shapefile
from gis.io.tabular import read_csv, read_xlsx

__all__ = [
    "Source",
    "SourceBatch",
    "SourceInfo",
    "SourceStream",
    "input_format",
    "linearized_note",
    "read_source",
    "stream_source",
]

INPUT_SUFFIXES: dict[str, str] = {
    ".shp": "shp",
    ".zip": "shp",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".kml": "kml",
    ".kmz": "kml",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}


def input_format(path: Path) -> str:
    """The input format of a file from its extension (a folder is read as shapefiles)."""
    if path.is_dir():
        return "shp"
    fmt = INPUT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"'{path.name}': unsupported file type '{path.suffix}'. Supported: Shapefile (.shp or .zip), "
            "GeoPackage (.gpkg), GeoJSON (.geojson/.json), KML (.kml/.kmz), CSV (.csv), Excel (.xlsx)."
        )
    return fmt


def read_source(
    path: Path, *, layer_name: str | None = None, encoding: str | None = None, prefer: tuple[str, ...] = ()
) -> Source:
    """Read an input file of any supported format into a :class:`Source`.

    Parameters
    ----------
    path
        The file (or a folder of shapefiles).
    layer_name
        GeoPackage layer, KML folder, shapefile in a zip, or Excel sheet.
    encoding
        Attribute text encoding for shapefiles and CSV (detected when not given).
    prefer
        Layer names to pick in a multi-layer GeoPackage when ``layer_name`` is not given.
    """
    fmt = input_format(path)
    if fmt == "shp":
        return read_shapefile(path, layer=layer_name, encoding=encoding)
    if fmt == "gpkg":
        return read_geopackage(path, layer=layer_name, prefer=prefer)
    if fmt == "geojson":
        return read_geojson(path)
    if fmt == "kml":
        return read_kml(path, layer=layer_name)
    if fmt == "csv":
        return read_csv(path, encoding=encoding)
    return read_xlsx(path, sheet=layer_name)


def stream_source(
    path: Path,
    *,
    layer_name: str | None = None,
    encoding: str | None = None,
    prefer: tuple[str, ...] = (),
    batch_rows: int = 100_000,
) -> SourceStream:
    """:func:`read_source` batch by batch, so a large file is never in memory whole.

    The one place that decides how a file is read: a GeoPackage (the format of large files) in
    Arrow batches of ``batch_rows`` rows; every other format whole, as one batch.
    """
    if input_format(path) == "gpkg":
        return stream_geopackage(path, layer=layer_name, prefer=prefer, batch_rows=batch_rows)
    return read_source(path, layer_name=layer_name, encoding=encoding, prefer=prefer).as_stream()
