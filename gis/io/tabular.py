"""CSV and Excel (XLSX) ledgers (台账): a header row, then one feature per row.

Geometry comes from a WKT column (``WKT``, ``geometry``, ``几何`` ...) or from longitude and
latitude columns (``经度``/``纬度``, ``lon``/``lat``, ``X``/``Y`` ...). Every cell is kept as
text, so codes such as ``0701`` keep their leading zero. A ledger has no CRS of its own:
``--crs`` is required. CSV is written as UTF-8 with a BOM so Excel shows Chinese correctly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
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
        lon = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(dtype=float)
        for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat)):
            row_errors.append((int(i), f"'{lon_col}'/'{lat_col}' are not both numbers"))
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


def _sniff_delimiter(text: str) -> str:
    head = text.split("\n", 1)[0]
    counts = {d: head.count(d) for d in (",", "\t", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def read_csv(path: Path, *, encoding: str | None = None) -> Source:
    """Read a CSV ledger (UTF-8 with or without BOM, or GBK/GB18030; detected unless given)."""
    check_not_empty(path)
    data = path.read_bytes()
    if encoding:
        enc = normalise_encoding(encoding)
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            raise InvalidInputError(f"'{path.name}' is not valid {enc} text (as given by --encoding).") from None
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
    """Read an Excel ledger: the chosen (or first) sheet, header in the first non-empty row."""
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
        ws = wb[sheet] if sheet else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header: list[Any] | None = None
        for row in rows:
            if any(v is not None and str(v).strip() for v in row):
                header = list(row)
                break
        if header is None:
            raise InvalidInputError(f"The sheet '{ws.title}' of '{path.name}' is empty.")
        while header and (header[-1] is None or not str(header[-1]).strip()):
            header.pop()
        names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        width = len(names)
        body = [[_cell_text(v) for v in row[:width]] for row in rows]
    finally:
        wb.close()
    frame = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame(columns=names)
    source = _to_source(frame, "xlsx", path.name)
    source.layer = ws.title
    return source


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
