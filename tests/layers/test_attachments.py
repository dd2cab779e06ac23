"""Evidence files: types from the bytes (never the name), limits, thumbnails, EXIF, content addressing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gis.errors import NotFoundError
from layers.attachments import attachment_path, detect_media_type, store_file
from layers.errors import PayloadTooLargeError, UnsupportedMediaError


def _image(fmt: str) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "media"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("HEIF", "image/heic")])
def test_photos_are_stored_with_thumbnails(tmp_path: Path, fmt: str, media: str) -> None:
    data = _image(fmt)
    info = store_file(tmp_path, data, "../../evil.exe", max_bytes=10**7)
    assert info.media_type == media and (info.width, info.height) == (640, 480)
    assert attachment_path(tmp_path, info.sha256).read_bytes() == data
    thumb = Image.open(attachment_path(tmp_path, str(info.thumb_sha256)))
    assert max(thumb.size) == 320 and thumb.format == "JPEG"
    assert not (tmp_path.parent / "evil.exe").exists()
    again = store_file(tmp_path, data, "other.jpg", max_bytes=10**7)
    assert again.sha256 == info.sha256  # same bytes, one file


def test_types_and_limits(tmp_path: Path) -> None:
    assert detect_media_type(b"%PDF-1.7\n") == "application/pdf"
    assert detect_media_type(b"GIF89a......") is None
    with pytest.raises(UnsupportedMediaError):
        store_file(tmp_path, b"<html><script>", "photo.jpg", max_bytes=1000)
    with pytest.raises(UnsupportedMediaError):
        store_file(tmp_path, b"\xff\xd8\xff\xe0 truncated", "photo.jpg", max_bytes=1000)
    with pytest.raises(PayloadTooLargeError):
        store_file(tmp_path, b"%PDF-" + b"0" * 2000, "a.pdf", max_bytes=1000)
    with pytest.raises(NotFoundError):
        attachment_path(tmp_path, "../../etc/passwd")
    assert list(tmp_path.rglob("*")) == []  # nothing was written for refused files
