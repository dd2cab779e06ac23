"""Run by Debian's Python with python3-qgis (offscreen): open a project, report what QGIS sees, as JSON.

Usage: python3 qgis_probe.py PROJECT.qgs STYLE.json TILE_URL
"""

import json
import sys

from qgis_session import open_project

from qgis.core import QgsMapBoxGlStyleConverter, QgsVectorTileLayer

app, project, opened = open_project(sys.argv[1])
out = {"opened": opened, "crs": project.crs().authid(), "groups": {}, "layers": {}}
for group in project.layerTreeRoot().children():
    out["groups"][group.name()] = [node.layerId() for node in group.findLayers()]
for lid, layer in project.mapLayers().items():
    renderer = layer.renderer()
    cats = None
    if renderer is not None and renderer.type() == "categorizedSymbol":
        cats = [[str(c.value()), c.label()] for c in renderer.categories()]
    attr = renderer.classAttribute() if cats is not None else None
    labels = None
    if layer.labelsEnabled() and layer.labeling() is not None:
        pal = layer.labeling().settings()
        labels = {"field": pal.fieldName, "min_scale": pal.minimumScale, "max_scale": pal.maximumScale,
                  "scale_visibility": pal.scaleVisibility, "font": pal.format().font().family()}
    out["layers"][lid] = {"valid": layer.isValid(), "count": int(layer.featureCount()),
                          "provider": layer.providerType(), "renderer": renderer.type() if renderer else None,
                          "attr": attr, "categories": cats, "crs": layer.crs().authid(), "labels": labels}
with open(sys.argv[2], encoding="utf-8") as fh:
    style_text = fh.read()
converter = QgsMapBoxGlStyleConverter()
result = converter.convert(style_text)
tiles = QgsVectorTileLayer(f"type=xyz&url={sys.argv[3]}&zmin=0&zmax=16", "renewal")
if converter.renderer() is not None:
    tiles.setRenderer(converter.renderer())
styles = converter.renderer().styles() if converter.renderer() else []
out["style"] = {"result": int(result), "error": converter.errorMessage(), "warnings": list(converter.warnings()),
                "tiles_valid": tiles.isValid(), "styles": len(styles)}
print(json.dumps(out, ensure_ascii=False))
app.exitQgis()
