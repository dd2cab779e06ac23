"""Styles from the registry: MapLibre style JSON checked by the official validator, SLD 1.0, QML."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gis.tilegrid import web_map_scale_denominator
from layers.registry import get_registry
from layers.styles import LABEL_FONTS
from tests.conftest import ROOT

REG = get_registry()
VALIDATOR = ROOT / "node_modules" / ".bin" / "gl-style-validate"
SLD_NS = {"sld": "http://www.opengis.net/sld", "ogc": "http://www.opengis.net/ogc"}


def validate(style: dict[str, Any], tmp_path: Path, name: str) -> None:
    """Run ``gl-style-validate`` (npm @maplibre/maplibre-gl-style-spec) on a style; it prints nothing when valid."""
    assert VALIDATOR.exists(), "run scripts/assets.sh (npm ci) to install @maplibre/maplibre-gl-style-spec"
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(style, ensure_ascii=False), encoding="utf-8")
    r = subprocess.run([str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and not r.stdout.strip(), f"{name}: {r.stdout}{r.stderr}"


def test_style_list(client: Any) -> None:
    body = client.get("/styles").json()
    ids = [s["id"] for s in body["styles"]]
    assert ids == ["renewal", *REG.ids]
    one = client.get("/collections/old_compounds/styles").json()
    assert [s["id"] for s in one["styles"]] == ["old_compounds"]
    assert {lk["href"].rsplit("=", 1)[1] for lk in one["styles"][0]["links"]} == {"mapbox", "sld10", "qml"}


def test_every_maplibre_style_passes_gl_style_validate(client: Any, tmp_path: Path) -> None:
    whole = client.get("/styles/renewal", params={"f": "mapbox"})
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("application/vnd.mapbox.style+json")
    validate(whole.json(), tmp_path, "renewal")
    for layer_id in REG.ids:
        r = client.get(f"/collections/{layer_id}/styles/{layer_id}", params={"f": "mapbox"})
        assert r.status_code == 200, r.text
        validate(r.json(), tmp_path, layer_id)
    # the validator does catch a broken style
    bad = whole.json()
    bad["layers"][1]["paint"]["fill-color"] = ["match"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    r = subprocess.run([str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 or r.stdout.strip()


def test_whole_map_style_has_registry_colours_and_tilejson_sources(client: Any) -> None:
    style = client.get("/styles/renewal?f=mapbox").json()
    assert set(style["sources"]) == set(REG.ids)
    for sid, src in style["sources"].items():
        assert src["url"].endswith(f"/collections/{sid}/tiles/WebMercatorQuad/tilejson.json")
        assert client.get(src["url"]).status_code == 200
    by_id = {lyr["id"]: lyr for lyr in style["layers"]}
    for layer in REG:
        if layer.lifecycle is None:
            continue
        lid = f"{layer.id}:fill" if "Polygon" in layer.geometry_type else (
            f"{layer.id}:line" if "Line" in layer.geometry_type else f"{layer.id}:circle")
        paint = by_id[lid]["paint"]
        expr = next(v for k, v in paint.items() if k.endswith("-color"))
        pairs = dict(zip(expr[2:-1:2], expr[3:-1:2], strict=True))
        assert pairs == {s.code: s.color for s in layer.lifecycle.statuses}


def test_parcels_overview_cells_are_drawn_in_the_registry_land_use_colours(client: Any) -> None:
    """Below min_zoom the tiles carry overview cells (layers/overview.py); the style draws them from the registry."""
    parcels = REG.get("land_parcels")
    style = client.get("/styles/renewal?f=mapbox").json()
    by_id = {lyr["id"]: lyr for lyr in style["layers"]}
    ov = by_id["land_parcels:overview"]
    assert (ov["minzoom"], ov["maxzoom"]) == (parcels.overview_min_zoom, parcels.min_zoom)
    assert style["sources"]["land_parcels"]["minzoom"] == parcels.overview_min_zoom
    expr = ov["paint"]["fill-color"]
    field = next(f for f in parcels.fields if f.name == "land_use_code")
    assert dict(zip(expr[2:-1:2], expr[3:-1:2], strict=True)) == {c.code: c.color for c in field.choices or []}
    assert not any(lyr["id"].endswith(":overview") for lyr in style["layers"] if lyr["id"] != ov["id"])


@pytest.mark.parametrize("layer_id", REG.ids)
def test_sld_and_qml_have_one_class_per_status(client: Any, layer_id: str) -> None:
    layer = REG.get(layer_id)
    sld = client.get(f"/styles/{layer_id}", params={"f": "sld10"})
    assert sld.status_code == 200 and "sld" in sld.headers["content-type"]
    root = ET.fromstring(sld.content)
    rules = [r for r in root.findall(".//sld:Rule", SLD_NS) if r.find("sld:TextSymbolizer", SLD_NS) is None]
    literals = [e.text for e in root.findall(".//ogc:Literal", SLD_NS)]
    qml = client.get(f"/styles/{layer_id}", params={"f": "qml"})
    assert qml.status_code == 200
    qroot = ET.fromstring(qml.content.split(b"\n", 1)[1])
    cats = qroot.findall(".//category")
    if layer.lifecycle is not None:
        assert literals == layer.lifecycle.codes and len(rules) == len(layer.lifecycle.codes)
        assert [(c.get("value"), c.get("label")) for c in cats] == [(s.code, s.label) for s in layer.lifecycle.statuses]
    else:
        assert len(rules) == 1 and not cats


def test_names_are_labelled_at_the_registry_zooms_in_every_style_format(client: Any) -> None:
    """One rule (``style.label_min_zoom``/``label_max_zoom``) for the browser, SLD clients and QGIS (tests/qgis)."""
    style = client.get("/styles/renewal?f=mapbox").json()
    assert "glyphs" not in style  # local fonts: nothing to fetch on a closed intranet
    labels = [lyr for lyr in style["layers"] if lyr["type"] == "symbol"]
    assert labels == style["layers"][-len(labels):]  # above every shape
    by_id = {lyr["id"]: lyr for lyr in labels}
    for layer in REG:
        st = layer.style
        sld_root = ET.fromstring(client.get(f"/styles/{layer.id}", params={"f": "sld10"}).content)
        text = [r for r in sld_root.findall(".//sld:Rule", SLD_NS) if r.find("sld:TextSymbolizer", SLD_NS) is not None]
        if st.label_min_zoom is None:
            assert f"{layer.id}:label" not in by_id and not text
            continue
        lyr = by_id[f"{layer.id}:label"]
        assert lyr["source"] == layer.id and lyr["layout"]["text-field"] == ["get", "name"]
        assert lyr["layout"]["text-font"] == list(LABEL_FONTS)
        assert lyr["minzoom"] == max(st.label_min_zoom, layer.min_zoom) and lyr.get("maxzoom") == st.label_max_zoom
        assert lyr["layout"]["symbol-placement"] == ("line" if "Line" in layer.geometry_type else "point")
        (rule,) = text
        assert rule.find(".//ogc:PropertyName", SLD_NS).text == "name"  # type: ignore[union-attr]
        largest = float(rule.find("sld:MaxScaleDenominator", SLD_NS).text)  # type: ignore[union-attr,arg-type]
        assert largest == pytest.approx(web_map_scale_denominator(lyr["minzoom"]), abs=1)
        smallest = rule.find("sld:MinScaleDenominator", SLD_NS)
        assert (smallest is None) == (st.label_max_zoom is None)
    districts = REG.get("districts").style
    assert districts.label_max_zoom is not None and by_id["districts:label"]["maxzoom"] == districts.label_max_zoom


def test_bad_style_requests(client: Any) -> None:
    assert client.get("/styles/renewal?f=qml").status_code == 400
    assert client.get("/styles/old_compounds?f=png").status_code == 400
    assert client.get("/styles/nope?f=mapbox").status_code == 404
    assert client.get("/collections/old_compounds/styles/land_parcels").status_code == 404
