"""Evidence files (photos, PDFs) addressed by content hash, with thumbnails and EXIF time and position.

Why content addressing: the bytes a reviewer saw are the bytes the history keeps; the same
photo sent twice is stored once; and no name a client sends ever becomes a path (the file
lives at ``<storage>/<aa>/<bb>/<sha256>``, the client's file name is only shown).

Types are recognised from the bytes, never from the name or the declared content type:
JPEG, PNG, PDF, and HEIC/HEIF when ``pillow-heif`` is installed. Table
``renewal.attachments`` holds the metadata; ``renewal.submission_attachments`` links a file
to a submission (:mod:`layers.submissions`) and through it to the feature's history.
Reports read the photos of approved changes through :mod:`layers.reports.attachments`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection

from gis.errors import InvalidInputError, NotFoundError
from layers.errors import PayloadTooLargeError, UnsupportedMediaError

__all__ = [
    "AttachmentInfo",
    "attachment_path",
    "detect_media_type",
    "read_photo_metadata",
    "record_attachment",
    "store_file",
]

SHA_RE: Final = re.compile(r"^[0-9a-f]{64}$")
THUMB_PX: Final = 320
ALLOWED: Final = "JPEG or PNG photos, HEIC photos (when the server reads them) and PDF documents"


def _heif_available() -> bool:
    try:
        import pillow_heif  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def detect_media_type(head: bytes) -> str | None:
    """The media type from the first bytes of a file (magic numbers), or None when not accepted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
        return "image/heic" if _heif_available() else None
    return None


@dataclass(frozen=True)
class AttachmentInfo:
    """What is known of a stored file."""

    sha256: str
    media_type: str
    size_bytes: int
    file_name: str | None
    width: int | None = None
    height: int | None = None
    taken_at: dt.datetime | None = None
    lon: float | None = None
    lat: float | None = None
    thumb_sha256: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The public description (the API's answer to an upload)."""
        return {
            "sha256": self.sha256, "media_type": self.media_type, "size_bytes": self.size_bytes,
            "file_name": self.file_name, "width": self.width, "height": self.height,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "position": [self.lon, self.lat] if self.lon is not None and self.lat is not None else None,
            "thumbnail": self.thumb_sha256,
        }


def attachment_path(storage_dir: str | Path, sha256: str) -> Path:
    """Where the file with this hash lives; the hash is checked, so nothing else can become a path."""
    if not SHA_RE.match(sha256):
        raise NotFoundError("An attachment is named by its SHA-256 (64 hexadecimal digits).")
    return Path(storage_dir) / sha256[:2] / sha256[2:4] / sha256


def _write(storage_dir: str | Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = attachment_path(storage_dir, sha)
    if path.exists():
        return sha
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha


def _ratio(value: Any) -> float:
    return float(value[0]) / float(value[1]) if isinstance(value, tuple) else float(value)


def _dms(values: Any, ref: Any) -> float | None:
    try:
        deg = _ratio(values[0]) + _ratio(values[1]) / 60 + _ratio(values[2]) / 3600
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    return -deg if str(ref).upper() in ("S", "W") else deg


def read_photo_metadata(image: Any) -> tuple[dt.datetime | None, float | None, float | None]:
    """EXIF ``DateTimeOriginal`` and GPS position (lon, lat, WGS 84 as phones write it) of a Pillow image."""
    exif = image.getexif()
    taken: dt.datetime | None = None
    text = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    if isinstance(text, str):
        try:
            taken = dt.datetime.strptime(text.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        except ValueError:
            taken = None
    gps = exif.get_ifd(0x8825)
    lat = _dms(gps[2], gps.get(1, "N")) if 2 in gps else None
    lon = _dms(gps[4], gps.get(3, "E")) if 4 in gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    return taken, lon, lat


def store_file(storage_dir: str | Path, data: bytes, file_name: str | None, *, max_bytes: int) -> AttachmentInfo:
    """Check, store and describe one upload; photos also get a thumbnail (stored by its own hash).

    Raises
    ------
    PayloadTooLargeError
        Larger than ``max_bytes`` (413).
    UnsupportedMediaError
        Not a JPEG, PNG, HEIC (when readable) or PDF (415), or an image that cannot be decoded.
    """
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"The file is {len(data) / 1048576:.1f} MB; attachments may be at most {max_bytes / 1048576:.1f} MB. "
            "Send a smaller photo (most phones have a lower resolution setting) or split the document.",
            detail={"max_bytes": max_bytes, "size_bytes": len(data)})
    if not data:
        raise InvalidInputError("The file is empty.")
    media = detect_media_type(data[:16])
    if media is None:
        raise UnsupportedMediaError(f"This file type is not accepted. Attach {ALLOWED}.",
                                   detail={"accepted": ["image/jpeg", "image/png", "image/heic", "application/pdf"]})
    name = (file_name or "").replace("\x00", "").strip()[-200:] or None
    if media == "application/pdf":
        return AttachmentInfo(_write(storage_dir, data), media, len(data), name)
    from PIL import Image, ImageOps, UnidentifiedImageError

    if media == "image/heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            taken, lon, lat = read_photo_metadata(img)
            width, height = img.size
            thumb = ImageOps.exif_transpose(img).convert("RGB")
            thumb.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=80)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UnsupportedMediaError("The photo could not be read; it may be damaged. Take or export it again.") \
            from None
    sha = _write(storage_dir, data)
    thumb_sha = _write(storage_dir, buf.getvalue())
    return AttachmentInfo(sha, media, len(data), name, width, height, taken, lon, lat, thumb_sha)


async def record_attachment(conn: AsyncConnection[Any], info: AttachmentInfo, actor: str) -> None:
    """Insert the file's metadata row (once per hash; the first uploader is kept)."""
    await conn.execute(
        "INSERT INTO renewal.attachments (sha256, media_type, size_bytes, file_name, width, height, taken_at, gps, "
        "thumb_sha256, uploaded_by) VALUES (%(sha)s, %(media)s, %(size)s, %(name)s, %(w)s, %(h)s, %(taken)s, "
        "CASE WHEN %(lon)s::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) END, "
        "%(thumb)s, %(actor)s) ON CONFLICT (sha256) DO NOTHING",
        {"sha": info.sha256, "media": info.media_type, "size": info.size_bytes, "name": info.file_name,
         "w": info.width, "h": info.height, "taken": info.taken_at, "lon": info.lon, "lat": info.lat,
         "thumb": info.thumb_sha256, "actor": actor},
    )
