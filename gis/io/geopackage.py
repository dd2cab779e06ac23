"""GeoPackage: one file, several layers; the officer chooses the layer (or the file has one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyogrio

from gis.crs import CrsRef
from gis.errors import InvalidInputError
from gis.io._common import ObjArray, Source, SourceStream, check_not_empty
from gis.io._ogr import OGR_ERRORS, ogr_read, ogr_stream, ogr_write


def gpkg_layers(path: Path) -> list[str]:
    """Names of the feature layers in a GeoPackage."""
    try:
        rows = pyogrio.list_layers(path)
    except OGR_ERRORS as exc:
        raise InvalidInputError(f"'{path.name}' is not a readable GeoPackage: {str(exc).splitlines()[0]}") from exc
    return [str(name) for name, _ in rows]


def read_geopackage(path: Path, *, layer: str | None = None, prefer: tuple[str, ...] = ()) -> Source:
    """Read one layer of a GeoPackage.

    The layer is ``layer`` if given; else the only layer; else one named like the target
    (``prefer``, e.g. the layer id and table); else an error listing the layers.
    """
    chosen, names = _choose_layer(path, layer, prefer)
    source = ogr_read(path, fmt="gpkg", what=f"layer '{chosen}' of '{path.name}'", layer=chosen, use_arrow=True)
    source.layer = chosen
    source.layers_available = names
    return source


def stream_geopackage(
    path: Path, *, layer: str | None = None, prefer: tuple[str, ...] = (), batch_rows: int = 100_000
) -> SourceStream:
    """One layer of a GeoPackage (chosen as :func:`read_geopackage` does) in batches of ``batch_rows`` rows.

    A layer with date-time or JSON fields is read whole, as one batch.
    """
    chosen, names = _choose_layer(path, layer, prefer)
    what = f"layer '{chosen}' of '{path.name}'"
    stream = ogr_stream(path, fmt="gpkg", what=what, layer=chosen, batch_rows=batch_rows)
    if stream is None:
        source = ogr_read(path, fmt="gpkg", what=what, layer=chosen, use_arrow=True)
        stream = source.as_stream()
    stream.layer = chosen
    stream.layers_available = names
    return stream


def _choose_layer(path: Path, layer: str | None, prefer: tuple[str, ...]) -> tuple[str, list[str]]:
    check_not_empty(path)
    names = gpkg_layers(path)
    if not names:
        raise InvalidInputError(f"The GeoPackage '{path.name}' contains no layers.")
    if layer is not None:
        if layer not in names:
            raise InvalidInputError(
                f"The GeoPackage '{path.name}' has no layer '{layer}'. Its layers: {', '.join(names)}."
            )
        chosen = layer
    elif len(names) == 1:
        chosen = names[0]
    else:
        matches = [n for n in names if n in prefer]
        if not matches:
            raise InvalidInputError(
                f"The GeoPackage '{path.name}' has {len(names)} layers ({', '.join(names)}); "
                "choose one with --layer-name."
            )
        chosen = matches[0]
    return chosen, names


def write_geopackage(
    frame: pd.DataFrame, geometry: ObjArray, crs: CrsRef, out: Path, *, layer: str, geometry_type: str | None = None
) -> Path:
    """Write one layer to a new GeoPackage at ``out``."""
    if out.exists():
        out.unlink()
    return ogr_write(frame, geometry, crs, out, driver="GPKG", layer=layer, geometry_type=geometry_type)
