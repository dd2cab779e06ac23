"""Static PNG maps for reports, drawn with matplotlib from PostGIS (no network, no tiles).

Geometries are read in the city's Gauss-Krüger zone (its profile's ``area_srid``; EPSG:4547,
114°E, for Shijiazhuang) so shapes are true,
simplified in the database for the page's resolution. Status colours and labels come from
the registry (one vocabulary for every output); the status of a feature as of a date is
the rule of :mod:`layers.history`.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: must come before pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
import shapely  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from psycopg import sql  # noqa: E402

from layers import city  # noqa: E402
from layers.history import Params, status_join  # noqa: E402
from layers.models import Layer  # noqa: E402
from layers.registry import get_registry  # noqa: E402

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei")
SIMPLIFY_M = 15.0
"""Simplification tolerance in metres (a 16 cm wide map of ~40 km: 1 px ≈ 20 m)."""
DPI = 150


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font family that has Chinese glyphs (None: labels may show boxes)."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in names:
            return family
    for path in font_manager.findSystemFonts():
        if "cjk" in path.lower() or "wqy" in path.lower():
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None


def _style() -> Any:
    family = cjk_font()
    return {"font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"], "axes.unicode_minus": False}


def feature_status_sql(layer: Layer, as_of: dt.date, srid: int) -> tuple[sql.Composed, Params]:
    """``code, name, district_code, status, wkb`` of the features that exist on ``as_of``, with their status then.

    The status as of the date is :func:`layers.history.status_join` (the one rule: latest history
    row on or before the date; else the first status if the feature existed; else absent).
    """
    params = Params()
    query = sql.SQL(
        """
        SELECT t.code, t.name, t.district_code, s.status,
               ST_AsBinary(ST_SimplifyPreserveTopology(ST_Transform(t.geom, {srid}), {tol})) AS wkb
        FROM {table} AS t
        {status}
        WHERE s.status IS NOT NULL
        """
    ).format(table=sql.Identifier(layer.schema_name, layer.table), status=status_join(layer, as_of, params),
             tol=sql.Literal(SIMPLIFY_M), srid=sql.Literal(srid))
    return query, params


def metric_srid(conn: psycopg.Connection[Any]) -> int:
    """The city's Gauss-Krüger zone (its profile's ``area_srid``): maps are drawn in true metres."""
    return city.load(conn).area_srid


def _districts(conn: psycopg.Connection[Any]) -> list[tuple[str, str, shapely.Geometry]]:
    rows = conn.execute(
        sql.SQL("SELECT code, name, ST_AsBinary(ST_SimplifyPreserveTopology(ST_Transform(geom, {}), {})) "
                "FROM renewal.districts ORDER BY code").format(sql.Literal(metric_srid(conn)),
                                                               sql.Literal(SIMPLIFY_M * 2))
    ).fetchall()
    return [(c, n, shapely.from_wkb(bytes(w))) for c, n, w in rows]


def _draw(ax: Any, geoms: Sequence[shapely.Geometry], color: Any, *, edge: str = "none", lw: float = 0.0,
          alpha: float = 1.0, zorder: int = 2, linewidth_line: float = 1.4) -> None:
    """Fill polygons, stroke lines, dot points, one matplotlib collection per kind (fast for thousands)."""
    polys, lines, points = [], [], []
    for geom in geoms:
        for part in getattr(geom, "geoms", [geom]):
            if part.geom_type == "Polygon":
                polys.append(np.asarray(part.exterior.coords)[:, :2])
            elif part.geom_type == "LineString":
                lines.append(np.asarray(part.coords)[:, :2])
            elif part.geom_type == "Point":
                points.append((part.x, part.y))
    if polys:
        ax.add_collection(PolyCollection(polys, facecolors=color, edgecolors=edge, linewidths=lw, alpha=alpha,
                                         zorder=zorder))
    if lines:
        ax.add_collection(LineCollection(lines, colors=color, linewidths=linewidth_line, alpha=alpha, zorder=zorder))
    if points:
        xy = np.asarray(points)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, color=color, alpha=alpha, zorder=zorder)


def _frame(ax: Any, districts: list[tuple[str, str, shapely.Geometry]], focus: shapely.Geometry | None) -> None:
    _draw(ax, [g for _, _, g in districts], "#f4f4f4", edge="#9e9e9e", lw=0.5, zorder=1)
    if focus is not None and not focus.is_empty:
        x0, y0, x1, y1 = focus.buffer(2500).bounds
    else:
        x0, y0, x1, y1 = shapely.union_all([g for _, _, g in districts]).bounds
    ax.set_xlim(x0, x1)  # collections do not update the data limits
    ax.set_ylim(y0, y1)
    for _, name, g in districts:
        c = g.representative_point()
        if focus is None or focus.buffer(2500).contains(c):
            ax.annotate(name, (c.x, c.y), ha="center", fontsize=7, color="#555555", zorder=5)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def status_map(conn: psycopg.Connection[Any], layer_id: str, as_of: dt.date, title: str) -> bytes:
    """A layer's features coloured by their status as of a date, with a legend (PNG bytes)."""
    layer = get_registry().get(layer_id)
    assert layer.lifecycle is not None
    query, params = feature_status_sql(layer, as_of, metric_srid(conn))
    rows = conn.execute(query, params).fetchall()
    districts = _districts(conn)
    colours = {s.code: s.color for s in layer.lifecycle.statuses}
    counts: dict[str, int] = {}
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 6.2))
        geoms = []
        by_status: dict[str, list[shapely.Geometry]] = {}
        for _, _, _, status, wkb in rows:
            g = shapely.from_wkb(bytes(wkb))
            geoms.append(g)
            by_status.setdefault(status, []).append(g)
            counts[status] = counts.get(status, 0) + 1
        for status, gs in by_status.items():
            _draw(ax, gs, colours.get(status, "#777777"), edge="#333333", lw=0.2, zorder=3)
        focus = shapely.union_all(geoms).envelope if geoms else None
        _frame(ax, districts, focus)
        handles = [Patch(facecolor=s.color, edgecolor="#333333", label=f"{s.label}（{counts.get(s.code, 0)}）")
                   for s in layer.lifecycle.statuses]
        ax.legend(handles=handles, title=layer.lifecycle.label, loc="lower left", fontsize=8, title_fontsize=8,
                  frameon=True)
        ax.set_title(f"{title}（截至 {as_of.isoformat()}）", fontsize=11)
        return _png(fig)


