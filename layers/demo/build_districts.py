"""Build ``layers/demo/data/districts_approx.geojson`` from the DataV.GeoAtlas district file.

The demo city ships only this simplified derivative, never the source file. Steps:

1. read the bare JSON array of GeoJSON Features published by DataV.GeoAtlas (GCJ-02);
2. convert every vertex GCJ-02 → WGS84/CGCS2000 with :func:`gis.chinacrs.gcj02_to_wgs84`;
3. simplify the whole coverage at once with :func:`shapely.coverage_simplify`, so shared
   borders are simplified identically and neighbours stay gap-free;
4. round coordinates to 6 decimals (≈ 0.1 m) and write a FeatureCollection of
   MultiPolygons with properties ``adcode`` and ``name``.

The outlines are approximate and not official (see ``layers/demo/README.md``).

Usage::

    python -m layers.demo.build_districts /work/shared/reference/shijiazhuang_districts_datav_gcj02.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from gis.chinacrs import gcj02_to_wgs84

OUTPUT = Path(__file__).parent / "data" / "districts_approx.geojson"
TOLERANCE_DEG = 0.004
DECIMALS = 6

CREDIT = (
    "District outlines derived from DataV.GeoAtlas (阿里云 DataV.GeoAtlas, "
    "https://datav.aliyun.com/portal/school/atlas/area_selector), converted from GCJ-02 to "
    "CGCS2000/WGS84 and simplified."
)
NOTE = (
    "Simplified, approximate outlines for the synthetic demo city only; not official "
    "administrative boundaries. 简化示意界线，仅供演示，不作为权属或行政界线依据。"
)


def _to_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    return MultiPolygon(polys)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Repair the self-intersections of the source (two units have them) keeping only polygons."""
    if geom.is_valid:
        return geom
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    return _to_multipolygon(fixed)


def _gcj_to_cgcs(coords: np.ndarray) -> np.ndarray:
    x, y = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def build(source: Path, output: Path = OUTPUT, tolerance: float = TOLERANCE_DEG) -> dict[str, Any]:
    """Convert, simplify and write the district coverage; return the FeatureCollection."""
    features = json.loads(source.read_text(encoding="utf-8"))
    if isinstance(features, dict):  # tolerate a FeatureCollection as well
        features = features["features"]
    features = sorted(features, key=lambda f: int(f["properties"]["adcode"]))
    geoms = [_polygonal(shapely.transform(shape(f["geometry"]), _gcj_to_cgcs)) for f in features]
    simplified = shapely.coverage_simplify(np.array(geoms, dtype=object), tolerance)
    out_features = []
    for feat, geom in zip(features, simplified, strict=True):
        geom = shapely.set_precision(geom, 10.0**-DECIMALS)
        mp = _to_multipolygon(_polygonal(geom))
        gj = mapping(mp)
        gj = json.loads(json.dumps(gj))  # tuples → lists
        out_features.append(
            {
                "type": "Feature",
                "properties": {"adcode": str(feat["properties"]["adcode"]), "name": feat["properties"]["name"]},
                "geometry": gj,
            }
        )
    fc = {
        "type": "FeatureCollection",
        "name": "shijiazhuang_districts_approx",
        "credit": CREDIT,
        "note": NOTE,
        "crs_note": "CGCS2000 longitude/latitude (EPSG:4490), which coincides with WGS84 to centimetres.",
        "simplify_tolerance_deg": tolerance,
        "features": out_features,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
    # one feature per line keeps diffs readable
    text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
    output.write_text(text + "\n", encoding="utf-8")
    return fc


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="DataV.GeoAtlas JSON (bare array of Features, GCJ-02)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    parser.add_argument("-t", "--tolerance", type=float, default=TOLERANCE_DEG, help="degrees")
    args = parser.parse_args(argv)
    fc = build(args.source, args.output, args.tolerance)
    n_vertices = sum(shapely.get_num_coordinates(shape(f["geometry"])) for f in fc["features"])
    print(f"wrote {args.output}: {len(fc['features'])} districts, {n_vertices} vertices")


if __name__ == "__main__":
    main()
