"""Export a layer (or the features matching a filter) to GIS files and ledgers.

Formats (:data:`gis.io.EXPORT_FORMATS`): GeoPackage, zipped Shapefile with ``.cpg`` (UTF-8, or GBK
for old desktop software), GeoJSON, CSV (UTF-8 with BOM, so Excel shows Chinese), XLSX
(Chinese headers from the registry labels, status as its Chinese label, areas in mu), KML.
Output CRS: any EPSG code PROJ knows, CRS84, or GCJ-02/BD-09 for overlays on Gaode/Baidu maps.

Everything an import reads back is written (code, name, district, status, attributes, the
computed area/length for reference), so export → import gives the same features.

Public API
----------
select_sql(layer, where=None, crs=STORAGE) -> sql.Composed
    The ``SELECT`` of the exported columns and the geometry as WKB, ``FROM <table> AS t WHERE <where>``.
build_file(layer, rows, fmt, crs, encoding=None) -> bytes
    Turn fetched rows into the file's bytes (runs GDAL/openpyxl; call it in a worker thread from async code).
export_features(conn, layer, fmt, *, where=None, params=None, crs=None, encoding=None) -> tuple[bytes, int]
    Both, on a synchronous connection; ``where`` is a condition on alias ``t`` (e.g. from
    :func:`layers.query.where_clause`) with its ``params``.
export_to_path(conninfo, layer_id, out, *, filter_text=None, crs=None, encoding=None) -> int
    The ``renewal export`` command: format from the file extension, CQL2 filter, feature count returned.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.crs import CRS84, STORAGE, CrsRef, parse_crs, transform_geometry
from gis.errors import CRSError, InvalidInputError
from gis.io import ExportFormat, export_format
from gis.io._ogr import ogr_write
from gis.io.geojson import write_geojson
from gis.io.geopackage import write_geopackage
from gis.io.kml import write_kml
from gis.io.shapefile import write_shapefile_zip
from gis.io.tabular import XLSX_CELL_LIMIT, write_csv, write_xlsx
from layers.models import Layer
from layers.registry import get_registry

GEOGRAPHIC_ONLY = ("kml",)
DEFAULT_CRS: dict[str, CrsRef] = {"geojson": CRS84, "kml": CRS84}
"""Output CRS when none is asked for; otherwise CGCS2000 (EPSG:4490), the storage CRS."""


def export_columns(layer: Layer) -> list[str]:
    """Columns written to every format: code, name, district, status, fields (computed ones included)."""
    cols = ["code", "name", "district_code"]
    if layer.has_status:
        cols.append("status")
    return cols + [f.name for f in layer.fields]


def _srid(crs: CrsRef) -> int:
    if crs.kind == "epsg":
        assert crs.epsg is not None
        return crs.epsg
    return 4326 if crs.kind == "crs84" else STORAGE.epsg or 4490


def select_sql(
    layer: Layer,
    where: sql.Composable | None = None,
    crs: CrsRef = STORAGE,
    order: sql.Composable | None = None,
    limit: int | None = None,
) -> sql.Composed:
    """``SELECT <columns>, ST_AsBinary(geom in crs) FROM <table> AS t [WHERE ...] ORDER BY ...``.

    GCJ-02/BD-09 cannot be computed by PostGIS; for them the geometry stays in EPSG:4490 and
    :func:`build_file` shifts it.
    """
    srid = _srid(crs)
    geom = (
        sql.SQL("t.geom")
        if srid in (4490, 4326) or crs.is_offset_datum
        else sql.SQL("ST_Transform(t.geom, {})").format(sql.Literal(srid))
    )
    cols = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in export_columns(layer))
    return sql.SQL("SELECT {}, ST_AsBinary({}) FROM {} AS t WHERE {} ORDER BY {}{}").format(
        cols,
        geom,
        sql.Identifier(layer.schema_name, layer.table),
        where if where is not None else sql.SQL("true"),
        order if order is not None else sql.SQL("t.id"),
        sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit is not None else sql.SQL(""),
    )


def _frame(layer: Layer, rows: Sequence[Sequence[Any]]) -> tuple[pd.DataFrame, np.ndarray]:
    cols = export_columns(layer)
    data = list(zip(*rows, strict=True)) if rows else [()] * (len(cols) + 1)
    frame = pd.DataFrame({c: pd.Series(list(data[i]), dtype=object) for i, c in enumerate(cols)})
    for f in layer.fields:
        if f.type == "integer":
            frame[f.name] = pd.array(frame[f.name].tolist(), dtype="Int64")
        elif f.type == "number":
            frame[f.name] = pd.to_numeric(frame[f.name], errors="coerce").astype("float64")
    wkb = np.asarray([bytes(b) if b is not None else None for b in data[len(cols)]], dtype=object)
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.empty(0, dtype=object)
    return frame, np.asarray(geoms, dtype=object)


def _ledger(layer: Layer, frame: pd.DataFrame, geoms: np.ndarray, fmt: str) -> pd.DataFrame:
    """The table of a CSV/XLSX ledger: Chinese headers, status label, areas in mu, geometry as lon/lat or WKT."""
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
        if fmt == "xlsx" and len(geoms) and max(len(w) for w in wkt) > XLSX_CELL_LIMIT:
            wkt = shapely.to_wkt(geoms, rounding_precision=8, trim=True)
            if max(len(w) for w in wkt) > XLSX_CELL_LIMIT:
                raise InvalidInputError(
                    f"Some {layer.title} geometries have too many vertices for an Excel cell (32,767 characters). "
                    "Export to GeoPackage or Shapefile instead."
                )
        out["WKT"] = list(wkt)
    labels = layer.labels
    out.columns = pd.Index([labels.get(c, c) for c in out.columns])
    return out


def build_file(
    layer: Layer, rows: Sequence[Sequence[Any]], fmt: ExportFormat | str, crs: CrsRef, encoding: str | None = None
) -> bytes:
    """The bytes of an export file built from rows fetched with :func:`select_sql`."""
    f = fmt if isinstance(fmt, ExportFormat) else export_format(fmt)
    if f.name in GEOGRAPHIC_ONLY and crs.kind == "epsg" and crs.epsg not in (4326, 4490):
        raise CRSError(
            f"{f.label} is always longitude/latitude; export it in CRS84, EPSG:4490 or GCJ02, not {crs.label}."
        )
    if encoding and f.name not in ("shp", "csv"):
        raise InvalidInputError(f"--encoding applies to Shapefile and CSV exports only, not {f.label}.")
    frame, geoms = _frame(layer, rows)
    if crs.is_offset_datum and len(geoms):
        geoms = np.asarray(transform_geometry(geoms, STORAGE, crs), dtype=object)
    stem = layer.id
    with tempfile.TemporaryDirectory(prefix="renewal-export-") as tmp:
        out = Path(tmp) / f"{stem}{f.extension}"
        gtype = layer.geometry_type
        if f.name == "gpkg":
            write_geopackage(frame, geoms, crs, out, layer=stem, geometry_type=gtype)
        elif f.name == "shp":
            write_shapefile_zip(frame, geoms, crs, out, stem=stem, encoding=encoding or "UTF-8", geometry_type=gtype)
        elif f.name == "geojson":
            write_geojson(frame, geoms, crs, out, layer=stem)
        elif f.name == "kml":
            write_kml(frame, geoms, crs, out, layer=stem)
        elif f.name == "csv":
            write_csv(_ledger(layer, frame, geoms, "csv"), out, encoding=encoding or "UTF-8")
        elif f.name == "xlsx":
            write_xlsx(_ledger(layer, frame, geoms, "xlsx"), out, sheet=layer.title)
        else:  # pragma: no cover - EXPORT_FORMATS is closed
            ogr_write(frame, geoms, crs, out, driver="GPKG")
        return out.read_bytes()


def export_features(
    conn: psycopg.Connection[Any],
    layer: Layer,
    fmt: ExportFormat | str,
    *,
    where: sql.Composable | None = None,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    crs: CrsRef | str | None = None,
    encoding: str | None = None,
) -> tuple[bytes, int]:
    """Export the features of ``layer`` matching ``where`` (alias ``t``); return (file bytes, feature count)."""
    f = fmt if isinstance(fmt, ExportFormat) else export_format(fmt)
    ref = parse_crs(crs) if isinstance(crs, str) else (crs or DEFAULT_CRS.get(f.name, STORAGE))
    with conn.cursor(binary=True) as cur:
        cur.execute(select_sql(layer, where, ref), params)
        rows = cur.fetchall()
    return build_file(layer, rows, f, ref, encoding), len(rows)


def export_to_path(
    conninfo: str,
    layer_id: str,
    out: Path,
    *,
    filter_text: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
) -> int:
    """Write ``out`` (format from its extension) with the layer's features matching a CQL2 filter."""
    from layers.query import Binder, FeatureQuery, parse_filter, where_clause

    layer = get_registry().get(layer_id)
    f = export_format(out.name)
    where: sql.Composable | None = None
    params: dict[str, Any] | None = None
    if filter_text:
        binder = Binder()
        where = where_clause(FeatureQuery(layer=layer, filter=parse_filter(layer, filter_text)), binder)
        params = binder.params
    with psycopg.connect(conninfo) as conn:
        data, count = export_features(conn, layer, f, where=where, params=params, crs=crs, encoding=encoding)
    out.write_bytes(data)
    return count
