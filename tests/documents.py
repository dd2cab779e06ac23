"""The text inside a document answer, for checks that search an answer for what it must not carry.

Used by the access matrix (``tests/api/test_access_matrix.py``) and the bench's leak detector
(``bench/schemathesis_large.py``, ``bench/route_sweep.py``).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

UNPACKED_MAX = 64 * 1024 * 1024
"""At most this many bytes are unpacked from one answer (a ZIP bomb would otherwise stop the run)."""


def unpacked(body: bytes) -> bytes:
    """The text inside a document answer: the members of a ZIP (xlsx, docx) and the Flate streams of a PDF.

    Office documents and PDFs are compressed, so a feature code written in one is not in the
    answer's bytes as sent; searching only those would let a ledger or report leak unseen. A PDF
    whose fonts are embedded as glyph ids still hides its text; its metadata and tagged text show.
    """
    parts: list[bytes] = []
    size = 0
    if body[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                for info in archive.infolist():
                    if size + info.file_size > UNPACKED_MAX:
                        break
                    parts.append(archive.read(info))
                    size += info.file_size
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):
            pass
    elif body[:5] == b"%PDF-":
        for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S):
            try:
                part = zlib.decompressobj().decompress(stream.group(1), UNPACKED_MAX - size)
            except zlib.error:
                continue
            parts.append(part)
            size += len(part)
            if size >= UNPACKED_MAX:
                break
    return b"\n".join(parts)
