"""CSV and Excel (XLSX) ledgers (台账): a header row, then one feature per row.

Geometry comes from a WKT column (``WKT``, ``geometry``, ``几何`` ...) or from longitude and
latitude columns (``经度``/``纬度``, ``lon``/``lat``, ``X``/``Y`` ...). Every cell is kept as
text, so codes such as ``0701`` keep their leading zero. A ledger has no CRS of its own:
``--crs`` is required. CSV is written as UTF-8 with a BOM so Excel shows Chinese correctly.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis.errors import InvalidInputError
from gis.io._common import Source, check_not_empty, check_zip_size, geometry_array, linearized_note, normalise_encoding
from gis.io._ogr import linear_from_wkt

WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape", "几何", "几何（wkt）", "空间信息", "图形", "坐标串")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "x坐标", "中心点经度", "经度（度）")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬", "y坐标", "中心点纬度", "纬度（度）")
XLSX_CELL_LIMIT = 32767


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("(", "（").replace(")", "）")


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    wanted = [_norm(n) for n in names]
    for want in wanted:
        for col in columns:
            if _norm(col) == want:
                return col
    return None


def geometry_columns(columns: list[str]) -> tuple[str | None, str | None, str | None]:
    """The (wkt, lon, lat) columns of a ledger; WKT wins when both are present."""
    return _find(columns, WKT_NAMES), _find(columns, LON_NAMES), _find(columns, LAT_NAMES)


def _to_source(frame: pd.DataFrame, fmt: str, name: str) -> Source:
    frame = frame.dropna(how="all").reset_index(drop=True)
    columns = [str(c) for c in frame.columns]
    frame.columns = pd.Index(columns)
    wkt_col, lon_col, lat_col = geometry_columns(columns)
    row_errors: list[tuple[int, str]] = []
    notes: list[str] = []
    if wkt_col is not None:
        texts = frame[wkt_col]
        geoms, curved = _from_wkt(texts.where(texts.notna(), None).to_numpy(dtype=object))
        if curved:
            notes.append(linearized_note(curved))
        for i in np.flatnonzero(texts.notna().to_numpy() & shapely.is_missing(geoms)):
            row_errors.append((int(i), f"the {wkt_col} cell is not valid WKT"))
        frame = frame.drop(columns=[wkt_col])
        used = f"WKT column '{wkt_col}'"
    elif lon_col is not None and lat_col is not None:
        lon, lat = coordinate_values(frame[lon_col]), coordinate_values(frame[lat_col])
        for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat)):
            row_errors.append((int(i), f"'{lon_col}'/'{lat_col}' are not both numbers (decimal degrees, metres, "
                                       "or degrees-minutes-seconds such as 114°30′15.5″)"))
        ok = ~(np.isnan(lon) | np.isnan(lat))
        geoms = np.full(len(frame), None, dtype=object)
        geoms[ok] = shapely.points(lon[ok], lat[ok])
        frame = frame.drop(columns=[lon_col, lat_col])
        used = f"coordinate columns '{lon_col}', '{lat_col}'"
    else:
        raise InvalidInputError(
            f"'{name}' has no coordinates: it needs longitude/latitude columns (经度/纬度, lon/lat) or a WKT "
            f"column. Its columns are: {', '.join(columns)}."
        )
    source = Source(
        frame=frame, geometry=geometry_array(geoms), crs=None, format=fmt, layer=Path(name).stem, row_errors=row_errors
    )
    source.notes.append(f"Geometry from the {used}.")
    source.notes.extend(notes)
    return source


def _from_wkt(cells: np.ndarray) -> tuple[np.ndarray, int]:
    """The geometry of each WKT cell (None where it is not WKT), and how many had arcs.

    shapely reads no arcs (``CURVEPOLYGON``, ``CIRCULARSTRING`` ...) and raises for the whole
    column; the cells with arcs are then read by GDAL, which approximates them with straight
    segments (:func:`gis.io._ogr.linear_from_wkt`).
    """
    try:
        return shapely.from_wkt(cells, on_invalid="ignore"), 0
    except NotImplementedError:
        pass
    geoms = np.full(len(cells), None, dtype=object)
    curved: list[int] = []
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        try:
            geoms[i] = shapely.from_wkt(cell, on_invalid="ignore")
        except NotImplementedError:
            curved.append(i)
    if curved:
        geoms[curved] = linear_from_wkt([str(cells[i]) for i in curved])
    return geoms, len(curved)


_DMS = re.compile(
    r"^\s*(?P<sign>[-+]?)\s*(?P<d>\d+(?:\.\d+)?)\s*[°度]\s*"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*['′’分]\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*(?:[\"″”秒]|''|′′)\s*)?(?P<h>[EWNS东西南北]?)\s*$",
    re.IGNORECASE,
)


def coordinate_values(cells: pd.Series) -> np.ndarray:
    """Longitudes or latitudes of ledger cells as floats, NaN where a cell is none.

    Numbers as they are; text in full-width digits (``１１４．５``, typed with a Chinese input
    method) and degrees-minutes-seconds (``114°30′15.5″``, ``114度30分15.5秒``, ``38°02'24"N``)
    as decimal degrees. South and west (S/W/南/西) are negative.
    """
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float, copy=True)
    for i in np.flatnonzero(np.isnan(values) & cells.notna().to_numpy()):
        values[i] = _coordinate_text(str(cells.iloc[i]))
    return values


def _coordinate_text(text: str) -> float:
    plain = unicodedata.normalize("NFKC", text).strip()
    try:
        return float(plain)
    except ValueError:
        pass
    match = _DMS.match(plain)
    if match is None:
        return float("nan")
    minutes, seconds = float(match["m"] or 0), float(match["s"] or 0)
    if minutes >= 60 or seconds >= 60:
        return float("nan")
    value = float(match["d"]) + minutes / 60 + seconds / 3600
    negative = match["sign"] == "-" or match["h"].upper() in ("W", "S") or match["h"] in ("西", "南")
    return -value if negative else value


def _sniff_delimiter(text: str) -> str:
    head = text.split("\n", 1)[0]
    counts = {d: head.count(d) for d in (",", "\t", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def read_csv(path: Path, *, encoding: str | None = None) -> Source:
    """Read a CSV ledger (UTF-8 with or without BOM, UTF-16 with a BOM, or GBK/GB18030; detected unless given)."""
    check_not_empty(path)
    data = path.read_bytes()
    if encoding:
        enc = normalise_encoding(encoding)
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            raise InvalidInputError(f"'{path.name}' is not valid {enc} text (as given by --encoding).") from None
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text": UTF-16, tabs
        try:
            text, enc = data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise InvalidInputError(f"'{path.name}' starts as UTF-16 text but is not valid UTF-16.") from None
    else:
        try:
            text, enc = data.decode("utf-8-sig"), "UTF-8"
        except UnicodeDecodeError:
            try:
                text, enc = data.decode("gb18030"), "GB18030"
            except UnicodeDecodeError:
                raise InvalidInputError(f"'{path.name}' is neither UTF-8 nor GBK text; pass --encoding.") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InvalidInputError(f"'{path.name}' contains no rows.")
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], sep=_sniff_delimiter(text)
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InvalidInputError(f"'{path.name}' is not a well-formed CSV table: {exc}") from exc
    source = _to_source(frame, "csv", path.name)
    source.encoding = enc
    return source


def _cell_text(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def read_xlsx(path: Path, *, sheet: str | None = None) -> Source:
    """Read an Excel ledger: the chosen (or first visible) sheet, its header below any title rows.

    The header is the first row naming the coordinates (or WKT) among the first
    :data:`TITLE_ROWS_MAX` + 1 non-empty rows, else the first of 3+ text cells, else the first
    non-empty row; the title rows above it are named in a note. Repeated column names are made
    unique as pandas' CSV reader makes them (``名称``, ``名称.1``).
    """
    from openpyxl import load_workbook

    check_not_empty(path)
    try:
        with zipfile.ZipFile(path) as zf:  # an .xlsx is a zip of XML: refuse a bomb before openpyxl unpacks it
            check_zip_size(zf, path.name)
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInputError(f"'{path.name}' is not a readable Excel (.xlsx) workbook: {exc}") from exc
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InvalidInputError(f"'{path.name}' has no sheet '{sheet}'. Sheets: {', '.join(wb.sheetnames)}.")
        visible = [w for w in wb.worksheets if getattr(w, "sheet_state", "visible") == "visible"]
        ws = wb[sheet] if sheet else (visible or wb.worksheets)[0]
        rows = ws.iter_rows(values_only=True)
        head: list[tuple[Any, ...]] = []  # the first non-empty rows, until one names the coordinates
        kinds: list[int] = []
        for row in rows:
            if any(v is not None and str(v).strip() for v in row):
                head.append(row)
                kinds.append(_header_kind(row))
                if kinds[-1] == 2 or len(head) > TITLE_ROWS_MAX:
                    break
        if not head:
            raise InvalidInputError(f"The sheet '{ws.title}' of '{path.name}' is empty.")
        k = kinds.index(max(kinds)) if max(kinds) else 0
        header, above, rest = list(head[k]), head[:k], head[k + 1:]
        while header and (header[-1] is None or not str(header[-1]).strip()):
            header.pop()
        given = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        names = _unique_names(given)
        width = len(names)
        body = [[_cell_text(v) for v in row[:width]] for row in [*rest, *rows]]
    finally:
        wb.close()
    frame = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame(columns=names)
    source = _to_source(frame, "xlsx", path.name)
    source.layer = ws.title
    if above:
        source.notes.append(
            f"The header is the row after {len(above)} title row(s) of the sheet '{ws.title}' (first: "
            f"'{next(str(v) for v in above[0] if v is not None and str(v).strip())[:60]}'), skipped."
        )
    renamed = [n for n, g in zip(names, given, strict=True) if n != g]
    if renamed:
        source.notes.append(f"Repeated column names were made unique, as CSV readers do: {', '.join(renamed)}.")
    return source


TITLE_ROWS_MAX = 10
"""How many rows above the header an Excel ledger may have (a title, a unit, a date) before the first is taken."""


def _header_kind(row: tuple[Any, ...]) -> int:
    """2 if a sheet row names the ledger's coordinates (or WKT), 1 if it is 3+ text cells, else 0.

    The header is the first row of the highest kind among the first rows: a title above it
    (石家庄市……台账, merged across the columns) is one cell, a line such as 填报单位：…… 日期：……
    names no coordinates.
    """
    names = [str(v).strip() for v in row if v is not None and str(v).strip()]
    wkt, lon, lat = geometry_columns(names)
    if wkt is not None or (lon is not None and lat is not None):
        return 2
    texts = [v for v in row if v is not None and str(v).strip()]
    return 1 if len(texts) >= 3 and all(isinstance(v, str) for v in texts) else 0


def _unique_names(names: list[str]) -> list[str]:
    """Column names made unique as pandas' CSV reader does: a repeated ``名称`` becomes ``名称.1``, ``名称.2`` ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}.{seen[name]}"
            seen[candidate] = 0
            out.append(candidate)
        else:
            seen[name] = 0
            out.append(name)
    return out


def write_csv(frames: Iterable[pd.DataFrame], out: Path, *, encoding: str = "UTF-8") -> Path:
    """Write a CSV table from one or more frames of the same columns, appended in turn (the header once).

    UTF-8 gets a BOM so Excel opens Chinese headers correctly; the file is opened once, so the BOM
    is written once whatever the number of frames. At least one frame is needed (it gives the header).
    """
    enc = normalise_encoding(encoding)
    with out.open("w", encoding="utf-8-sig" if enc in ("UTF-8", "UTF8") else enc, newline="") as fh:
        for i, frame in enumerate(frames):
            frame.to_csv(fh, index=False, header=i == 0)
    return out


SHEET_TITLE_MAX = 31
_SHEET_FORBIDDEN = str.maketrans({"/": "／", "\\": "＼", ":": "：", "*": "＊", "?": "？", "[": "［", "]": "］"})


def sheet_title(name: str) -> str:
    """``name`` as an Excel sheet title: the seven characters Excel forbids become their full-width forms.

    Why: layer titles such as "宗地/地块" are not valid sheet names (Excel and openpyxl refuse the slashes,
    colon, asterisk, question mark and square brackets); the full-width forms read the same to a
    Chinese user. At most 31 characters, no leading or trailing apostrophe, never empty.
    """
    title = name.translate(_SHEET_FORBIDDEN).strip("'")[:SHEET_TITLE_MAX].strip("'")
    return title or "Sheet1"


def write_xlsx(frame: pd.DataFrame, out: Path, *, sheet: str) -> Path:
    """Write an Excel workbook: bold header row, frozen, one row per feature."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title(sheet))
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in frame.columns:
        cell = WriteOnlyCell(ws, value=str(name))
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for row in frame.itertuples(index=False, name=None):
        ws.append([None if (isinstance(v, float) and np.isnan(v)) or v is pd.NA else v for v in row])
    wb.save(out)
    return out
