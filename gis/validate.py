"""Geometry checks for imports: what is wrong, where, and the likely cause.

Everything here is vectorised over numpy arrays of shapely geometries (a parcel file has a
million rows). Each problem is a :class:`GeometryIssue` naming the row, the kind, a message
a GIS officer understands and, where it helps, a location. Coordinates outside the city are
explained: swapped latitude/longitude, a Gauss-Krüger file read with the wrong zone (false
easting with or without the zone number), or projected metres declared as degrees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely

from gis.crs import STORAGE, CrsRef, Extent, gauss_kruger_candidates, proj_crs, transform_coords, transform_geometry

ObjArray = npt.NDArray[np.object_]
OnInvalid = Literal["repair", "reject"]

ACCEPTED_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "MultiPolygon": ("Polygon", "MultiPolygon"),
    "Polygon": ("Polygon",),
    "MultiLineString": ("LineString", "MultiLineString"),
    "LineString": ("LineString",),
    "Point": ("Point", "MultiPoint"),
    "MultiPoint": ("Point", "MultiPoint"),
}
"""Source geometry types a layer type accepts (singles are promoted to multi in SQL)."""

FAMILY: Final[dict[str, str]] = {
    "Point": "points",
    "MultiPoint": "points",
    "LineString": "lines",
    "MultiLineString": "lines",
    "LinearRing": "lines",
    "Polygon": "polygons",
    "MultiPolygon": "polygons",
    "GeometryCollection": "mixed",
}

@dataclass(frozen=True)
class GeometryIssue:
    """One problem with one feature's geometry (``row`` is 0-based; -1 for the whole file)."""

    row: int
    kind: str
    message: str
    location: tuple[float, float] | None = None


@dataclass
class GeometryCheck:
    """The outcome of :func:`check_geometries`.

    Attributes
    ----------
    geometry
        Geometries in CGCS2000 (EPSG:4490), 2-D; None where the row has an error.
    errors
        Problems that stop the import.
    warnings
        Problems the import fixes (repaired rings, dropped heights).
    repair_rows
        Rows whose geometry is invalid and will be repaired with ``ST_MakeValid`` in SQL.
    explanation
        For coordinates outside the city: the likely cause, once for the file.
    """

    geometry: ObjArray
    errors: list[GeometryIssue] = field(default_factory=list)
    warnings: list[GeometryIssue] = field(default_factory=list)
    repair_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    explanation: str | None = None
    promoted: int = 0


_REASON = re.compile(r"^(?P<reason>[^\[]+)\[(?P<x>[-+\deE.]+) (?P<y>[-+\deE.]+)\]")


TOO_FEW_POINTS = "Too few points"
"""GEOS's reason for a ring of fewer than 4 points or a line of one: no repair can start from it."""


def parse_reason(text: str) -> tuple[str, tuple[float, float] | None]:
    """Split shapely's ``is_valid_reason`` (``'Self-intersection[114.5 38.0]'``) into reason and location."""
    m = _REASON.match(text)
    if not m:
        return text, None
    return m.group("reason").strip(), (float(m.group("x")), float(m.group("y")))


def in_city(x: npt.ArrayLike, y: npt.ArrayLike, extent: Extent) -> npt.NDArray[np.bool_]:
    """Whether lon/lat points lie inside the city's ``extent`` (with a margin)."""
    return extent.contains(x, y)


def _is_geographic(ref: CrsRef) -> bool:
    if ref.kind != "epsg":
        return True
    assert ref.epsg is not None
    return bool(proj_crs(ref.epsg).is_geographic)


def fitting_crs(x: float, y: float, extent: Extent) -> list[int]:
    """Gauss-Krüger EPSG codes under which the projected point (x, y) falls inside ``extent``."""
    out = []
    for code in gauss_kruger_candidates(extent.centre[0]):
        with np.errstate(all="ignore"):
            lon, lat = transform_coords(CrsRef("epsg", code), STORAGE, [x], [y])
        if bool(in_city(lon, lat, extent)[0]):
            out.append(code)
    return out


def _names(codes: list[int]) -> str:
    return "; ".join(f"EPSG:{c} ({proj_crs(c).name})" for c in codes)


