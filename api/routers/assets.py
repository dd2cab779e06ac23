"""``/vendor/<package>/<path>``: front-end libraries from ``node_modules`` (offline maps).

The whitelist is :data:`gis.vendor.VENDOR_DIRS`; e.g. ``/vendor/leaflet/leaflet.js`` and
``/vendor/leaflet/leaflet.css``. Versions are pinned by ``package-lock.json``, so responses
carry a long ``Cache-Control`` and an ``ETag`` (size and modification time).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from api.access import Public
from gis.vendor import resolve

ORDER = 90
router = APIRouter(tags=["assets"])

CACHE_CONTROL = "public, max-age=31536000, immutable"


@router.get(
    "/vendor/{package}/{path:path}",
    summary="A file of a whitelisted front-end library (Leaflet, jQuery, Bootstrap, Font Awesome, …)",
    response_class=FileResponse,
    dependencies=[Public],
)
async def vendor_file(package: str, path: str, request: Request) -> Response:
    """Serve the file, or 304 when the client's ``If-None-Match`` matches."""
    file = resolve(package, path)
    stat = file.stat()
    etag = f'"{stat.st_size:x}-{int(stat.st_mtime):x}"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = None
    if file.suffix in (".js", ".mjs"):
        media_type = "text/javascript; charset=utf-8"
    elif file.suffix == ".css":
        media_type = "text/css; charset=utf-8"
    return FileResponse(file, media_type=media_type, headers=headers)
