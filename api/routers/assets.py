"""``/vendor/<package>/<path>``: front-end libraries from ``node_modules`` (offline maps), and ``/api.html``.

The whitelist is :data:`gis.vendor.VENDOR_DIRS`; e.g. ``/vendor/leaflet/leaflet.js`` and
``/vendor/leaflet/leaflet.css``. Versions are pinned by ``package-lock.json``, so responses
carry a long ``Cache-Control`` and an ``ETag`` (size and modification time).

``/api.html`` is the interactive API document (Swagger UI). FastAPI's own page loads Swagger UI
from a CDN and its favicon from fastapi.tiangolo.com, so on a closed intranet it stayed blank;
this one loads the pinned ``swagger-ui-dist`` from ``/vendor/`` and asks no validator service.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.access import Public
from gis.vendor import VENDOR_PREFIX, resolve

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


@router.get("/api.html", include_in_schema=False, dependencies=[Public])
async def api_document_page(request: Request) -> HTMLResponse:
    """Swagger UI on the OpenAPI document at ``/api``, every file from this app (works offline)."""
    root = request.scope.get("root_path", "")
    swagger = f"{root}{VENDOR_PREFIX}/swagger-ui-dist"
    return get_swagger_ui_html(
        openapi_url=f"{root}/api",
        title=f"{request.app.title} – API",
        swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
        swagger_css_url=f"{swagger}/swagger-ui.css",
        swagger_favicon_url=f"{swagger}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
