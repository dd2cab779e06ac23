"""Map styles generated from the layer registry: MapLibre/Mapbox GL style JSON, SLD 1.0 and QGIS QML.

One source for every client: the registry's status colours and labels (``lifecycle.statuses``)
and each layer's :class:`~layers.models.Style` (default colour, fill opacity, line weight,
point radius). The web viewer draws from :func:`maplibre_style` (it takes its paint from the
style the API serves), QGIS loads :func:`qml`, GeoServer and desktop programs :func:`sld`. No
colour is written anywhere else.

Public API
----------
STYLE_ID
    The id of the whole-map style (``/styles/{STYLE_ID}``).
draw_order(layers) -> list[Layer]
    Polygons, then lines, then points; in registry order within a kind (the viewer's order).
color_expression(layer) -> str | list
    The MapLibre expression colouring a layer by ``status`` (or its single colour).
maplibre_style(layers, tilejson_url, *, name) -> dict
    A style (spec version 8) with one vector source per layer, read through its TileJSON; names as
    labels in local fonts (:data:`LABEL_FONTS`, no glyph server).
sld(layer) -> str
    A Styled Layer Descriptor 1.0 document with one rule per status (Chinese titles).
qml(layer) -> str
    A QGIS layer style: a categorised renderer on ``status`` (Chinese labels) or a single symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from gis.tilegrid import web_map_scale_denominator
from layers.models import Layer
from layers.overview import CLASS_FIELD

__all__ = ["BACKGROUND", "LABEL_FONTS", "SOURCE_MAX_ZOOM", "STYLE_ID", "color_expression", "draw_order",
           "label_points", "label_style_layer", "maplibre_style", "qml", "sld"]

STYLE_ID: Final = "renewal"
"""The whole-map style: every layer the caller may read, as the viewer draws them."""
BACKGROUND: Final = "#eef0f2"
"""The map background under the layers."""
LINE_OPACITY: Final = 0.9
POINT_OPACITY: Final = 0.9
POINT_STROKE: Final = "#ffffff"
LABEL_FONTS: Final = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "sans-serif")
"""Labels are drawn in the first of these fonts the viewer's computer has (the style names no glyph server).

Chinese names need CJK glyphs. No registry this project installs from offers CJK glyph PBFs, and a
closed intranet reaches no glyph server, so the styles leave ``glyphs`` out: MapLibre GL JS (5.11 and
later) then draws text with local fonts, listed here as a CSS fallback list. Debian's
fonts-noto-cjk, Windows' Microsoft YaHei and macOS's PingFang all cover the names.
"""
SOURCE_MAX_ZOOM: Final = 16
"""The deepest tiles the styles ask for; deeper zooms draw them overzoomed.

A z16 tile unit is about 12 cm on the ground here and parcels have a few vertices, so deeper tiles would add
requests and nothing visible.
"""
LABEL_COLOR: Final = "#1f2328"
LABEL_HALO: Final = "#ffffff"


def _kind(layer: Layer) -> str:
    g = layer.geometry_type
    return "polygon" if "Polygon" in g else "line" if "Line" in g else "point"


def draw_order(layers: Sequence[Layer]) -> list[Layer]:
    """Polygons under lines under points; registry order within a kind."""
    rank = {"polygon": 0, "line": 1, "point": 2}
    return sorted(layers, key=lambda layer: rank[_kind(layer)])


def color_expression(layer: Layer) -> str | list[Any]:
    """``["match", ["get", "status"], code, colour, ..., default]``, or the layer's colour without a lifecycle."""
    if layer.lifecycle is None:
        return layer.style.color
    expr: list[Any] = ["match", ["get", "status"]]
    for s in layer.lifecycle.statuses:
        expr += [s.code, s.color]
    expr.append(layer.style.color)
    return expr


def _outline_color(layer: Layer) -> str | list[Any]:
    # reference outlines (districts) are drawn in the layer colour, not by status
    return layer.style.color if layer.lifecycle is None else color_expression(layer)


def _style_layers(layer: Layer) -> list[dict[str, Any]]:
    st = layer.style
    base = {"source": layer.id, "source-layer": layer.id, "minzoom": layer.min_zoom,
            "metadata": {"renewal:layer": layer.id, "renewal:title": layer.title, "renewal:group": layer.group}}
    kind = _kind(layer)
    if kind == "polygon":
        return [
            {"id": f"{layer.id}:fill", "type": "fill", **base,
             "paint": {"fill-color": color_expression(layer), "fill-opacity": st.fill_opacity}},
            {"id": f"{layer.id}:line", "type": "line", **base,
             "paint": {"line-color": _outline_color(layer), "line-width": st.weight, "line-opacity": LINE_OPACITY}},
        ]
    if kind == "line":
        return [{"id": f"{layer.id}:line", "type": "line", **base,
                 "paint": {"line-color": color_expression(layer), "line-width": st.weight,
                           "line-opacity": LINE_OPACITY}}]
    return [{"id": f"{layer.id}:circle", "type": "circle", **base,
             "paint": {"circle-color": color_expression(layer), "circle-radius": st.radius,
                       "circle-stroke-color": POINT_STROKE, "circle-stroke-width": 1,
                       "circle-opacity": POINT_OPACITY, "circle-stroke-opacity": POINT_OPACITY}}]