def explain_outside(x: float, y: float, declared: CrsRef, extent: Extent) -> str:
    """The likely reason why a point given as (x, y) in ``declared`` falls outside the city's ``extent``."""
    minx, miny, maxx, maxy = extent.as_tuple()
    where = f"The coordinates ({x:.6g}, {y:.6g}) read as {declared.label} fall outside {extent.name}"
    box = f"({extent.describe()})"
    if _is_geographic(declared):
        if bool(in_city([y], [x], extent)[0]):
            return (
                f"{where}: they look like latitude/longitude in swapped order ({x:.6g} is a latitude). "
                "Swap the X/Y (longitude/latitude) columns or axes and import again."
            )
        if abs(x) > 180 or abs(y) > 90:
            fits = fitting_crs(x, y, extent)
            zone = _zone_hint(x)
            if fits:
                return (
                    f"{where}: these are projected metres, not degrees, so the file's CRS is declared wrongly. "
                    f"{zone}They fit {_names(fits)}; import with --crs EPSG:{fits[0]}."
                )
            return (
                f"{where}: values beyond ±180/±90 are not degrees; the file is projected (metres) but declared "
                "as degrees. Pass --crs with its real CRS."
            )
        return f"{where} {box}: is this the right file, and is its CRS right?"
    if minx - 5 <= x <= maxx + 5 and miny - 5 <= y <= maxy + 5:
        return (
            f"{where}: these are degrees, but the CRS says projected metres. "
            "Import with --crs EPSG:4490 (or gcj02 for coordinates from Gaode/web maps)."
        )
    fits = [c for c in fitting_crs(x, y, extent) if c != declared.epsg]
    zone = _zone_hint(x)
    if fits:
        return (
            f"{where}: the Gauss-Krüger zone or its false easting does not match. {zone}"
            f"They fit {_names(fits)}; import with --crs EPSG:{fits[0]}."
        )
    return f"{where} {box}. Check the CRS (--crs) and that this is the right file."


def _zone_hint(x: float) -> str:
    if abs(x) >= 1e7:
        zone = int(abs(x) // 1e6)
        return f"The easting {x:.0f} starts with the zone number {zone} (a 'zoned' Gauss-Krüger CRS, not a 'CM' one). "
    if 1e5 <= abs(x) < 1e6:
        return f"The easting {x:.0f} has no zone number (a 'CM' Gauss-Krüger CRS). "
    return ""


def check_geometries(
    geoms: ObjArray,
    *,
    src_crs: CrsRef,
    target_type: str,
    extent: Extent,
    on_invalid: OnInvalid = "repair",
    drop_z: bool = False,
    layer_label: str = "the layer",
    suggest_layers: Callable[[str], list[str]] | None = None,
) -> GeometryCheck:
    """Check and transform a file's geometries for a layer of ``target_type`` (all rows in one batch).

    Parameters
    ----------
    geoms
        Shapely geometries (or None) in ``src_crs``.
    src_crs
        The CRS of the coordinates.
    extent
        The city's lon/lat box: rows outside it are errors, with the likely cause explained.
    target_type
        The layer's geometry type (``MultiPolygon`` ...).
    on_invalid
        ``repair``: invalid geometries become warnings and are listed in ``repair_rows``;
        ``reject``: they are errors.
    drop_z
        Drop heights/measures (with a warning) instead of rejecting 3-D/measured geometries.
    layer_label
        How to name the layer in messages.
    suggest_layers
        Given a family (``points``, ``lines``, ``polygons``), the layers that hold it.
    """
    checker = GeometryChecker(
        src_crs=src_crs,
        target_type=target_type,
        extent=extent,
        on_invalid=on_invalid,
        drop_z=drop_z,
        layer_label=layer_label,
        suggest_layers=suggest_layers,
    )
    out = checker.check(geoms)
    result = checker.finish()
    result.geometry = out
    return result


_TYPE_NAMES: Final = np.array(
    ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
     "GeometryCollection"],
    dtype=object,
)


