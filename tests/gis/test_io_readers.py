"""Readers by format (no database): GeoJSON shapes, shapefile encodings, GeoPackage layers, KML, ledgers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from gis.crs import parse_crs
from gis.errors import InvalidInputError
from gis.io import read_source
from gis.validate import check_geometries, explain_outside, parse_reason
from layers.city import SHIJIAZHUANG
from tests.fixtures.io_files import (
    compound_frame,
    parking_ledger_rows,
    to_crs,
    write_geojson,
    write_shapefile,
    write_xlsx_ledger,
    zip_with_gbk_names,
)


@pytest.mark.parametrize("shape", ["collection", "array"])
def test_geojson_shapes_read_alike(shape: str, tmp_path: Path) -> None:
    frame = compound_frame(5)
    src = read_source(write_geojson(frame, tmp_path / f"{shape}.json", shape))
    assert len(src) == 5 and src.crs_implicit
    assert list(src.frame["名称"]) == list(frame["名称"])
    assert all(a.equals(b) for a, b in zip(src.geometry, frame.geometry, strict=True))


def test_single_feature(tmp_path: Path) -> None:
    src = read_source(write_geojson(compound_frame(3), tmp_path / "one.geojson", "feature"))
    assert len(src) == 1 and src.frame.loc[0, "编号"] == "TEST-001"


@pytest.mark.parametrize("cpg", [True, False])
@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
def test_shapefile_encodings(encoding: str, cpg: bool, tmp_path: Path) -> None:
    frame = compound_frame(4)[["编号", "名称", "geometry"]]
    shp = write_shapefile(frame, tmp_path, "enc", encoding=encoding, cpg=cpg)
    src = read_source(shp)
    assert list(src.frame["名称"]) == list(frame["名称"])
    assert src.encoding == (encoding if cpg else ("UTF-8" if encoding == "UTF-8" else "GB18030"))


def test_zipped_shapefile_and_crs(tmp_path: Path) -> None:
    z = write_shapefile(to_crs(compound_frame(3), "EPSG:4547"), tmp_path, "gk", zip_it=True)
    src = read_source(z)
    assert src.crs == parse_crs("EPSG:4547") and len(src) == 3


def test_zip_with_gbk_member_names_keeps_the_chinese_layer_name(tmp_path: Path) -> None:
    """Zip tools on Chinese Windows write GBK names without the UTF-8 flag; the zip default read them as cp437."""
    shp = write_shapefile(compound_frame(3), tmp_path / "parts", "parts")
    z = zip_with_gbk_names(shp, tmp_path / "gbk.zip", "老旧小区台账")
    with zipfile.ZipFile(z) as zf:
        assert not any(i.flag_bits & 0x800 for i in zf.infolist())  # the fixture writes what those tools write
    src = read_source(z)
    assert src.layer == "老旧小区台账" and len(src) == 3
    assert read_source(z, layer_name="老旧小区台账").layer == "老旧小区台账"
    utf8 = write_shapefile(compound_frame(2), tmp_path / "u", "小区", zip_it=True)  # flagged UTF-8: as before
    assert read_source(utf8).layer == "小区"


def test_geopackage_layers(tmp_path: Path) -> None:
    gpkg = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(compound_frame(2), gpkg, layer="a")
    pyogrio.write_dataframe(compound_frame(3), gpkg, layer="b")
    with pytest.raises(InvalidInputError, match="a, b"):
        read_source(gpkg)
    assert len(read_source(gpkg, layer_name="b")) == 3
    assert read_source(gpkg, prefer=("b",)).layer == "b"


def test_kml_heights_dropped(tmp_path: Path) -> None:
    kml = tmp_path / "a.kml"
    pyogrio.write_dataframe(compound_frame(2), kml, driver="LIBKML")
    src = read_source(kml)
    assert not shapely.has_z(src.geometry).any() and any("altitudes" in n for n in src.notes)


def test_kmz_reads_as_its_kml_and_a_bomb_is_refused(tmp_path: Path) -> None:
    """A KMZ (Google Earth's and 奥维互动地图's default save) is a zip of a KML; it was an unsupported file type."""
    kml = tmp_path / "doc.kml"
    pyogrio.write_dataframe(compound_frame(3), kml, driver="LIBKML")
    kmz = tmp_path / "台账.kmz"
    with zipfile.ZipFile(kmz, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(kml, "doc.kml")
    plain, zipped = read_source(kml), read_source(kmz)
    assert len(zipped) == 3 and zipped.crs_implicit
    assert "Name" not in zipped.frame.columns  # GDAL wrote the placemark names empty: 名称 is the name
    assert list(zipped.frame["名称"]) == list(plain.frame["名称"]) == list(compound_frame(3)["名称"])
    assert all(a.equals(b) for a, b in zip(zipped.geometry, plain.geometry, strict=True))
    with zipfile.ZipFile(kmz, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("files/pad.png", "w") as member:
        for _ in range(150):
            member.write(bytes(1024 * 1024))
    with pytest.raises(InvalidInputError, match="zip bomb"):
        read_source(kmz)


def test_xlsx_ledger(tmp_path: Path) -> None:
    rows = parking_ledger_rows(3)
    src = read_source(write_xlsx_ledger(rows, tmp_path / "l.xlsx"))
    assert src.crs is None and list(src.frame.columns) == [k for k in rows[0] if k not in ("经度", "纬度")]
    assert src.frame.loc[0, "泊位数"] == "50"
    assert shapely.get_coordinates(src.geometry) == pytest.approx(
        np.array([[r["经度"], r["纬度"]] for r in rows]), abs=1e-12
    )  # Excel keeps 15-16 digits


@pytest.mark.parametrize(
    ("x", "y", "crs", "fragment"),
    [
        (38.04, 114.5, "EPSG:4490", "swapped order"),
        (38_543_892.0, 4_212_055.0, "EPSG:4547", "EPSG:4526"),
        (543_892.0, 4_212_055.0, "EPSG:4526", "EPSG:4547"),
        (20_280_521.0, 4_214_889.0, "EPSG:4490", "EPSG:4498"),
        (114.5, 38.04, "EPSG:4547", "degrees, but the CRS says projected"),
        (121.47, 31.23, "EPSG:4490", "outside Shijiazhuang"),
    ],
)
def test_outside_city_explained(x: float, y: float, crs: str, fragment: str) -> None:
    assert fragment in explain_outside(x, y, parse_crs(crs), SHIJIAZHUANG.bbox)


def test_geometry_checks() -> None:
    bowtie = shapely.Polygon([(114.50, 38.05), (114.51, 38.06), (114.51, 38.05), (114.50, 38.06)])
    geoms = np.array(
        [
            shapely.box(114.5, 38.0, 114.51, 38.01),
            bowtie,
            None,
            shapely.Point(114.5, 38.0),
            shapely.box(114.5, 38.0, 114.51, 38.01),
        ],
        dtype=object,
    )
    check = check_geometries(geoms, src_crs=parse_crs("EPSG:4490"), target_type="MultiPolygon", on_invalid="repair",
                             extent=SHIJIAZHUANG.bbox)
    kinds = {(e.row, e.kind) for e in check.errors}
    assert kinds == {(2, "missing"), (3, "wrong_type"), (4, "duplicate_geometry")}
    assert check.repair_rows.tolist() == [1]
    reason, loc = parse_reason(str(shapely.is_valid_reason(bowtie)))
    assert reason == "Self-intersection" and loc == pytest.approx((114.505, 38.055))


def test_zip_over_the_unpacked_size_limit_is_refused_before_unpacking(tmp_path: Path) -> None:
    import zipfile

    from gis.errors import InvalidInputError
    from gis.io._common import check_zip_size

    p = tmp_path / "big.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.dbf", b"x" * 5000)
    with zipfile.ZipFile(p) as zf:
        check_zip_size(zf, p.name, max_bytes=5000)  # at the limit: accepted
        with pytest.raises(InvalidInputError, match="would unpack to"):
            check_zip_size(zf, p.name, max_bytes=4999)
