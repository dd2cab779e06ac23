"""``/collections/{id}/imports``: upload a GIS file or ledger, get the validation report back.

``POST`` (multipart: ``file``, optional ``mapping`` YAML and the options of ``renewal import``)
runs the same importer as the CLI: 201 with the report when applied (``Location`` names the
import record), 200 for a clean ``dry_run``, 422 with the report when rows have problems
(nothing written), 400 problem+json for a file that cannot be used at all. ``GET
/collections/{id}/imports/{import_id}`` returns the record (who, when, file, SHA-256, counts,
report). Writing needs an editor of the layer (reference layers: an administrator); an editor
limited to districts may only import features in them.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api.access import ReadableLayer, WritableLayer
from api.deps import SettingsDep
from gis.errors import InvalidInputError, NotFoundError

ORDER = 60
router = APIRouter(tags=["imports"])


def _check_fields(fields: dict[str, str | None]) -> None:
    """The input guard's rule for the text of a multipart upload (file names and form fields).

    The middleware (:mod:`api.input_guard`) only size-limits multipart bodies; a NUL byte, text
    that is not UTF-8 or an oversized value here is a 400 naming the field, never a 500.
    """
    from api.input_guard import InputRejected, check_text

    for name, value in fields.items():
        if value is None:
            continue
        try:
            check_text(value.encode("utf-8", "surrogateescape"), name, max_chars=500)
        except (InputRejected, UnicodeEncodeError) as exc:
            raise InvalidInputError(str(exc) if isinstance(exc, InputRejected) else
                                    f"'{name}' is not valid UTF-8 text.", detail={"parameter": name}) from None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


@router.post(
    "/collections/{collection_id}/imports",
    summary="Import a file into the layer (validated; all or nothing)",
    status_code=201,
    responses={
        200: {"description": "Dry run: the report, nothing written"},
        400: {"description": "The file cannot be used (problem+json)"},
        422: {"description": "Rows with problems: the report, nothing written"},
    },
)
async def create_import(
    grant: WritableLayer,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="Shapefile (.zip), .gpkg, .geojson, .kml/.kmz, .csv or .xlsx")],
    mapping: Annotated[UploadFile | None, File(description="YAML mapping (columns/values/defaults)")] = None,
    mode: Annotated[str, Form(description="append | upsert | replace")] = "append",
    on_invalid: Annotated[str, Form(description="repair | reject")] = "repair",
    crs: Annotated[str | None, Form(description="CRS when the file has none (EPSG:4547, gcj02 ...)")] = None,
    encoding: Annotated[str | None, Form(description="Attribute encoding (GBK ...)")] = None,
    layer_name: Annotated[str | None, Form(description="GeoPackage layer / KML folder / sheet")] = None,
    dry_run: Annotated[bool, Form(description="Validate only")] = False,
    drop_z: Annotated[bool, Form(description="Drop heights of 3-D files")] = False,
    effective_date: Annotated[str | None, Form(description="Date of status changes (YYYY-MM-DD)")] = None,
    source_doc: Annotated[str | None, Form(description="Document behind the changes")] = None,
) -> Response:
    """Run an import and answer with its report."""
    from layers.importer import ImportOptions, Mode, OnInvalid, run_import, safe_file_name

    layer, principal = grant.layer, grant.principal
    if mode == "replace" and principal.district_scope:
        raise InvalidInputError("An editor limited to districts cannot replace a whole layer; use upsert.")
    _check_fields({"file": file.filename, "mapping": mapping.filename if mapping is not None else None,
                   "mode": mode, "on_invalid": on_invalid, "crs": crs, "encoding": encoding,
                   "layer_name": layer_name, "effective_date": effective_date, "source_doc": source_doc})
    try:
        eff = dt.date.fromisoformat(effective_date) if effective_date else None
    except ValueError:
        raise InvalidInputError(f"effective_date '{effective_date}' is not a date (YYYY-MM-DD).") from None
    name = safe_file_name(file.filename or "upload")
    with tempfile.TemporaryDirectory(prefix="renewal-upload-") as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        mapping_path = None
        if mapping is not None and mapping.filename:
            mapping_path = Path(tmp) / "mapping.yaml"
            mapping_path.write_bytes(await mapping.read())
        opts = ImportOptions(
            mode=cast(Mode, mode),
            on_invalid=cast(OnInvalid, on_invalid),
            crs=crs or None,
            encoding=encoding or None,
            mapping=mapping_path,
            layer_name=layer_name or None,
            dry_run=dry_run,
            drop_z=drop_z,
            effective_date=eff,
            actor=principal.name,
            channel="api",
            source_doc=source_doc,
            file_name=name,
            districts=principal.district_scope,
        )
        report = await run_in_threadpool(run_import, settings.database_url, layer.id, path, opts)
    body = _jsonable(report.as_dict())
    if report.status == "applied":
        location = f"/collections/{layer.id}/imports/{report.import_id}"
        return JSONResponse(body, status_code=201, headers={"Location": location})
    return JSONResponse(body, status_code=200 if report.status == "dry_run" else 422)


@router.get("/collections/{collection_id}/imports", summary="Recent imports into the layer")
async def list_imports(layer: ReadableLayer, settings: SettingsDep, limit: int = 50) -> dict[str, Any]:
    """The latest imports (newest first), without their full reports."""
    from layers.importer import list_imports as _list

    rows = await run_in_threadpool(_list, settings.database_url, layer.id, max(1, min(limit, 500)))
    return {"imports": _jsonable(rows), "count": len(rows)}


@router.get("/collections/{collection_id}/imports/{import_id}", summary="One import: who, when, file, counts, report")
async def get_import(layer: ReadableLayer, settings: SettingsDep, import_id: int) -> dict[str, Any]:
    """The record of one import."""
    from layers.importer import import_record

    row = await run_in_threadpool(import_record, settings.database_url, layer.id, import_id)
    if row is None:
        raise NotFoundError(f"There is no import {import_id} into layer '{layer.id}'.")
    out: dict[str, Any] = _jsonable(row)
    return out
