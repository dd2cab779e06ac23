"""What every reader returns, and helpers shared by the format modules.

A reader turns one file into a :class:`Source`: attribute columns exactly as the file
names them (a pandas DataFrame of the raw values), one shapely geometry per row (or
None), and the CRS the file declares (or None). Readers do not map, transform or
validate: the importer does that for every format alike, so a GBK shapefile and an
Excel ledger get the same checks and the same report.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from gis.crs import CrsRef, parse_crs
from gis.errors import CRSError, InvalidInputError

ObjArray = npt.NDArray[np.object_]


@dataclass(kw_only=True)
class SourceInfo:
    """What a reader knows about one input file besides its rows: shared by :class:`Source` and :class:`SourceStream`.

    Why one class: a file read whole and a file read batch by batch describe themselves the
    same way, and :meth:`Source.as_stream` carries this over field by field
    (:meth:`info_fields`); a field added here reaches both and the copy. Keyword-only, so the
    subclasses keep their own positional fields first.

    Attributes
    ----------
    crs
        The CRS the file declares, None when it declares none.
    format
        ``shp``, ``gpkg``, ``geojson``, ``kml``, ``csv`` or ``xlsx``.
    crs_implicit
        True when the CRS comes from the format rather than the file (GeoJSON and KML are
        WGS84 by definition), so an explicit ``--crs`` (e.g. GCJ02 for web downloads) wins silently.
    layer
        The layer read (GeoPackage/KML), if any.
    encoding
        The text encoding used for attributes (shapefile/CSV), if relevant.
    layers_available
        Every layer of a multi-layer file (GeoPackage, KML).
    notes
        Things the reader did on the officer's behalf (encoding detected, Z dropped ...).
    row_errors
        (row index, message) for rows the reader could not turn into a geometry (bad WKT ...).
    """

    crs: CrsRef | None
    format: str
    crs_implicit: bool = False
    layer: str | None = None
    encoding: str | None = None
    layers_available: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    row_errors: list[tuple[int, str]] = field(default_factory=list)

    def info_fields(self) -> dict[str, Any]:
        """The :class:`SourceInfo` fields of this object, as keyword arguments (the lists shared, not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(SourceInfo)}


@dataclass
class Source(SourceInfo):
    """The content of one input file, before mapping and validation.

    Attributes
    ----------
    frame
        Attribute columns as the file names them, raw values, one row per feature.
    geometry
        One shapely geometry (or None) per row, in the file's coordinates.

    The file's CRS, format, layer, encoding, notes ... are those of :class:`SourceInfo`.
    """

    frame: pd.DataFrame
    geometry: ObjArray

    def __len__(self) -> int:
        return len(self.geometry)

    def as_stream(self) -> SourceStream:
        """The source as a stream of one batch (formats read whole: every file but a GeoPackage)."""

        def batches() -> Iterator[SourceBatch]:
            yield SourceBatch(frame=self.frame, geometry=self.geometry, start=0)

        return SourceStream(columns=[str(c) for c in self.frame.columns], total=len(self), batches=batches,
                            **self.info_fields())


@dataclass
class SourceBatch:
    """Consecutive rows of an input file: their attributes, geometries, and the file row of the first (0-based)."""

    frame: pd.DataFrame
    geometry: ObjArray
    start: int
    wkb: Any = None
    """The geometries as read, WKB (a ``pyarrow`` binary array), when the reader has them: compact to keep."""
    linearized: int = 0
    """How many of the batch's geometries were of curve types, read as straight-edged (:func:`linearized_note`)."""


@dataclass
class SourceStream(SourceInfo):
    """An input file read batch by batch, so a million-row file never sits in memory whole.

    The file's metadata is that of :class:`SourceInfo` (read from the file's header), plus ``columns``
    (the attribute columns, as the file names them) and ``total`` (the number of rows the file
    declares). ``batches()`` reads the rows, in file order; it may raise
    :class:`gis.errors.InvalidInputError` for damage found on the way.
    """

    columns: list[str]
    total: int
    batches: Callable[[], Iterator[SourceBatch]]


def crs_from_wkt(wkt_or_code: str | None, what: str) -> CrsRef | None:
    """The :class:`CrsRef` of a CRS read by GDAL (``EPSG:4547`` or WKT), None if there is none.

    Raises
    ------
    CRSError
        If the file declares a CRS with no EPSG equivalent (a custom ``.prj``); the officer
        must then say which CRS the coordinates are in.
    """
    if not wkt_or_code:
        return None
    text = str(wkt_or_code)
    if text.upper().startswith("EPSG:"):
        return parse_crs(text)
    from pyproj import CRS

    try:
        crs = CRS.from_user_input(text)
    except Exception as exc:  # pyproj raises several types
        raise CRSError(f"The coordinate system declared by {what} cannot be read; pass --crs.") from exc
    auth = crs.to_authority(min_confidence=70)
    if auth is not None and auth[0].upper() == "OGC" and auth[1].upper() == "CRS84":
        return CrsRef("crs84")
    code = crs.to_epsg(min_confidence=70)
    if code is None:
        raise CRSError(
            f"The coordinate system declared by {what} ('{crs.name}') has no EPSG equivalent; "
            "pass --crs with the EPSG code of the coordinates (e.g. EPSG:4547 for CGCS2000 Gauss-Krüger 114°E)."
        )
    return CrsRef("epsg", code)


def check_not_empty(path: Path) -> None:
    """Refuse a missing or zero-byte file with a clear message."""
    if not path.exists():
        raise InvalidInputError(f"The file '{path.name}' does not exist.")
    if path.is_file() and path.stat().st_size == 0:
        raise InvalidInputError(f"The file '{path.name}' is empty (0 bytes).")


