"""Reading and writing through GDAL (pyogrio), with GDAL's errors turned into officer-readable ones."""

from __future__ import annotations

import io
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyogrio import errors as ogr_errors

from gis.crs import CrsRef
from gis.errors import InvalidInputError
from gis.io._common import (
    ObjArray,
    Source,
    SourceBatch,
    SourceStream,
    crs_from_wkt,
    geometry_array,
    linearized_note,
)

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
        try:
            df = pyogrio.read_dataframe(src, layer=layer, encoding=encoding, fid_as_index=False, use_arrow=use_arrow)
            curved, unreadable = 0, list[int]()
        except UNREADABLE_GEOMETRY:
            if not use_arrow:
                raise
            if isinstance(src, io.BytesIO):
                src.seek(0)
            df, curved, unreadable = _read_linear(src, layer, encoding)
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
    source = Source(
        frame=frame.reset_index(drop=True), geometry=geoms, crs=crs, format=fmt, layer=info.get("layer_name") or layer
    )
    if curved:
        source.notes.append(linearized_note(curved))
    source.row_errors.extend((row, UNREADABLE_MESSAGE) for row in unreadable)
    return source


UNREADABLE_GEOMETRY = (NotImplementedError, shapely.errors.GEOSException)
"""What shapely raises for WKB it cannot read: arcs (CircularString, CurvePolygon, MultiSurface ...), TIN, damage."""

UNREADABLE_MESSAGE = (
    "the geometry could not be read: it is damaged or of a type with no straight-edged equivalent "
    "(Triangle, TIN, PolyhedralSurface)"
)

_CURVED_WKB = {8, 9, 10, 11, 12, 13, 14}
"""ISO WKB base types that may hold arcs: CircularString, CompoundCurve, CurvePolygon, MultiCurve, MultiSurface,
Curve, Surface."""


def _wkb_base_type(blob: bytes | None) -> int | None:
    """The ISO base type of one WKB geometry (Z, M and EWKB flags stripped); None for no or a damaged geometry."""
    if not blob or len(blob) < 5 or blob[0] not in (0, 1):
        return None
    code = int.from_bytes(blob[1:5], "little" if blob[0] == 1 else "big")
    return (code & 0x0FFFFFFF) % 1000


def _arc_rows(blobs: Sequence[bytes | None], linear: ObjArray) -> tuple[int, list[int]]:
    """How many of ``blobs`` are of curve types, and the rows GDAL's straight-edged reading left without a geometry."""
    types = [_wkb_base_type(b) for b in blobs]
    curved = sum(1 for t in types if t in _CURVED_WKB)
    unreadable = [i for i, b in enumerate(blobs) if b is not None and shapely.is_missing(linear[i])]
    return curved, unreadable


