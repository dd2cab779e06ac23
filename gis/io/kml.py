"""KML and KMZ (Google Earth, 奥维互动地图 and other 2-D/3-D map platforms): always WGS84 longitude/latitude.

A KMZ is a zip of a KML (what those tools save by default): its main KML (``doc.kml``, else the
first ``.kml`` in the archive, as Google Earth picks it) is unpacked, after the zip checks every
archive gets (size, ratio, checksums), and read as a KML. GDAL's own KMZ reading loses the
attributes of ``SchemaData`` (every column but the name).

Attributes travel in ``ExtendedData``; the feature name in ``<name>``. KML coordinates carry
an altitude, which is dropped on import (with a note), since layers are 2-D.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyogrio
import shapely

from gis.crs import CRS84, CrsRef
from gis.errors import InvalidInputError
from gis.io._common import ObjArray, Source, check_not_empty, geometry_array, open_zip
from gis.io._ogr import OGR_ERRORS, ogr_read, ogr_write

_KML_NOISE = (
    "id",
    "timestamp",
    "begin",
    "end",
    "altitudeMode",
    "tessellate",
    "extrude",
    "visibility",
    "drawOrder",
    "icon",
    "snippet",
)


def read_kml(path: Path, *, layer: str | None = None) -> Source:
    """Read every folder (or the chosen one) of a KML or KMZ file."""
    check_not_empty(path)
    if path.suffix.lower() == ".kmz":
        with tempfile.TemporaryDirectory(prefix="renewal-kmz-") as tmp:
            source = read_kml(_main_kml(path, Path(tmp)), layer=layer)
            source.layer = layer or path.stem
            return source
    try:
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except OGR_ERRORS as exc:
        raise InvalidInputError(f"'{path.name}' is not readable KML: {str(exc).splitlines()[0]}") from exc
    if layer is not None and layer not in names:
        raise InvalidInputError(f"The KML '{path.name}' has no folder '{layer}'. It has: {', '.join(names)}.")
    parts = [ogr_read(path, fmt="kml", what=f"'{path.name}'", layer=n) for n in ([layer] if layer else names)]
    parts = [p for p in parts if len(p)]
    if not parts:
        source = ogr_read(path, fmt="kml", what=f"'{path.name}'", layer=names[0] if names else None)
    else:
        source = parts[0]
        if len(parts) > 1:
            source.frame = pd.concat([p.frame for p in parts], ignore_index=True)
            source.geometry = geometry_array([g for p in parts for g in p.geometry])
            source.notes.append(f"{len(parts)} KML folders read together.")
    frame = source.frame
    # an empty placemark name or description says nothing, and an empty "Name" would win the name field
    # over the file's 名称 column (GDAL and QGIS write the attributes as ExtendedData, the name empty)
    empty = [c for c in ("Name", "name", "description") if c in frame.columns and _all_blank(frame[c])]
    drop = [c for c in frame.columns if c in _KML_NOISE or c in empty]
    source.frame = frame.drop(columns=drop)
    if len(source.geometry) and shapely.has_z(source.geometry[[g is not None for g in source.geometry]]).any():
        source.geometry = geometry_array(shapely.force_2d(source.geometry))
        source.notes.append("KML altitudes ignored (layers are 2-D).")
    source.crs = CRS84
    source.crs_implicit = True
    source.layer = layer or path.stem
    source.layers_available = names
    return source


def _all_blank(cells: pd.Series) -> bool:
    return bool(cells.fillna("").astype(str).str.strip().eq("").all())


def _main_kml(kmz: Path, folder: Path) -> Path:
    """The main KML of ``kmz``, unpacked into ``folder`` (named as the KMZ, so the layer keeps its name)."""
    with open_zip(kmz) as zf:  # refuses a damaged archive or a zip bomb before anything is unpacked
        kmls = [n for n in zf.namelist() if n.lower().endswith(".kml") and "__MACOSX" not in n]
        if not kmls:
            raise InvalidInputError(f"The KMZ '{kmz.name}' holds no .kml file.")
        main = "doc.kml" if "doc.kml" in kmls else kmls[0]
        out = folder / f"{kmz.stem}.kml"
        out.write_bytes(zf.read(main))
    return out


def write_kml(frame: pd.DataFrame, geometry: ObjArray, crs: CrsRef, out: Path, *, layer: str) -> Path:
    """Write KML (LIBKML): ``name`` becomes the placemark name, other columns ExtendedData."""
    if out.exists():
        out.unlink()
    return ogr_write(frame, geometry, crs, out, driver="LIBKML", layer=layer)