def _label_zooms(layer: Layer) -> tuple[int, int | None] | None:
    """(from, below) zoom of a layer's names: the registry's label zooms, never below the layer's ``min_zoom``."""
    st = layer.style
    if st.label_min_zoom is None:
        return None
    return max(st.label_min_zoom, layer.min_zoom), st.label_max_zoom


def label_points(layer: Layer) -> tuple[str, int, int | None] | None:
    """(MVT layer, from, below): the tiles carrying a polygon layer's label points; None where there are none.

    MapLibre labels a polygon in every tile it crosses, at the middle of each clipped piece: a
    district spanning four tiles had its name four times on the map. So each polygon's name
    travels as one point, inside the polygon, in the MVT layer ``<id>:label`` of the one tile that
    holds the point, from the label zoom until the label's ``below`` zoom, and the label style
    layer reads that. Lines keep their labels along the line and points at the point.

    A layer labelled only deeper than :data:`SOURCE_MAX_ZOOM` (parcels, from z17) is labelled on its
    shapes in the overzoomed tiles instead: its label points would have to ride in every z16 tile,
    and encoding them doubled a z16 parcel tile's time (``bench/bench_api.py``: 5.9 -> 11.5 ms p50)
    for parcels that are a few times smaller than the tile; one that straddles a tile edge may show
    its name on both sides, where MapLibre does not hide one of the two as colliding.
    """
    zooms = _label_zooms(layer)
    if zooms is None or _kind(layer) != "polygon" or zooms[0] > SOURCE_MAX_ZOOM:
        return None
    first, below = zooms
    return f"{layer.id}:label", first, below


def label_style_layer(layer: Layer) -> dict[str, Any] | None:
    """The symbol layer writing each feature's ``name`` at :func:`_label_zooms`; None for a layer without labels.

    Along the line for linear layers, at the point for points, at each polygon's label point
    (:func:`label_points`) for polygons; drawn above every layer (:func:`maplibre_style` puts
    labels last). Fonts: :data:`LABEL_FONTS`.
    """
    zooms = _label_zooms(layer)
    if zooms is None:
        return None
    first, below = zooms
    kind = _kind(layer)
    layout: dict[str, Any] = {
        "text-field": ["get", "name"],
        "text-font": list(LABEL_FONTS),
        "text-size": layer.style.label_size,
        "text-max-width": 10,
        "symbol-placement": "line" if kind == "line" else "point",
    }
    if kind == "point":
        layout |= {"text-anchor": "top", "text-offset": [0, 0.8]}
    points = label_points(layer)
    return {"id": f"{layer.id}:label", "type": "symbol", "source": layer.id,
            "source-layer": points[0] if points else layer.id,
            "minzoom": first, **({"maxzoom": below} if below is not None else {}),
            "metadata": {"renewal:layer": layer.id, "renewal:title": f"{layer.title}（名称）",
                         "renewal:group": layer.group},
            "layout": layout,
            "paint": {"text-color": LABEL_COLOR, "text-halo-color": LABEL_HALO, "text-halo-width": 1.5}}


OVERVIEW_OPACITY: Final = 0.75


def overview_style_layer(layer: Layer) -> dict[str, Any] | None:
    """The fill of a layer's overview cells (layers/overview.py) from its ``overview_min_zoom`` to ``min_zoom``.

    Cells are coloured by the registry colours of their dominant class, so the city-scale map
    reads like the parcels it stands for; None for a layer without an overview.
    """
    if layer.overview_min_zoom is None:
        return None
    field = next((f for f in layer.fields if f.name == CLASS_FIELD), None)
    pairs = [v for c in (field.choices or []) if c.color for v in (c.code, c.color)] if field else []
    color: Any = ["match", ["get", CLASS_FIELD], *pairs, layer.style.color] if pairs else layer.style.color
    return {"id": f"{layer.id}:overview", "type": "fill", "source": layer.id, "source-layer": layer.id,
            "minzoom": layer.overview_min_zoom, "maxzoom": layer.min_zoom,
            "filter": ["==", ["get", "overview"], True],
            "metadata": {"renewal:layer": layer.id, "renewal:title": f"{layer.title}（概览）",
                         "renewal:group": layer.group},
            "paint": {"fill-color": color, "fill-opacity": OVERVIEW_OPACITY}}