def ranking_map(conn: psycopg.Connection[Any], ranking: Sequence[dict[str, Any]], title: str) -> bytes:
    """District choropleth of the ranking score (0–100), rank written on each district (PNG bytes)."""
    districts = _districts(conn)
    scores = {r["district_code"]: r for r in ranking}
    cmap = plt.get_cmap("RdYlGn")
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 6.2))
        focus = []
        for code, name, g in districts:
            r = scores.get(code)
            if r is None:
                _draw(ax, [g], "#eeeeee", edge="#9e9e9e", lw=0.5, zorder=1)
                continue
            focus.append(g)
            _draw(ax, [g], cmap(float(r["score"]) / 100.0), edge="#333333", lw=0.6, zorder=2)
            c = g.representative_point()
            ax.annotate(f"{name}\n第{r['rank']}名 {float(r['score']):.1f}", (c.x, c.y), ha="center", va="center",
                        fontsize=7.5, zorder=5)
        extent = shapely.union_all(focus or [g for _, _, g in districts]).buffer(1500).bounds
        ax.set_xlim(extent[0], extent[2])  # collections do not update the data limits
        ax.set_ylim(extent[1], extent[3])
        ax.set_aspect("equal")
        ax.set_axis_off()
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=Normalize(0, 100))
        fig.colorbar(sm, ax=ax, shrink=0.6, label="得分（完成率均值，封顶100）")
        ax.set_title(title, fontsize=11)
        return _png(fig)
