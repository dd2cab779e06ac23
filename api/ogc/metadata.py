"""Conformance classes, CRS lists, collection documents and queryables (JSON Schema)."""

from __future__ import annotations

from typing import Any, Final

from gis.crs import STORAGE, CrsRef
from layers.city import current
from layers.models import Layer
from layers.query import SUPPORTED_CRS, column_kinds

CONFORMANCE: Final = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    # Part 4 (create/replace/delete, update, ETags), as QGIS's OAPIF provider looks for it; the
    # methods a given caller may use on a layer are in the Allow header of OPTIONS
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
]

def supported_crs() -> list[CrsRef]:
    """The CRSs offered: :data:`SUPPORTED_CRS` and the city's own area CRS (its Gauss-Krüger zone)."""
    own = CrsRef("epsg", current().area_srid)
    return list(SUPPORTED_CRS) + ([own] if own not in SUPPORTED_CRS else [])


def crs_uris() -> list[str]:
    """URIs of :func:`supported_crs` (collection and collections documents)."""
    return [c.uri for c in supported_crs()]


def city_bbox() -> list[float]:
    """The city's extent (lon/lat), the extent of an empty collection."""
    return list(current().extent)

_JSON_TYPE: Final = {"text": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                     "date": "string", "timestamp": "string"}
_GEOM_FORMAT: Final = {"Point": "geometry-point", "MultiPoint": "geometry-multipoint",
                       "LineString": "geometry-linestring", "MultiLineString": "geometry-multilinestring",
                       "Polygon": "geometry-polygon", "MultiPolygon": "geometry-multipolygon"}


def property_schema(layer: Layer) -> dict[str, dict[str, Any]]:
    """JSON Schema of every queryable property, with Chinese titles and enumerations."""
    labels = layer.labels
    out: dict[str, dict[str, Any]] = {}
    for name, kind in column_kinds(layer).items():
        entry: dict[str, Any] = {"type": _JSON_TYPE[kind]}
        if name == "id":
            entry.update(title="要素标识 Feature id", **{"x-ogc-role": "id"})
        elif name in ("area_mu", "length_m") and name not in labels:
            entry["title"] = "面积（亩）" if name == "area_mu" else "长度（米）"
        else:
            entry["title"] = labels.get(name, name)
        if kind == "date":
            entry["format"] = "date"
        if kind == "timestamp":
            entry["format"] = "date-time"
        if name == "status" and layer.lifecycle is not None:
            entry["enum"] = layer.lifecycle.codes
            entry["x-labels"] = {s.code: s.label for s in layer.lifecycle.statuses}
        try:
            fdef = layer.field(name)
        except KeyError:
            fdef = None
        if fdef is not None:
            entry["description"] = fdef.label_en
            if fdef.choices:
                entry["enum"] = [c.code for c in fdef.choices]
                entry["x-labels"] = {c.code: c.label for c in fdef.choices}
            if fdef.min is not None:
                entry["minimum"] = fdef.min
            if fdef.max is not None:
                entry["maximum"] = fdef.max
            if fdef.unit:
                entry["x-unit"] = fdef.unit
            if fdef.temporal:
                entry["x-ogc-role"] = "primary-instant"
        out[name] = entry
    return out


def queryables(layer: Layer, url: str) -> dict[str, Any]:
    """The ``/queryables`` document (OGC API Features Part 3, JSON Schema 2020-12)."""
    props = property_schema(layer)
    props["geom"] = {"title": "几何 Geometry", "format": _GEOM_FORMAT[layer.geometry_type],
                     "x-ogc-role": "primary-geometry"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": f"{layer.title} {layer.title_en}",
        "properties": props,
        "additionalProperties": False,
    }


def storage_crs() -> str:
    """The storage CRS URI (CGCS2000, EPSG:4490)."""
    return STORAGE.uri