def maplibre_style(layers: Sequence[Layer], tilejson_url: Callable[[Layer], str], *, name: str,
                   center: tuple[float, float] | None = None, zoom: float | None = None) -> dict[str, Any]:
    """A MapLibre GL style (version 8): one vector source per layer (its TileJSON), layers in draw order.

    Labels (:func:`label_style_layer`) come last, above every layer, and name no ``glyphs`` URL:
    MapLibre draws them in local fonts (:data:`LABEL_FONTS`), so they work offline.
    """
    ordered = draw_order(layers)
    style: dict[str, Any] = {
        "version": 8,
        "name": name,
        "metadata": {"renewal:layers": [layer.id for layer in ordered]},
        "sources": {layer.id: {"type": "vector", "url": tilejson_url(layer),
                               "minzoom": layer.overview_min_zoom if layer.overview_min_zoom is not None
                               else layer.min_zoom,
                               "maxzoom": min(SOURCE_MAX_ZOOM, max(layer.min_zoom, layer.max_zoom))}
                    for layer in ordered},
        "layers": [{"id": "background", "type": "background", "paint": {"background-color": BACKGROUND}}],
    }
    if center is not None:
        style["center"] = [center[0], center[1]]
    if zoom is not None:
        style["zoom"] = zoom
    for layer in ordered:
        overview = overview_style_layer(layer)
        style["layers"] += ([overview] if overview else []) + _style_layers(layer)
    style["layers"] += [label for layer in ordered if (label := label_style_layer(layer))]
    return style


# --------------------------------------------------------------------------- SLD 1.0


def _sld_symbolizer(layer: Layer, color: str) -> str:
    st = layer.style
    kind = _kind(layer)
    if kind == "polygon":
        return (
            "<PolygonSymbolizer><Fill>"
            f'<CssParameter name="fill">{color}</CssParameter>'
            f'<CssParameter name="fill-opacity">{st.fill_opacity}</CssParameter></Fill>'
            f'<Stroke><CssParameter name="stroke">{color if layer.lifecycle else st.color}</CssParameter>'
            f'<CssParameter name="stroke-width">{st.weight}</CssParameter></Stroke></PolygonSymbolizer>'
        )
    if kind == "line":
        return (f'<LineSymbolizer><Stroke><CssParameter name="stroke">{color}</CssParameter>'
                f'<CssParameter name="stroke-width">{st.weight}</CssParameter></Stroke></LineSymbolizer>')
    return (
        "<PointSymbolizer><Graphic><Mark><WellKnownName>circle</WellKnownName>"
        f'<Fill><CssParameter name="fill">{color}</CssParameter></Fill>'
        f'<Stroke><CssParameter name="stroke">{POINT_STROKE}</CssParameter></Stroke></Mark>'
        f"<Size>{st.radius * 2}</Size></Graphic></PointSymbolizer>"
    )


def _label_scales(layer: Layer) -> tuple[float, float | None] | None:
    """(largest, smallest) scale denominator showing names: :func:`_label_zooms` as map scales."""
    zooms = _label_zooms(layer)
    if zooms is None:
        return None
    first, below = zooms
    return web_map_scale_denominator(first), (web_map_scale_denominator(below) if below is not None else None)


def _sld_label_rule(layer: Layer) -> list[str]:
    """A rule writing the names (``TextSymbolizer`` on ``name``) at the label scales; none without labels."""
    scales = _label_scales(layer)
    if scales is None:
        return []
    largest, smallest = scales
    placement = ("<LabelPlacement><LinePlacement/></LabelPlacement>" if _kind(layer) == "line" else "")
    return [
        f"<Rule><Name>{layer.id}:label</Name><Title>{escape(layer.title)}（名称）</Title>"
        + (f"<MinScaleDenominator>{smallest:.0f}</MinScaleDenominator>" if smallest is not None else "")
        + f"<MaxScaleDenominator>{largest:.0f}</MaxScaleDenominator>"
        "<TextSymbolizer><Label><ogc:PropertyName>name</ogc:PropertyName></Label>"
        f'<Font><CssParameter name="font-family">{escape(LABEL_FONTS[0])}</CssParameter>'
        f'<CssParameter name="font-size">{layer.style.label_size:g}</CssParameter></Font>'
        f'{placement}<Halo><Radius>1.5</Radius>'
        f'<Fill><CssParameter name="fill">{LABEL_HALO}</CssParameter></Fill></Halo>'
        f'<Fill><CssParameter name="fill">{LABEL_COLOR}</CssParameter></Fill></TextSymbolizer></Rule>'
    ]