def _read_linear(
    src: str | Path | io.BytesIO, layer: str | None, encoding: str | None
) -> tuple[Any, int, list[int]]:
    """A layer with arcs, read as GDAL approximates arcs with straight segments; with the counts of curved and bad rows.

    GDAL's row-by-row read (not its Arrow read) turns each arc into straight segments (4° of arc
    each, as ``ogr2ogr -nlt CONVERT_TO_LINEAR`` and QGIS draw them); shapely, and so the toolkit,
    knows only straight edges. A row it still cannot read (a TIN, a damaged blob) has no geometry.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        df = pyogrio.read_dataframe(
            src, layer=layer, encoding=encoding, fid_as_index=False, use_arrow=False, on_invalid="ignore"
        )
        if isinstance(src, io.BytesIO):
            src.seek(0)
        meta, table = pyogrio.read_arrow(src, layer=layer, encoding=encoding, columns=[])
    name = meta.get("geometry_name") or "wkb_geometry"
    blobs = table.column(name).to_pylist() if name in table.column_names else [None] * len(df)
    curved, unreadable = _arc_rows(blobs, geometry_array(df.geometry.array))
    return df, curved, unreadable


def _read_linear_rows(src: Path, layer: str, start: int, count: int) -> ObjArray:
    """Rows ``start`` to ``start + count`` of a layer, arcs as straight segments (see :func:`_read_linear`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wkb = pyogrio.raw.read(src, layer=layer, columns=[], skip_features=start, max_features=count)[2]
    return geometry_array(shapely.from_wkb(wkb, on_invalid="ignore"))


def linear_from_wkt(cells: Sequence[str]) -> ObjArray:
    """WKT cells with arcs (``CURVEPOLYGON(CIRCULARSTRING(...))`` ...) as GDAL approximates them with straight segments.

    shapely reads no arcs; GDAL's CSV reader reads the cells and its row-by-row read straightens
    them (:func:`_read_linear`). A cell it cannot read, or that has no straight-edged equivalent,
    is None.
    """
    if not cells:
        return np.empty(0, dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cells.csv"
        path.write_text("WKT\n" + "".join('"' + c.replace('"', '""') + '"\n' for c in cells), encoding="utf-8")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                wkb = pyogrio.raw.read(path, columns=[])[2]
        except OGR_ERRORS:  # GDAL could not read them either: each is reported as a cell that is not WKT
            return np.full(len(cells), None, dtype=object)
    if len(wkb) != len(cells):  # a cell GDAL split or dropped: none of them can be trusted to its row
        return np.full(len(cells), None, dtype=object)
    return geometry_array(shapely.from_wkb(wkb, on_invalid="ignore"))


def ogr_stream(src: Path, *, fmt: str, what: str, layer: str, batch_rows: int) -> SourceStream | None:
    """One layer of a GDAL-readable file as a stream of Arrow batches of ``batch_rows`` rows.

    Each batch becomes what :func:`ogr_read` with ``use_arrow`` makes of the whole layer (the
    same Arrow-to-pandas conversion, geometries from the same WKB), so peak memory is one batch,
    not the file. None for a layer with date-time or JSON fields, whose text pyogrio parses
    after reading the whole layer: read those whole with :func:`ogr_read`. A batch with arcs is
    read again by GDAL's row-by-row read, which straightens them (:func:`_read_linear_rows`).
    """
    try:
        info = pyogrio.read_info(src, layer=layer, force_feature_count=True)
    except OGR_ERRORS as exc:
        raise InvalidInputError(f"GDAL cannot read {what}: {_short(exc)}") from exc
    dtypes = [str(d) for d in info["dtypes"]]
    subtypes = list(info.get("ogr_subtypes") or [])
    total = int(info.get("features") or -1)
    if total < 0 or "OFSTJSON" in subtypes or any(d.startswith("datetime") and d != "datetime64[D]" for d in dtypes):
        return None
    crs = crs_from_wkt(info.get("crs"), what)
    row_errors: list[tuple[int, str]] = []  # rows found unreadable while the batches are read

    def batches() -> Iterator[SourceBatch]:
        start = 0
        try:
            with pyogrio.open_arrow(
                src, layer=layer, batch_size=batch_rows, use_pyarrow=True, datetime_as_string=True
            ) as (meta, reader):
                geometry_name = meta["geometry_name"] or "wkb_geometry"
                for batch in reader:
                    table = pa.Table.from_batches([batch])
                    wkb = None
                    curved = 0
                    if geometry_name in table.column_names:
                        wkb = table.column(geometry_name).combine_chunks()
                        try:
                            geoms = geometry_array(shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)))
                        except UNREADABLE_GEOMETRY:  # arcs: these rows again, as GDAL straightens them
                            geoms = _read_linear_rows(src, layer, start, table.num_rows)
                            curved, unreadable = _arc_rows(wkb.to_pylist(), geoms)
                            row_errors.extend((start + row, UNREADABLE_MESSAGE) for row in unreadable)
                            wkb = None
                        table = table.drop_columns([geometry_name])
                    else:
                        geoms = np.full(table.num_rows, None)
                    frame = table.to_pandas(self_destruct=True)
                    del table
                    yield SourceBatch(frame=frame, geometry=geoms, start=start, wkb=wkb, linearized=curved)
                    start += len(geoms)
        except OGR_ERRORS as exc:
            raise InvalidInputError(f"GDAL cannot read {what}: {_short(exc)}") from exc
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"The text of {what} is not valid UTF-8.") from exc

    return SourceStream(
        columns=[str(c) for c in info["fields"]],
        total=total,
        batches=batches,
        crs=crs,
        format=fmt,
        layer=info.get("layer_name") or layer,
        row_errors=row_errors,
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


def ogr_write_arrow(
    stream: Any,
    crs: CrsRef,
    path: Path,
    *,
    driver: str,
    layer: str,
    geometry_column: str,
    geometry_type: str | None = None,
    **options: Any,
) -> Path:
    """Write an Arrow stream (anything with ``__arrow_c_stream__``) with GDAL's columnar path.

    ``geometry_column`` holds WKB; ``geometry_type`` is the declared type (None: Unknown). The
    stream is read batch by batch while GDAL writes, so memory stays at a few batches whatever the
    feature count.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        pyogrio.write_arrow(
            stream, path, layer=layer, driver=driver, geometry_name=geometry_column,
            geometry_type=geometry_type or "Unknown", crs=ogr_crs(crs), **options,
        )
    return path