class GeometryChecker:
    """:func:`check_geometries` batch by batch, for files read in batches (a million parcels in 100,000s).

    :meth:`check` checks one batch (its rows numbered from ``start`` in the file) and returns its
    geometries in CGCS2000; :meth:`finish` adds what needs the whole file and returns the
    :class:`GeometryCheck` (without ``geometry``). The result is the same as checking all rows at
    once: the file-wide findings (duplicate geometries across batches, a whole file of another
    geometry type, one warning for dropped heights, the explanation of the first row outside the
    city) are gathered across batches. Duplicates: every row's bounds and number of coordinates
    are kept (40 bytes); only rows sharing them with another row are read again (from the batch's
    WKB, kept in Arrow buffers) and compared on their normalised WKB.
    """

    def __init__(
        self,
        *,
        src_crs: CrsRef,
        target_type: str,
        extent: Extent,
        on_invalid: OnInvalid = "repair",
        drop_z: bool = False,
        layer_label: str = "the layer",
        suggest_layers: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.src_crs, self.target_type, self.extent = src_crs, target_type, extent
        self.on_invalid, self.drop_z = on_invalid, drop_z
        self.layer_label, self.suggest_layers = layer_label, suggest_layers
        self.errors: list[GeometryIssue] = []
        self.warnings: list[GeometryIssue] = []
        self._repair: list[npt.NDArray[np.int64]] = []
        self._explanation: str | None = None
        self._promoted = 0
        self._zm_count = 0
        self._zm_first = -1
        self._has_z = False
        self._zm_rows: list[npt.NDArray[np.int64]] = []
        self._wrong_rows: list[npt.NDArray[np.int64]] = []
        self._wrong_names: list[ObjArray] = []
        self._not_bad = 0
        self.last_repair_rows: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        """Rows (of the file) of the last batch to repair (``on_invalid='repair'``)."""
        self._prints: list[npt.NDArray[np.float64]] = []
        self._print_rows: list[npt.NDArray[np.int64]] = []
        self._raw: list[tuple[int, ObjArray | pa.Array]] = []

    def check(self, geoms: ObjArray, start: int = 0, wkb: pa.Array | None = None) -> ObjArray:
        """Check one batch whose first row is row ``start`` of the file; its geometries in EPSG:4490.

        None where the row has an error. ``wkb``: the batch's geometries as read (WKB), kept (instead
        of ``geoms``) to look at again the few rows that may duplicate a row of another batch.
        """
        n = len(geoms)
        self._raw.append((start, wkb if wkb is not None else geoms))
        errors = self.errors
        self.last_repair_rows = np.empty(0, dtype=np.int64)
        bad = np.zeros(n, dtype=bool)
        g = np.asarray(geoms, dtype=object)

        missing = shapely.is_missing(g)
        for i in np.flatnonzero(missing):
            errors.append(GeometryIssue(start + int(i), "missing", "the feature has no geometry"))
        bad |= missing
        empty = ~bad & shapely.is_empty(g)
        for i in np.flatnonzero(empty):
            errors.append(GeometryIssue(start + int(i), "empty", "the geometry is empty (no coordinates)"))
        bad |= empty

        coords, idx = shapely.get_coordinates(g, include_z=True, return_index=True)
        nonfinite = ~np.isfinite(coords[:, :2]).all(axis=1) if len(coords) else np.zeros(0, dtype=bool)
        nan_rows = np.unique(idx[nonfinite])
        for i in nan_rows:
            errors.append(GeometryIssue(start + int(i), "nan", "the geometry has NaN or infinite coordinates"))
        bad[nan_rows] = True

        has_z = ~bad & shapely.has_z(g)
        has_m = ~bad & _has_m(g)
        zm = has_z | has_m
        if zm.any():
            self._has_z = self._has_z or bool(has_z.any())
            if self.drop_z:
                g = g.copy()
                g[zm] = shapely.force_2d(g[zm])
                if self._zm_first < 0:
                    self._zm_first = start + int(np.flatnonzero(zm)[0])
                self._zm_count += int(zm.sum())
            else:  # listed by finish(): the message names heights if any row of the file has them
                self._zm_rows.append(np.flatnonzero(zm).astype(np.int64) + start)
                bad |= zm

        types = shapely.get_type_id(g)
        names: ObjArray = np.asarray(np.where(types >= 0, _TYPE_NAMES[np.clip(types, 0, 7)], None), dtype=object)
        accepted = ACCEPTED_TYPES[self.target_type]
        wrong = ~bad & ~np.isin(names, accepted)
        if self.target_type == "Point":
            multi = ~bad & ~wrong & (names == "MultiPoint")
            many = multi & (shapely.get_num_geometries(g) != 1)
            wrong |= many
        self._not_bad += int((~bad).sum())
        if wrong.any():
            self._wrong_rows.append(np.flatnonzero(wrong).astype(np.int64) + start)
            self._wrong_names.append(names[wrong])
            bad |= wrong

        out = np.full(n, None, dtype=object)
        ok = ~bad
        extent = self.extent
        if ok.any():
            with np.errstate(all="ignore"):
                out[ok] = transform_geometry(g[ok], self.src_crs, STORAGE)
            bounds = shapely.bounds(out[ok])
            inside = in_city(bounds[:, 0], bounds[:, 1], extent) & in_city(bounds[:, 2], bounds[:, 3], extent)
            outside_rows = np.flatnonzero(ok)[~inside]
            if len(outside_rows):
                if self._explanation is None:
                    x0, y0 = shapely.get_coordinates(g[outside_rows[0]])[0]
                    self._explanation = explain_outside(float(x0), float(y0), self.src_crs, extent)
                for i in outside_rows:
                    x, y = shapely.get_coordinates(g[i])[0]
                    errors.append(
                        GeometryIssue(
                            start + int(i),
                            "outside_city",
                            f"coordinates ({x:.6g}, {y:.6g}) fall outside {extent.name}",
                            (float(x), float(y)),
                        )
                    )
                out[outside_rows] = None
                ok[outside_rows] = False

        if ok.any():
            valid = np.ones(n, dtype=bool)
            valid[ok] = shapely.is_valid(out[ok])
            invalid = np.flatnonzero(~valid)
            if len(invalid):
                reasons = shapely.is_valid_reason(out[invalid])
                repairable = np.ones(len(invalid), dtype=bool)
                for k, (i, text) in enumerate(zip(invalid, reasons, strict=True)):
                    reason, loc = parse_reason(str(text))
                    where = f" at ({loc[0]:.6f}, {loc[1]:.6f})" if loc else ""
                    # PostGIS refuses to even read a ring of fewer than 4 points, so ST_MakeValid cannot see it
                    repairable[k] = not reason.startswith(TOO_FEW_POINTS)
                    if self.on_invalid == "repair" and repairable[k]:
                        self.warnings.append(
                            GeometryIssue(
                                start + int(i),
                                "repaired",
                                f"invalid geometry ({reason}{where}) repaired with ST_MakeValid",
                                loc,
                            )
                        )
                    elif not repairable[k]:
                        errors.append(
                            GeometryIssue(
                                start + int(i),
                                "invalid",
                                f"invalid geometry: {reason}{where}. A polygon ring needs at least 3 corners (4 "
                                "points with the closing one) and a line 2 points; this cannot be repaired: fix or "
                                "remove it",
                                loc,
                            )
                        )
                    else:
                        errors.append(
                            GeometryIssue(
                                start + int(i),
                                "invalid",
                                f"invalid geometry: {reason}{where}. Fix it, or import with --on-invalid repair",
                                loc,
                            )
                        )
                if self.on_invalid == "repair":
                    self.last_repair_rows = invalid[repairable].astype(np.int64) + start
                    self._repair.append(self.last_repair_rows)
                    dropped = invalid[~repairable]
                else:
                    dropped = invalid
                out[dropped] = None
                ok[dropped] = False

        if ok.any():
            rows = np.flatnonzero(ok)
            # a fingerprint (bounds, number of coordinates) equal for any two equal geometries: only rows
            # sharing one with another row are compared exactly, in finish()
            kept = out[rows]
            self._prints.append(np.column_stack([shapely.bounds(kept), shapely.get_num_coordinates(kept)]))
            self._print_rows.append(rows.astype(np.int64) + start)

        if self.target_type.startswith("Multi") and ok.any():
            self._promoted += int(np.isin(names[ok], ("Polygon", "LineString", "Point")).sum())
        return out

    def finish(self) -> GeometryCheck:
        """The file-wide findings added to the batches' (``geometry`` is left empty)."""
        errors = self.errors
        what = "heights (Z)" if self._has_z else "measures (M)"
        for i in np.concatenate(self._zm_rows) if self._zm_rows else []:
            errors.append(
                GeometryIssue(int(i), "3d", f"the geometry has {what}; layers are 2-D. Pass --drop-z to drop them")
            )
        self._finish_wrong_types()
        self._finish_duplicates()
        warnings = self.warnings
        if self._zm_count:
            warnings = [
                GeometryIssue(
                    self._zm_first, "z_dropped", f"{self._zm_count} geometries had {what}; dropped (layers are 2-D)"
                ),
                *warnings,
            ]
        return GeometryCheck(
            geometry=np.empty(0, dtype=object),
            errors=errors,
            warnings=warnings,
            repair_rows=np.concatenate(self._repair) if self._repair else np.empty(0, dtype=np.int64),
            explanation=self._explanation,
            promoted=self._promoted,
        )

    def _finish_wrong_types(self) -> None:
        if not self._wrong_rows:
            return
        rows = np.concatenate(self._wrong_rows)
        names = np.concatenate(self._wrong_names)
        found = pd.Series(names).value_counts()
        want = FAMILY[self.target_type]
        if len(rows) == self._not_bad and len(found) == 1:
            fam = FAMILY.get(str(found.index[0]), "mixed")
            others = self.suggest_layers(fam) if self.suggest_layers else []
            hint = f" It looks like a file for: {', '.join(others)}." if others else ""
            msg = (
                f"the file holds {found.index[0]} features, but {self.layer_label} holds {want} "
                f"({self.target_type}).{hint}"
            )
            # the whole file is of another type: one file-level error (row -1), not one per feature
            self.errors.append(GeometryIssue(-1, "wrong_type", msg[0].upper() + msg[1:]))
            return
        msg = f"this feature is a {{}}, but {self.layer_label} holds {want} ({self.target_type}); the file mixes types"
        for i, name in zip(rows, names, strict=True):
            self.errors.append(GeometryIssue(int(i), "wrong_type", msg.format(name)))

    def _finish_duplicates(self) -> None:
        """Duplicate geometries (same normalised shape) across the file, each naming the first of its kind."""
        if not self._prints:
            return
        prints = np.concatenate(self._prints)
        rows = np.concatenate(self._print_rows)
        self._prints, self._print_rows = [], []
        maybe = pd.DataFrame(prints).duplicated(keep=False).to_numpy()
        if not maybe.any():
            return
        cand = rows[maybe]  # in file order
        g = self._raw_geometries(cand)
        if self.drop_z:
            g = shapely.force_2d(g)
        with np.errstate(all="ignore"):
            out = transform_geometry(g, self.src_crs, STORAGE)
        keys = pd.Series(shapely.to_wkb(shapely.normalize(out)), index=cand)
        dup = keys.duplicated(keep="first")
        if not dup.any():
            return
        first_of = {k: int(i) for i, k in zip(keys.index[~dup], keys.to_numpy()[~dup], strict=True)}
        for i, k in zip(keys.index[dup], keys.to_numpy()[dup], strict=True):
            self.errors.append(
                GeometryIssue(int(i), "duplicate_geometry", f"the same geometry as feature {first_of[k] + 1}")
            )

    def _raw_geometries(self, rows: npt.NDArray[np.int64]) -> ObjArray:
        """The geometries of ``rows`` (sorted) as the batches gave them."""
        parts: list[ObjArray] = []
        for start, raw in self._raw:
            size = len(raw)
            idx = rows[(rows >= start) & (rows < start + size)] - start
            if not len(idx):
                continue
            if isinstance(raw, np.ndarray):
                parts.append(raw[idx])
            else:
                parts.append(np.asarray(shapely.from_wkb(raw.take(pa.array(idx)).to_numpy(zero_copy_only=False))))
        return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _has_m(g: ObjArray) -> npt.NDArray[np.bool_]:
    fn = getattr(shapely, "has_m", None)
    if fn is None:
        return np.zeros(len(g), dtype=bool)
    return np.asarray(fn(g), dtype=bool)