def sld(layer: Layer) -> str:
    """SLD 1.0: one rule per status (``status = code``, with the Chinese label), else one rule; then the names."""
    rules: list[str] = []
    if layer.lifecycle is not None:
        for s in layer.lifecycle.statuses:
            rules.append(
                f"<Rule><Name>{escape(s.code)}</Name><Title>{escape(s.label)} {escape(s.label_en)}</Title>"
                '<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>status</ogc:PropertyName>'
                f"<ogc:Literal>{escape(s.code)}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>"
                f"{_sld_symbolizer(layer, s.color)}</Rule>"
            )
    else:
        rules.append(f"<Rule><Name>{layer.id}</Name><Title>{escape(layer.title)}</Title>"
                     f"{_sld_symbolizer(layer, layer.style.color)}</Rule>")
    rules += _sld_label_rule(layer)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd">'
        f"<NamedLayer><Name>{layer.id}</Name><UserStyle><Name>{layer.id}</Name>"
        f"<Title>{escape(layer.title)} {escape(layer.title_en)}</Title>"
        f"<FeatureTypeStyle>{''.join(rules)}</FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>\n"
    )


# --------------------------------------------------------------------------- QGIS QML


def _rgba(color: str, alpha: float = 1.0) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"{r},{g},{b},{round(alpha * 255)}"


def _qml_symbol(layer: Layer, name: str, color: str) -> str:
    st = layer.style
    kind = _kind(layer)
    if kind == "polygon":
        outline = color if layer.lifecycle else st.color
        props = {"color": _rgba(color, st.fill_opacity), "outline_color": _rgba(outline),
                 "outline_width": str(st.weight * 0.26), "outline_width_unit": "MM", "style": "solid"}
        cls, typ = "SimpleFill", "fill"
    elif kind == "line":
        props = {"line_color": _rgba(color), "line_width": str(st.weight * 0.26), "line_width_unit": "MM"}
        cls, typ = "SimpleLine", "line"
    else:
        props = {"color": _rgba(color), "outline_color": _rgba(POINT_STROKE), "size": str(st.radius * 0.5),
                 "size_unit": "MM", "name": "circle"}
        cls, typ = "SimpleMarker", "marker"
    body = "".join(f"<prop k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in props.items())
    return (f'<symbol type="{typ}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="{cls}" enabled="1" locked="0" pass="0">{body}</layer></symbol>')


def _qml_labeling(layer: Layer) -> str:
    """QGIS labels: the names in :data:`LABEL_FONTS`' first font at the label scales; empty for a layer without labels.

    QGIS writes the smallest scale denominator shown as ``scaleMin`` and the largest as ``scaleMax``
    (0: no limit).
    """
    scales = _label_scales(layer)
    if scales is None:
        return ""
    largest, smallest = scales
    placement = "2" if _kind(layer) == "line" else "0"  # along the line, else around the point/feature
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName="name" fontFamily={quoteattr(LABEL_FONTS[0])} '
        f'fontSize="{layer.style.label_size * 0.75:g}" '
        f'textColor="{_rgba(LABEL_COLOR)}" isExpression="0"/>'
        f'<text-format/><text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="{_rgba(LABEL_HALO)}"/>'
        f'<placement placement="{placement}"/><rendering scaleVisibility="1" '
        f'scaleMin="{0 if smallest is None else round(smallest)}" scaleMax="{round(largest)}"/>'
        "</settings></labeling>"
    )


def qml(layer: Layer) -> str:
    """A QGIS style: categorised on ``status`` with the Chinese labels (single symbol without a lifecycle)."""
    if layer.lifecycle is not None:
        cats = "".join(
            f'<category symbol="{i}" value={quoteattr(s.code)} label={quoteattr(s.label)} render="true"/>'
            for i, s in enumerate(layer.lifecycle.statuses)
        )
        symbols = "".join(_qml_symbol(layer, str(i), s.color) for i, s in enumerate(layer.lifecycle.statuses))
        renderer = (f'<renderer-v2 type="categorizedSymbol" attr="status" symbollevels="0" enableorderby="0">'
                    f"<categories>{cats}</categories><symbols>{symbols}</symbols></renderer-v2>")
    else:
        renderer = ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0">'
                    f"<symbols>{_qml_symbol(layer, '0', layer.style.color)}</symbols></renderer-v2>")
    labeling = _qml_labeling(layer)
    enabled = "1" if labeling else "0"
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis version="3.22.0" styleCategories="Symbology|Labeling" labelsEnabled="{enabled}">'
        f"{renderer}{labeling}</qgis>\n"
    )
