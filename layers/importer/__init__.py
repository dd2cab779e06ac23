"""Import GIS files into a layer: map, validate, stage with COPY, apply in one transaction.

The pipeline (:mod:`.pipeline`), for every format alike, one module per step:

1. **Read** the file (:func:`gis.io.stream_source`): attribute columns as named in the file,
   geometries, declared CRS; a GeoPackage in Arrow batches of 100,000 rows (a million parcels are
   never in memory whole), other formats whole.
2. **Map** (:mod:`.mapping`) source columns to layer fields by name, Chinese label or alias from the
   registry (名称, 所在区, 状态, 面积（亩） ...), or through a YAML mapping file.
3. **Check geometries** in Python, vectorised, batch by batch (:class:`gis.validate.GeometryChecker`):
   missing/empty, NaN, 3-D, wrong type, outside the city (with the likely cause), invalid (reason
   and location), duplicates across the file; transform to CGCS2000 (EPSG:4490), GCJ-02/BD-09 included.
4. **Stage** (:mod:`.staging`) each batch with ``COPY`` into a TEMP table and normalise it into
   ``import_ready`` in a loader thread while the next batch is read, then **validate**
   (:mod:`.validate`) in SQL, set-based: types and ranges, required values, choice and status
   vocabularies (Chinese labels → codes), district names → adcodes, duplicate and (for ``append``)
   existing codes; invalid geometries repaired with ``ST_MakeValid`` (polygonal parts kept) or rejected.
5. **Apply** (:mod:`.apply`) in the same transaction (``append``, ``upsert`` by code, or
   ``replace``), with ``renewal.actor``/``channel``/``effective_date`` set so the status history
   and the audit log are written (:mod:`.trail`), and **record** the import in ``renewal.imports``
   (:mod:`.records`).

Any error in any row rejects the whole file: nothing is written and the report lists every
problem (row, code, field, value, message). The layer only ever sees a complete, valid import:
a failure or a kill at any moment rolls the transaction back. ``--dry-run`` runs everything,
then rolls back.
"""

from layers.importer.mapping import ColumnMap, MappingConfig, load_mapping, map_columns, writable_columns
from layers.importer.options import ImportOptions, ImportReport, Mode, OnInvalid, Progress
from layers.importer.pipeline import run_import
from layers.importer.records import file_sha256, import_record, list_imports, safe_file_name
from layers.importer.trail import TRAIL_NOTE

__all__ = [
    "TRAIL_NOTE",
    "ColumnMap",
    "ImportOptions",
    "ImportReport",
    "MappingConfig",
    "Mode",
    "OnInvalid",
    "Progress",
    "file_sha256",
    "import_record",
    "list_imports",
    "load_mapping",
    "map_columns",
    "run_import",
    "safe_file_name",
    "writable_columns",
]
