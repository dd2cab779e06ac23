"""GeoJSON: a FeatureCollection, a single Feature, or a bare JSON array of Features.

Web platforms (DataV.GeoAtlas and others) publish bare arrays of Features, which GDAL does
not read; they are wrapped into a FeatureCollection first. GeoJSON is WGS84 by definition
(RFC 7946), but downloads from Chinese web maps are usually GCJ-02: ``--crs gcj02`` says so.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from gis.crs import CRS84, CrsRef
from gis.errors import InvalidInputError
from gis.io._common import Source, check_not_empty
from gis.io._ogr import ogr_read, ogr_write_arrow


def _first_char(data: bytes) -> str:
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return chr(text[0]) if text else ""


def read_geojson(path: Path) -> Source:
    """Read a GeoJSON file in any of the three shapes."""
    check_not_empty(path)
    data = path.read_bytes()
    first = _first_char(data)
    if first not in ("{", "["):
        raise InvalidInputError(f"'{path.name}' is not GeoJSON: it does not start with '{{' or '['.")
    notes: list[str] = []
    src: Path | io.BytesIO = path
    if first == "[":
        try:
            items: Any = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"'{path.name}' is not valid JSON: {exc}") from exc
        bad = [i for i, f in enumerate(items) if not (isinstance(f, dict) and f.get("type") == "Feature")]
        if bad:
            raise InvalidInputError(f"'{path.name}' is a JSON array, but item {bad[0] + 1} is not a GeoJSON Feature.")
        if not items:
            raise InvalidInputError(f"'{path.name}' contains no features (an empty array).")
        wrapped = json.dumps({"type": "FeatureCollection", "features": items}, ensure_ascii=False)
        src = io.BytesIO(wrapped.encode("utf-8"))
        notes.append("Bare JSON array of Features read as a FeatureCollection.")
    source = ogr_read(src, fmt="geojson", what=f"'{path.name}'")
    declares_crs = b'"crs"' in data[:65536]
    if not declares_crs:
        source.crs = CRS84
        source.crs_implicit = True
    source.layer = path.stem
    source.notes.extend(notes)
    return source


def write_geojson(
    stream: Any, crs: CrsRef, out: Path, *, layer: str, geometry_column: str, geometry_type: str | None = None
) -> Path:
    """Write a FeatureCollection from an Arrow stream (geometry as WKB in ``geometry_column``), batch by batch.

    Full precision; a ``crs`` member only for non-WGS84 EPSG output. GDAL's columnar write: only the
    batches in flight are in memory, so a million parcels download in flat memory, as GeoPackage does.
    """
    if out.exists():
        out.unlink()
    return ogr_write_arrow(
        stream, crs, out, driver="GeoJSON", layer=layer, geometry_column=geometry_column,
        geometry_type=geometry_type, layer_options={"COORDINATE_PRECISION": 15},
    )
