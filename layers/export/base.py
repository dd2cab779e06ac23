"""What an export writer is: a format's name, file extension, media type, rules and its write function.

Each format module (:mod:`.gpkg`, :mod:`.shp`, ...) defines one :class:`Writer`; the registry in
:mod:`layers.export` lists them. The shared table building (:func:`frame_of`, :func:`ledger`) is
here so writers stay a few lines each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis.crs import CrsRef
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
class Writer:
    """One export format and the function that writes it.

    ``extensions``: the first is the file extension written, all are recognised in output file
    names. ``default_crs``: the CRS when none is asked for (None: CGCS2000, the storage CRS).
    ``geographic_only``: the format is always longitude/latitude (KML). ``takes_encoding``:
    ``--encoding`` applies (Shapefile DBF, CSV).
    """

    name: str
    extensions: tuple[str, ...]
    media_type: str
    label: str
    write: Callable[[ExportJob, Path], None]
    default_crs: CrsRef | None = None
    geographic_only: bool = False
    takes_encoding: bool = False

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


def frame_of(layer: Layer, rows: Sequence[Sequence[Any]]) -> tuple[pd.DataFrame, np.ndarray]:
    """The attribute table (registry types) and the geometries of rows from :func:`layers.export.select_sql`."""
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


__all__ = ["XLSX_CELL_LIMIT", "ExportJob", "Writer", "export_columns", "frame_of", "ledger"]
