"""File readers and writers, split by format (as geopandas splits ``io/``).

Public API
----------
read_source(path, *, layer_name=None, encoding=None, prefer=()) -> Source
    Read any supported input (format from the extension): Shapefile (``.shp`` or ``.zip``),
    GeoPackage, GeoJSON (FeatureCollection, Feature, bare array), KML, CSV, XLSX.
EXPORT_FORMATS
    Output formats by short name (``gpkg shp geojson csv xlsx kml``): extension and media type.
export_format(name_or_path) -> ExportFormat
    The output format for a short name or a file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gis.errors import InvalidInputError
from gis.io._common import Source
from gis.io.geojson import read_geojson
from gis.io.geopackage import read_geopackage
from gis.io.kml import read_kml
from gis.io.shapefile import read_shapefile
from gis.io.tabular import read_csv, read_xlsx

__all__ = ["EXPORT_FORMATS", "ExportFormat", "Source", "export_format", "input_format", "read_source"]

INPUT_SUFFIXES: dict[str, str] = {
    ".shp": "shp",
    ".zip": "shp",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".kml": "kml",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}


@dataclass(frozen=True)
class ExportFormat:
    """An output format: short name, file extension, media type, and whether it carries a CRS."""

    name: str
    extension: str
    media_type: str
    label: str


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("gpkg", ".gpkg", "application/geopackage+sqlite3", "GeoPackage"),
        ExportFormat("shp", ".zip", "application/zip", "Shapefile (zipped)"),
        ExportFormat("geojson", ".geojson", "application/geo+json", "GeoJSON"),
        ExportFormat("csv", ".csv", "text/csv; charset=utf-8", "CSV"),
        ExportFormat("xlsx", ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel"),
        ExportFormat("kml", ".kml", "application/vnd.google-earth.kml+xml", "KML"),
    )
}
_EXPORT_SUFFIXES = {
    ".gpkg": "gpkg",
    ".zip": "shp",
    ".shp": "shp",
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".kml": "kml",
}


def input_format(path: Path) -> str:
    """The input format of a file from its extension (a folder is read as shapefiles)."""
    if path.is_dir():
        return "shp"
    fmt = INPUT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"'{path.name}': unsupported file type '{path.suffix}'. Supported: Shapefile (.shp or .zip), "
            "GeoPackage (.gpkg), GeoJSON (.geojson/.json), KML (.kml), CSV (.csv), Excel (.xlsx)."
        )
    return fmt


def export_format(name_or_path: str) -> ExportFormat:
    """The export format for ``gpkg``/``shp``/... or for an output file name."""
    key = name_or_path.lower().lstrip(".")
    if key in EXPORT_FORMATS:
        return EXPORT_FORMATS[key]
    suffix = Path(name_or_path).suffix.lower()
    if suffix in _EXPORT_SUFFIXES:
        return EXPORT_FORMATS[_EXPORT_SUFFIXES[suffix]]
    raise InvalidInputError(
        f"Cannot export to '{name_or_path}': use one of {', '.join(EXPORT_FORMATS)} "
        "(.gpkg, .zip for a zipped shapefile, .geojson, .csv, .xlsx, .kml)."
    )


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
