"""``GET /qgis/project.qgs``: a QGIS project with every layer the caller may read, through this service.

The layers read the OGC API at the service's public URL (``RENEWAL_PUBLIC_URL`` behind a proxy);
``renewal qgis-project -o FILE [--postgis]`` writes the same project from the command line, with
an option to connect the layers to PostGIS directly.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import ReadAccessDep
from api.city import CityDep
from api.deps import SettingsDep
from api.ogc.links import base_url
from layers.qgis_project import project_qgs

ORDER = 60
router = APIRouter(tags=["QGIS"])


@router.get("/qgis/project.qgs", summary="A QGIS project with every layer (OGC API Features, CGCS2000)",
            response_class=Response, responses={200: {"content": {"application/x-qgis-project": {}}}})
async def qgis_project(request: Request, settings: SettingsDep, access: ReadAccessDep, city: CityDep) -> Response:
    """Open it in QGIS (3.22+): layers grouped as in the viewer, styled by status with Chinese labels."""
    text = project_qgs(access.readable(), service_url=base_url(request, settings),
                       title=f"{city.name}城市更新 {city.name_en} urban renewal")
    return Response(text, media_type="application/x-qgis-project",
                    headers={"Content-Disposition": 'attachment; filename="renewal.qgs"'})
