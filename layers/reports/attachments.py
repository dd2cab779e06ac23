"""Photos attached to approved changes, for the report's photo section.

The reporting and review workflow (issue 16, :mod:`layers.submissions`) keeps a submission's
photos as files named by their SHA-256 in the storage directory (``RENEWAL_STORAGE_DIR``,
:func:`layers.attachments.attachment_path`), listed in ``renewal.attachments`` and linked by
``renewal.submission_attachments``. A photo belongs in a report once its submission is
*approved*: pending and returned ones never appear. The caption is the submission's note; the
feature's code and name are those the change proposed, else those it had before.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from layers.attachments import attachment_path

log = logging.getLogger(__name__)

MAX_PHOTOS = 24
"""At most this many photos in one report (the latest approved first)."""
REPORT_MEDIA_TYPES = ("image/jpeg", "image/png")
"""What Word shows inline (HEIC and PDF evidence stays in the viewer)."""

_SQL = """
SELECT s.layer,
       coalesce(s.proposal -> 'properties' ->> 'code', s.before -> 'properties' ->> 'code', ''),
       coalesce(s.proposal -> 'properties' ->> 'name', s.before -> 'properties' ->> 'name', ''),
       s.district_code, coalesce(s.change ->> 'note', ''), a.taken_at::date, a.media_type, a.sha256
FROM renewal.submissions AS s
JOIN renewal.submission_attachments AS sa ON sa.submission_id = s.id
JOIN renewal.attachments AS a ON a.sha256 = sa.sha256
WHERE s.status = 'approved' AND s.reviewed_at::date <= %(as_of)s
  AND (%(since)s::date IS NULL OR s.reviewed_at::date >= %(since)s)
  AND (%(district)s::text IS NULL OR s.district_code = %(district)s)
  AND (%(layers)s::text[] IS NULL OR s.layer = ANY(%(layers)s))
  AND a.media_type = ANY(%(media)s)
ORDER BY s.reviewed_at DESC, s.id DESC, a.sha256
LIMIT %(limit)s
"""


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


def approved_change_photos(
    conn: psycopg.Connection[Any], as_of: dt.date, *, storage_dir: str | Path | None,
    since: dt.date | None = None, district: str | None = None, layers: set[str] | None = None,
) -> list[Photo]:
    """Photos of changes approved on or before ``as_of`` (and on or after ``since``), latest first.

    ``layers`` limits them to layers the reader may see (layer ids); ``district`` to one
    district. Without a storage directory there are no files to read, so no photos; a file
    listed but missing from the storage (a restored database without its files) is left out
    and logged.
    """
    if storage_dir is None:
        return []
    rows = conn.execute(_SQL, {"as_of": as_of, "since": since, "district": district,
                               "layers": sorted(layers) if layers is not None else None,
                               "media": list(REPORT_MEDIA_TYPES), "limit": MAX_PHOTOS}).fetchall()
    photos: list[Photo] = []
    for layer, code, name, district_code, caption, taken_on, media_type, sha in rows:
        path = attachment_path(storage_dir, sha)
        try:
            content = path.read_bytes()
        except OSError:
            log.warning("attachment %s is listed but missing from the storage directory %s", sha, storage_dir)
            continue
        photos.append(Photo(layer, code, name, district_code, caption, taken_on, media_type, content))
    return photos
