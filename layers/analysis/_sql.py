"""Shared plumbing of the analysis functions: connections, bound parameters, status as of a date.

Every analysis query is composed with :mod:`psycopg.sql` (identifiers through
``sql.Identifier``) and every value travels as a named bound parameter collected in a
:class:`Params`. Results are read with a plain cursor and turned into (Geo)DataFrames
here, so geometry arrives as WKB bytes (``ST_AsBinary``) and nothing is parsed twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from gis.errors import InvalidInputError
from layers.history import features_as_of
from layers.models import Layer
from layers.registry import get_registry

Connection: TypeAlias = "psycopg.Connection[Any]"
ConnLike: TypeAlias = "psycopg.Connection[Any] | str"
"""An open psycopg connection (used as is, inside the caller's transaction if any) or a libpq URL."""

STORAGE_SRID = 4490
"""CGCS2000 geographic: every layer table stores this."""
METRIC_SRID = sql.SQL("(SELECT area_srid FROM renewal.city)")
"""The city's area/length CRS (its Gauss-Krüger zone, :mod:`layers.city`), read in the same query."""
M2_TO_MU = 0.0015
"""1 mu = 10000/15 m², as in the generated ``area_mu`` columns."""


@contextmanager
def connect(conn: ConnLike) -> Iterator[Connection]:
    """Yield a connection: the caller's own, or a new autocommit one for a URL (closed afterwards)."""
    if isinstance(conn, str):
        with psycopg.connect(conn, autocommit=True) as own:
            yield own
    else:
        yield conn


def resolve_as_of(as_of: dt.date | str | None) -> dt.date:
    """``None`` means today; ISO strings are accepted for notebook convenience."""
    if as_of is None:
        return dt.date.today()
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of))
    except ValueError:
        raise InvalidInputError(f"as_of must be a date such as 2023-12-31, not {as_of!r}") from None


class Params:
    """Named bound parameters of one query; :meth:`add` returns the placeholder to splice in."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, name: str, value: Any) -> sql.Placeholder:
        """Bind ``value`` under a unique name derived from ``name``."""
        key = name
        n = 1
        while key in self.values:
            n += 1
            key = f"{name}_{n}"
        self.values[key] = value
        return sql.Placeholder(key)


def layer(layer_id: str) -> Layer:
    """The registered layer (raises ``UnknownLayerError`` for an unknown id)."""
    return get_registry().get(layer_id)


def table(layer_id: str) -> sql.Identifier:
    """``renewal.<table>`` of a registered layer."""
    lyr = layer(layer_id)
    return sql.Identifier(lyr.schema_name, lyr.table)


def codes(layer_id: str) -> list[str]:
    """Status codes of a layer in lifecycle order (empty for a layer without lifecycle)."""
    lyr = layer(layer_id)
    return lyr.lifecycle.codes if lyr.lifecycle else []


def as_of_subquery(
    layer_id: str, params: Params, as_of: dt.date | sql.Composable, *, include_absent: bool = False
) -> sql.Composed:
    """The layer's rows with ``status_as_of``, ``status_since`` and ``status_recorded`` as of a date.

    A parenthesised subquery built by :func:`layers.history.features_as_of`, the one rule for
    every output: the latest ``renewal.status_history`` row on or before the date; without one,
    the first status of the lifecycle if the feature was created by then (``status_since`` its
    creation date, ``status_recorded`` false); features created later are left out (kept with
    a null ``status_as_of`` with ``include_absent``).

    ``as_of`` is a date (bound as a parameter) or an SQL expression of an outer query (for
    progress over a series of dates).
    """
    lyr = layer(layer_id)
    if lyr.lifecycle is None:
        raise InvalidInputError(f"layer {layer_id} has no lifecycle status")
    return features_as_of(lyr, as_of, params, include_absent=include_absent)


def table_exists(conn: Connection, schema: str, name: str) -> bool:
    """Whether ``schema.name`` exists (a layer added by a later migration may be missing)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s)", (schema, name)
    ).fetchone()
    return bool(row and row[0])


def columns_of(conn: Connection, schema: str, name: str) -> list[str]:
    """Column names of a table, in order."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (schema, name),
    ).fetchall()
    return [str(r[0]) for r in rows]


def frame(
    conn: Connection, query: sql.Composed, params: Params | dict[str, Any] | None = None, *, geometry: str | None = None
) -> pd.DataFrame:
    """Run ``query`` and return a DataFrame, or a GeoDataFrame (EPSG:4490) if ``geometry`` names a WKB column.

    The query runs in a transaction of its own (a savepoint if the caller's connection is
    already in one), with JIT off for that transaction.
    """
    values = params.values if isinstance(params, Params) else (params or {})
    # JIT compilation costs seconds on these short analytic queries (their LATERAL status
    # look-ups inflate the cost estimates); switch it off for this transaction only.
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT set_config('jit', 'off', true)")
        cur.execute(query, values)
        names = [d.name for d in cur.description or []]
        rows = cur.fetchall()
    df = pd.DataFrame.from_records(rows, columns=names)
    if geometry is None:
        return df
    wkb = [bytes(v) if v is not None else None for v in df[geometry]]
    geoms = shapely.from_wkb(wkb) if wkb else []
    gdf: pd.DataFrame = gpd.GeoDataFrame(
        df.drop(columns=[geometry]), geometry=gpd.GeoSeries(geoms, index=df.index), crs=f"EPSG:{STORAGE_SRID}"
    )
    return gdf
