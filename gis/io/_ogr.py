"""Reading and writing through GDAL (pyogrio), with GDAL's errors turned into officer-readable ones."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio import errors as ogr_errors

from gis.crs import CrsRef
from gis.errors import InvalidInputError
from gis.io._common import ObjArray, Source, crs_from_wkt, geometry_array

OGR_ERRORS = (
    ogr_errors.DataSourceError,
    ogr_errors.DataLayerError,
    ogr_errors.FieldError,
    ogr_errors.GeometryError,
    ogr_errors.CRSError,
    ogr_errors.FeatureError,
)


def ogr_read(
    src: str | Path | io.BytesIO,
    *,
    fmt: str,
    what: str,
    layer: str | None = None,
    encoding: str | None = None,
    use_arrow: bool = False,
) -> Source:
    """Read one layer of a GDAL-readable dataset into a :class:`Source`.

    ``use_arrow`` reads through GDAL's columnar (Arrow) interface, about three times faster on a
    large GeoPackage; used where the driver's Arrow path is exercised by the tests (GeoPackage).
    """
    try:
        info = pyogrio.read_info(src, layer=layer, encoding=encoding)
        if isinstance(src, io.BytesIO):
            src.seek(0)
        df = pyogrio.read_dataframe(src, layer=layer, encoding=encoding, fid_as_index=False, use_arrow=use_arrow)
    except OGR_ERRORS as exc:
        raise InvalidInputError(f"GDAL cannot read {what}: {_short(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"The column names or text of {what} are not valid {encoding or 'UTF-8'}. In a shapefile a column name "
            "holds at most 10 bytes, so UTF-8 Chinese names longer than 3 characters are cut mid-character: save it "
            "in GBK (--encoding GBK) or as a GeoPackage."
        ) from exc
    crs = crs_from_wkt(info.get("crs"), what)
    geoms = geometry_array(df.geometry.array) if isinstance(df, gpd.GeoDataFrame) else np.full(len(df), None)
    frame = pd.DataFrame(df.drop(columns=df.geometry.name)) if isinstance(df, gpd.GeoDataFrame) else df
    return Source(
        frame=frame.reset_index(drop=True), geometry=geoms, crs=crs, format=fmt, layer=info.get("layer_name") or layer
    )


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def ogr_crs(crs: CrsRef) -> str | None:
    """The CRS to label a GDAL output with; None for GCJ-02/BD-09, which no GIS software knows."""
    if crs.kind == "crs84":
        return "OGC:CRS84"
    if crs.kind == "epsg":
        return f"EPSG:{crs.epsg}"
    return None


def ogr_write(
    frame: pd.DataFrame,
    geometry: ObjArray,
    crs: CrsRef,
    path: Path,
    *,
    driver: str,
    layer: str | None = None,
    encoding: str | None = None,
    geometry_type: str | None = None,
    **options: Any,
) -> Path:
    """Write features with GDAL; ``geometry_type`` forces the declared type (e.g. MultiPolygon)."""
    gdf = gpd.GeoDataFrame(
        frame.reset_index(drop=True),
        geometry=gpd.GeoSeries(shapely.from_wkb(shapely.to_wkb(geometry)) if len(geometry) else []),
        crs=ogr_crs(crs),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Normalized/laundered field name")
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        pyogrio.write_dataframe(
            gdf, path, layer=layer, driver=driver, encoding=encoding, geometry_type=geometry_type, **options
        )
    return path
