"""Photos attached to approved changes, for the report's photo section (hook for issue 16).

The reporting and review workflow (issue 16) will store photos that field officers attach to
status changes, and approve the changes. This module is the one place the report reads them
from. Contract: a relation ``renewal.report_photos`` (a view or table the workflow creates)
with the columns

    layer text, code text, name text, district_code text, caption text,
    taken_on date, approved_on date, media_type text, content bytea

holding only photos of *approved* changes. Until it exists :func:`approved_change_photos`
returns an empty list and the report says that no photos are available.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

PHOTO_RELATION = "renewal.report_photos"
MAX_PHOTOS = 24
"""At most this many photos in one report (the latest approved first)."""


@dataclass(frozen=True)
class Photo:
    """One photo of an approved change."""

    layer: str
    code: str
    name: str
    district_code: str | None
    caption: str
    taken_on: dt.date | None
    media_type: str
    content: bytes


def photos_available(conn: psycopg.Connection[Any]) -> bool:
    """Whether the reporting workflow provides photos (the relation exists)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (PHOTO_RELATION,)).fetchone()
    return bool(row and row[0])


def approved_change_photos(
    conn: psycopg.Connection[Any], as_of: dt.date, *, since: dt.date | None = None, district: str | None = None,
    layers: set[str] | None = None,
) -> list[Photo]:
    """Photos of changes approved on or before ``as_of`` (and on or after ``since``), latest first.

    ``layers`` limits them to layers the reader may see (table names); ``district`` to one district.
    """
    if not photos_available(conn):
        return []
    rows = conn.execute(
        """
        SELECT layer, code, name, district_code, coalesce(caption, ''), taken_on, media_type, content
        FROM renewal.report_photos
        WHERE approved_on <= %(as_of)s AND (%(since)s::date IS NULL OR approved_on >= %(since)s)
          AND (%(district)s::text IS NULL OR district_code = %(district)s)
          AND (%(layers)s::text[] IS NULL OR layer = ANY(%(layers)s))
          AND media_type IN ('image/png', 'image/jpeg')
        ORDER BY approved_on DESC, layer, code LIMIT %(limit)s
        """,
        {"as_of": as_of, "since": since, "district": district,
         "layers": sorted(layers) if layers is not None else None, "limit": MAX_PHOTOS},
    ).fetchall()
    return [Photo(layer=r[0], code=r[1], name=r[2], district_code=r[3], caption=r[4], taken_on=r[5], media_type=r[6],
                  content=bytes(r[7])) for r in rows]
