"""ESRI Shapefile: a ``.shp`` with its sidecars, a folder, or a zip of them.

Chinese bureaus deliver shapefiles whose ``.dbf`` text is GBK, often without a ``.cpg``.
The encoding is taken from ``--encoding``, else the ``.cpg``, else detected (UTF-8, else
GB18030, a superset of GBK); a declared encoding that does not decode the ``.dbf`` is an
error rather than mojibake in the layer. Writing produces a zip with ``.cpg`` (UTF-8 by
default, GBK on request for old desktop software).
"""

from __future__ import annotations

import codecs
import shutil
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from gis.crs import CrsRef
from gis.errors import InvalidInputError
from gis.io._common import (
    ObjArray,
    Source,
    check_not_empty,
    detect_chinese_encoding,
    normalise_encoding,
    open_zip,
)
from gis.io._ogr import ogr_read, ogr_write

SAMPLE_BYTES = 8 * 1024 * 1024
"""How much of a ``.dbf`` is checked against the encoding (enough for every realistic header + rows)."""

_CPG_ALIASES = {
    "936": "GBK",
    "ansi 936": "GBK",
    "cp936": "GBK",
    "gbk": "GBK",
    "gb2312": "GBK",
    "gb18030": "GB18030",
    "65001": "UTF-8",
    "utf8": "UTF-8",
    "utf-8": "UTF-8",
    "ansi 1252": "CP1252",
    "1252": "CP1252",
}


def _sidecar(shp: Path, ext: str) -> Path | None:
    for cand in (shp.with_suffix(ext), shp.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


def _dbf_text(dbf: Path) -> bytes:
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise InvalidInputError(f"The attribute table '{dbf.name}' is truncated (shorter than its header).")
        header_len = int.from_bytes(head[8:10], "little")
        fh.seek(header_len)
        return fh.read(SAMPLE_BYTES)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _choose_encoding(shp: Path, dbf: Path, encoding: str | None, notes: list[str]) -> str:
    data = _dbf_text(dbf)
    if encoding:
        enc = normalise_encoding(encoding)
        if not _decodes(data, enc):
            raise InvalidInputError(
                f"The attribute text of '{shp.name}' is not valid {enc} (as given by --encoding); "
                f"it looks like {_guess(data)}. Pass the right --encoding."
            )
        return enc
    cpg = _sidecar(shp, ".cpg")
    if cpg is not None:
        declared = cpg.read_text(encoding="ascii", errors="replace").strip()
        enc = _CPG_ALIASES.get(declared.lower(), declared)
        try:
            enc = normalise_encoding(enc)
        except InvalidInputError:
            raise InvalidInputError(
                f"The .cpg of '{shp.name}' names an unknown encoding '{declared}'; pass --encoding."
            ) from None
        if not _decodes(data, enc):
            raise InvalidInputError(
                f"The .cpg of '{shp.name}' says {declared}, but the attribute text is not valid {enc}; "
                f"it looks like {_guess(data)}. Pass --encoding to override the .cpg."
            )
        return enc
    enc = detect_chinese_encoding(data)
    if any(b > 127 for b in data[:SAMPLE_BYTES]):
        notes.append(f"No .cpg file: attribute encoding detected as {enc}.")
    return enc


def _guess(data: bytes) -> str:
    try:
        return detect_chinese_encoding(data)
    except InvalidInputError:
        return "an unknown encoding"


def _pick_shp(shps: list[Path], layer: str | None, where: str) -> Path:
    if not shps:
        raise InvalidInputError(f"{where} contains no shapefile (.shp).")
    if layer:
        for shp in shps:
            if shp.stem == layer:
                return shp
        raise InvalidInputError(f"{where} has no shapefile named '{layer}'. It has: {', '.join(s.stem for s in shps)}.")
    if len(shps) > 1:
        raise InvalidInputError(
            f"{where} holds several shapefiles ({', '.join(s.stem for s in shps)}); choose one with --layer-name."
        )
    return shps[0]


def read_shapefile(path: Path, *, layer: str | None = None, encoding: str | None = None) -> Source:
    """Read a shapefile given as ``.shp``, a folder of shapefiles, or a ``.zip``."""
    check_not_empty(path)
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="renewal-shp-") as tmp:
            zf = open_zip(path)
            with zf:
                members = [m for m in zf.namelist() if not m.endswith("/") and "__MACOSX" not in m]
                _safe_extract(zf, members, Path(tmp))
            shps = sorted(p for p in Path(tmp).rglob("*") if p.suffix.lower() == ".shp")
            shp = _pick_shp(shps, layer, f"The zip '{path.name}'")
            return _read_one(shp, encoding, container=path.name)
    if path.is_dir():
        shps = sorted(p for p in path.iterdir() if p.suffix.lower() == ".shp")
        return _read_one(_pick_shp(shps, layer, f"The folder '{path.name}'"), encoding, container=path.name)
    return _read_one(path, encoding, container=None)


def _safe_extract(zf: zipfile.ZipFile, members: list[str], dest: Path) -> None:
    for name in members:
        target = (dest / name).resolve()
        if not str(target).startswith(str(dest.resolve())):
            raise InvalidInputError(f"The zip member '{name}' points outside the archive; refusing it.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(name) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)


def _read_one(shp: Path, encoding: str | None, container: str | None) -> Source:
    check_not_empty(shp)
    label = f"'{shp.name}'" + (f" in '{container}'" if container else "")
    missing = [ext for ext in (".shx", ".dbf") if _sidecar(shp, ext) is None]
    if missing:
        raise InvalidInputError(
            f"The shapefile {label} is incomplete: {' and '.join(missing)} missing. A shapefile is several files "
            "(.shp, .shx, .dbf, and .prj for the coordinate system); send them together, e.g. zipped."
        )
    dbf = _sidecar(shp, ".dbf")
    assert dbf is not None
    notes: list[str] = []
    enc = _choose_encoding(shp, dbf, encoding, notes)
    source = ogr_read(shp, fmt="shp", what=f"the shapefile {label}", encoding=enc)
    source.encoding = enc
    source.layer = shp.stem
    source.notes.extend(notes)
    if _sidecar(shp, ".prj") is None:
        source.crs = None
        source.notes.append("No .prj file: the shapefile does not say which coordinate system it uses.")
    return source


def write_shapefile_zip(
    frame: pd.DataFrame,
    geometry: ObjArray,
    crs: CrsRef,
    out: Path,
    *,
    stem: str,
    encoding: str = "UTF-8",
    geometry_type: str | None = None,
) -> Path:
    """Write a zipped shapefile (``.shp .shx .dbf .prj .cpg``) at ``out``.

    Field names longer than 10 characters are cut by the format (``land_use_code`` →
    ``land_use_c``); the importer recognises the cut names.
    """
    enc = normalise_encoding(encoding)
    with tempfile.TemporaryDirectory(prefix="renewal-shpw-") as tmp:
        shp = Path(tmp) / f"{stem}.shp"
        ogr_write(frame, geometry, crs, shp, driver="ESRI Shapefile", encoding=enc, geometry_type=geometry_type)
        cpg = shp.with_suffix(".cpg")
        cpg.write_text(enc, encoding="ascii")
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, part.name)
    return out