MAX_ZIP_UNCOMPRESSED_BYTES: Final = 4 * 1024**3
"""Largest total a zip (a zipped shapefile, an .xlsx) may unpack to: 4 GiB, a city's parcels many times over."""
MAX_ZIP_RATIO: Final = 200
"""Highest unpacked/packed ratio for archives unpacking to more than :data:`ZIP_RATIO_FLOOR_BYTES`.

Real shapefiles and workbooks compress 3-50x (a DBF of blank text columns, up to ~100x); a zip
bomb is near deflate's limit of ~1,000x.
"""
ZIP_RATIO_FLOOR_BYTES: Final = 100 * 1024**2


def check_zip_size(zf: zipfile.ZipFile, name: str, *, max_bytes: int = MAX_ZIP_UNCOMPRESSED_BYTES,
                   max_ratio: float = MAX_ZIP_RATIO) -> None:
    """Refuse an archive that would unpack too large or too suspiciously (a zip bomb), before unpacking.

    Reads only the central directory. A member whose header understates its size cannot unpack
    more than stated: :mod:`zipfile` stops reading a member at its declared size.
    """
    unpacked = sum(i.file_size for i in zf.infolist())
    packed = sum(i.compress_size for i in zf.infolist())
    if unpacked > max_bytes:
        raise InvalidInputError(f"'{name}' would unpack to {unpacked / 1024**3:.1f} GiB; the limit is "
                                f"{max_bytes / 1024**3:.1f} GiB. Split the data into several files.")
    if unpacked > ZIP_RATIO_FLOOR_BYTES and unpacked > max_ratio * max(packed, 1):
        raise InvalidInputError(f"'{name}' unpacks {unpacked / max(packed, 1):.0f} times larger than it is "
                                f"(limit {max_ratio:.0f}x); that is how a zip bomb looks, so it is refused. "
                                "Zip the original files again.")


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip archive, turning damage into a message an officer understands.

    Member names are read as the archive was written: UTF-8 where it says so, else GB18030 when
    every such name is valid in it (zip tools on Chinese Windows write GBK names without the
    UTF-8 flag; read as the zip default, code page 437, ``地块.shp`` became ``╡╪┐Θ.shp``),
    else code page 437.
    """
    try:
        zf = zipfile.ZipFile(path, metadata_encoding=_member_name_encoding(path))
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InvalidInputError(
            f"'{path.name}' is not a readable zip archive (truncated or damaged: {exc}). Zip the files again."
        ) from exc
    try:
        check_zip_size(zf, path.name)
        bad = zf.testzip()
        if bad is not None:
            raise InvalidInputError(f"'{path.name}' is damaged: the member '{bad}' fails its checksum. Zip it again.")
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        zf.close()
        raise InvalidInputError(
            f"'{path.name}' is not a readable zip archive (truncated or damaged: {exc}). Zip the files again."
        ) from exc
    except InvalidInputError:
        zf.close()  # refused: do not leave the archive open
        raise
    return zf


def _member_name_encoding(path: Path) -> str | None:
    """GB18030 if the archive's names without the UTF-8 flag are non-ASCII and all valid GB18030; else None (cp437)."""
    try:
        with zipfile.ZipFile(path) as zf:
            legacy = [i.filename.encode("cp437") for i in zf.infolist() if not i.flag_bits & _UTF8_FLAG]
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeEncodeError):
        return None  # open_zip reports the damage
    if not any(not name.isascii() for name in legacy):
        return None
    return "gb18030" if all(decode_or_none(name, "gb18030") is not None for name in legacy) else None


_UTF8_FLAG = 0x800
"""The zip general-purpose flag bit saying a member's name is UTF-8."""


def decode_or_none(data: bytes, encoding: str) -> str | None:
    """``data`` decoded strictly, or None if it is not valid in ``encoding``."""
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def detect_chinese_encoding(data: bytes) -> str:
    """UTF-8 if ``data`` decodes as UTF-8, else GB18030 (a superset of GBK/GB2312) if it decodes as that.

    Raises
    ------
    InvalidInputError
        If neither decodes: the officer must say which encoding the file uses.
    """
    if decode_or_none(data, "utf-8") is not None:
        return "UTF-8"
    if decode_or_none(data, "gb18030") is not None:
        return "GB18030"
    raise InvalidInputError(
        "The text in this file is neither UTF-8 nor GBK/GB18030; pass --encoding with its encoding."
    )


def normalise_encoding(name: str) -> str:
    """Canonical spelling of an encoding name (``gbk`` → ``GBK``), or an error for an unknown one."""
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        raise InvalidInputError(f"'{name}' is not a known text encoding (try UTF-8, GBK or GB18030).") from None
    return name.upper().replace("_", "-")


def linearized_note(count: int) -> str:
    """The report's note for ``count`` geometries of curve types, read as straight-edged geometries."""
    return (
        f"{count} geometr{'y' if count == 1 else 'ies'} of curve types (CircularString, CompoundCurve, CurvePolygon, "
        "MultiCurve, MultiSurface) read as straight-edged: each arc approximated by straight segments of at most 4° "
        "of arc, as GDAL does (ogr2ogr -nlt CONVERT_TO_LINEAR) and QGIS draws them. The toolkit stores straight-edged "
        "geometries."
    )


def geometry_array(values: Any) -> ObjArray:
    """A 1-d object array of shapely geometries (None for missing)."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr
