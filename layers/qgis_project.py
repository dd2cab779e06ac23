"""A QGIS project (``.qgs``) with every layer, grouped as in the viewer's panel and styled from the registry.

Each layer is connected through OGC API Features (QGIS's ``OAPIF`` provider, read from the
service's URL) or, for officers with database access, directly to PostGIS (``postgres``
provider). The project CRS is CGCS2000 (EPSG:4490). Each layer's renderer is the QML of
:func:`layers.styles.qml` (categorised on ``status`` with the Chinese labels), so QGIS shows
the same colours as the web viewer and the MapLibre style.

Public API
----------
project_qgs(layers, *, service_url, postgis=None, title) -> str
    The project XML. ``postgis`` is a libpq connection string (``dbname=... host=...``) for the
    direct connection; without it every layer reads the OGC API at ``service_url``.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import pyproj

from layers.editing import read_only_properties
from layers.models import Layer
from layers.styles import draw_order, qml

__all__ = ["project_qgs"]

@functools.cache
def _cgcs2000() -> str:
    """CGCS2000 as QGIS writes a CRS (QGIS 3.22 reads the WKT; an ``authid`` alone is not enough)."""
    wkt = pyproj.CRS.from_epsg(4490).to_wkt(pyproj.enums.WktVersion.WKT2_2019)
    return (
        f"<spatialrefsys><wkt>{escape(wkt)}</wkt><proj4>+proj=longlat +ellps=GRS80 +no_defs</proj4>"
        "<srsid>0</srsid><srid>4490</srid><authid>EPSG:4490</authid>"
        "<description>China Geodetic Coordinate System 2000</description>"
        "<projectionacronym>longlat</projectionacronym><ellipsoidacronym>EPSG:1024</ellipsoidacronym>"
        "<geographicflag>true</geographicflag></spatialrefsys>"
    )


def _layer_key(layer: Layer) -> str:
    return f"{layer.id}_renewal"


def _oapif_source(layer: Layer, service_url: str) -> str:
    url = service_url.rstrip("/")
    return (f"pagingEnabled='true' preferCoordinatesForWfsT11='false' restrictToRequestBBOX='1' "
            f"typename='{layer.id}' url='{url}' version='OGC_API_FEATURES'")


def _postgis_source(layer: Layer, conninfo: str) -> str:
    geom_type = layer.geometry_type
    return (f"{conninfo} key='id' srid=4490 type={geom_type} checkPrimaryKeyUnicity='0' "
            f"table=\"{layer.schema_name}\".\"{layer.table}\" (geom)")


def _geometry_word(layer: Layer) -> str:
    g = layer.geometry_type
    return "Polygon" if "Polygon" in g else "Line" if "Line" in g else "Point"


def _style_body(layer: Layer) -> str:
    """The renderer and labeling elements of the layer's QML (without the ``<qgis>`` wrapper)."""
    text = qml(layer).split("\n", 1)[1]
    root = ET.fromstring(text)
    return "".join(ET.tostring(child, encoding="unicode") for child in root)


def _read_only_fields(layer: Layer) -> str:
    """The ``<editable>`` element: the columns the database computes are read-only in QGIS's forms.

    QGIS greys out a generated column by itself, but not the identity ``id`` nor ``created_at``
    and ``updated_at``: through a direct PostGIS connection an officer could type over them, and
    ``created_at`` decides from when a feature without history exists (:mod:`layers.history`).
    The same set the API ignores on input (:func:`layers.editing.read_only_properties`).
    """
    fields = "".join(f'<field editable="0" name={quoteattr(name)}/>' for name in sorted(read_only_properties(layer)))
    return f"<editable>{fields}</editable>"


def _maplayer(layer: Layer, service_url: str, postgis: str | None) -> str:
    source = _postgis_source(layer, postgis) if postgis else _oapif_source(layer, service_url)
    provider = "postgres" if postgis else "OAPIF"
    editable = _read_only_fields(layer) if postgis else ""
    return (
        f'<maplayer type="vector" geometry="{_geometry_word(layer)}" labelsEnabled="1" '
        'autoRefreshEnabled="0" refreshOnNotifyEnabled="0" hasScaleBasedVisibilityFlag="0" '
        f'styleCategories="AllStyleCategories"><id>{_layer_key(layer)}</id>'
        f"<datasource>{escape(source)}</datasource><layername>{escape(layer.title)}</layername>"
        f"<abstract>{escape(layer.description)}</abstract><srs>{_cgcs2000()}</srs>"
        f'<provider encoding="UTF-8">{provider}</provider>'
        f"{editable}{_style_body(layer)}</maplayer>"
    )


def _tree(layers: Sequence[Layer]) -> str:
    groups: dict[str, list[Layer]] = {}
    for layer in layers:
        groups.setdefault(layer.group, []).append(layer)
    out = []
    for name, members in groups.items():
        items = "".join(
            f'<layer-tree-layer id="{_layer_key(m)}" name={quoteattr(m.title)} checked="Qt::Checked" expanded="1" '
            f'providerKey="" source=""><customproperties/></layer-tree-layer>'
            for m in members
        )
        out.append(f'<layer-tree-group name={quoteattr(name)} checked="Qt::Checked" expanded="1">'
                   f"<customproperties/>{items}</layer-tree-group>")
    return "".join(out)


def project_qgs(layers: Sequence[Layer], *, service_url: str, postgis: str | None = None,
                title: str = "城市更新 Urban renewal") -> str:
    """The ``.qgs`` XML: layers grouped (registry group, registry order), drawn polygons-lines-points."""
    if postgis is not None and re.search(r"[\n\r]", postgis):
        raise ValueError("the PostGIS connection string must be one line")
    order = "".join(f"<item>{_layer_key(layer)}</item>" for layer in reversed(draw_order(layers)))
    maplayers = "".join(_maplayer(layer, service_url, postgis) for layer in layers)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(title)} version="3.22.16-Białowieża">'
        f"<homePath path=\"\"/><title>{escape(title)}</title>"
        f"<projectCrs>{_cgcs2000()}</projectCrs>"
        # QGIS reads <projectCrs> only when this project property says projections are on
        '<properties><SpatialRefSys><ProjectionsEnabled type="int">1</ProjectionsEnabled></SpatialRefSys></properties>'
        f'<layer-tree-group><customproperties/>{_tree(layers)}'
        f'<custom-order enabled="1">{order}</custom-order></layer-tree-group>'
        f"<projectlayers>{maplayers}</projectlayers>"
        "</qgis>\n"
    )
