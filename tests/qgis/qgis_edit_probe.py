"""Run by Debian's Python with python3-qgis (offscreen): edit one layer of a project as a QGIS user would.

Usage: python3 qgis_edit_probe.py PROJECT.qgs LAYER_ID STEPS.json

STEPS.json is a list of edit sessions; each one is started with ``startEditing()``, makes its change
through the same QgsVectorLayer calls as QGIS's tools (attribute table, add-feature tool with the
default values of ``QgsVectorLayerUtils.createFeature``, vertex tool, delete selected) and ends with
``commitChanges()``; a failed commit is rolled back so the next session starts clean. Steps:

* ``{"op": "update", "code": C, "values": {field: value}}``
* ``{"op": "insert", "wkt": WKT, "values": {field: value}}``
* ``{"op": "move_vertex", "code": C, "vertex": i, "scale": s}``: vertex i moved away from the centroid
  to ``centroid + s * (vertex - centroid)``
* ``{"op": "geometry", "code": C, "wkt": WKT}``
* ``{"op": "delete", "code": C}``

Prints one JSON line: the project's state and, per step, ``committed``, ``errors`` (commitErrors())
and what QGIS reads back afterwards for the feature (attributes, geometry WKT).
"""

import json
import sys

from qgis_session import open_project

from qgis.core import QgsFeatureRequest, QgsGeometry, QgsVectorLayerUtils

app, project, opened = open_project(sys.argv[1])
layer = project.mapLayer(f"{sys.argv[2]}_renewal")
with open(sys.argv[3], encoding="utf-8") as fh:
    steps = json.load(fh)


def plain(value):
    """A QVariant-ish attribute as JSON (NULL as None)."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    if isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def by_code(code):
    request = QgsFeatureRequest().setFilterExpression(f"\"code\" = '{code}'")
    found = list(layer.getFeatures(request))
    return found[0] if len(found) == 1 else None


def seen(feature):
    if feature is None:
        return None
    return {"fid": int(feature.id()), "geom": feature.geometry().asWkt(9),
            "attrs": {f.name(): plain(feature[f.name()]) for f in layer.fields()}}


out = {"opened": opened, "valid": bool(layer and layer.isValid()), "provider": layer.providerType() if layer else None,
       "capabilities": layer.dataProvider().capabilitiesString() if layer else None, "steps": []}
if layer is not None and layer.isValid():
    fields = layer.fields()
    out["default_clauses"] = {f.name(): layer.dataProvider().defaultValueClause(i) for i, f in enumerate(fields)}
    form = layer.editFormConfig()
    out["read_only"] = sorted(f.name() for i, f in enumerate(fields) if form.readOnly(i))
    for step in steps:
        report = {"op": step["op"], "started": layer.startEditing()}
        target = by_code(step["code"]) if "code" in step else None
        if step["op"] == "update":
            for name, value in step["values"].items():
                report.setdefault("changed", []).append(
                    layer.changeAttributeValue(target.id(), fields.indexOf(name), value))
        elif step["op"] == "insert":
            geom = QgsGeometry.fromWkt(step["wkt"])
            attrs = {fields.indexOf(name): value for name, value in step["values"].items()}
            feature = QgsVectorLayerUtils.createFeature(layer, geom, attrs)
            report["created_attrs"] = {f.name(): plain(feature[f.name()]) for f in fields}
            report["added"] = layer.addFeature(feature)
        elif step["op"] == "move_vertex":
            geom = target.geometry()
            c = geom.centroid().asPoint()
            v = geom.vertexAt(step["vertex"])
            s = step["scale"]
            report["moved"] = layer.moveVertex(c.x() + s * (v.x() - c.x()), c.y() + s * (v.y() - c.y()),
                                               target.id(), step["vertex"])
        elif step["op"] == "geometry":
            report["changed"] = layer.changeGeometry(target.id(), QgsGeometry.fromWkt(step["wkt"]))
        elif step["op"] == "delete":
            report["deleted"] = layer.deleteFeature(target.id())
        report["committed"] = layer.commitChanges()
        report["errors"] = list(layer.commitErrors())
        if not report["committed"]:
            report["rolled_back"] = layer.rollBack()
        code = step.get("code") or step["values"].get("code")
        report["after"] = seen(by_code(code))
        out["steps"].append(report)
print(json.dumps(out, ensure_ascii=False))
app.exitQgis()
