"""The audit log and status history of an import: written by the layer's statement triggers.

Every layer table has statement-level triggers (migration 0009: ``renewal.audit_rows()``,
``renewal.track_status_rows()``) that write, set-based over the statement's transition tables,
one audit row per added, updated and deleted feature (full before/after images, geometry as
GeoJSON) and one status-history row per added feature and per status change. The importer
writes no trail SQL of its own: the API, the CLI and any other writer share that one definition.

For a **bulk load** (at least :data:`SUMMARY_ROWS` new features) by the data owner (the CLI; the
API's ``renewal_app`` may not, see ``renewal.bypass_allowed``), the importer sets
``renewal.audit_mode = 'summary'`` for the INSERT only. The audit log then records the import
once: one INSERT row with ``feature_id`` NULL, ``after = {"bulk_insert": true, "features": n,
"first_id", "last_id"}`` and ``note = "import #<id>: <file>"``, naming the ``renewal.imports``
row that holds the file name, SHA-256, size, who, when and the counts. Every feature still gets
its status-history row. Nothing written is lost: the features' inserted state is the layer rows
with those ids (``created_at`` the load's time), and any later change of one of them writes its
own audit row with the full ``before`` image. Updates and deletes always write full images.
"""

from __future__ import annotations

from typing import Any

import psycopg

from layers.importer.options import BULK_LOAD_ROWS, ImportOptions, ImportReport

SUMMARY_ROWS = BULK_LOAD_ROWS
"""From this many new features, the data owner's import records the insert once in the audit log."""

TRAIL_NOTE = (
    "Bulk load: the audit log records this import once (one row for the insert with the feature count and id "
    "range; its note names this import's record: file, SHA-256, who, counts); every feature has its "
    "status-history row."
)


def bulk_trail(cur: psycopg.Cursor[Any], opts: ImportOptions, new_rows: int, report: ImportReport) -> bool:
    """Ask the triggers for one audit row for the coming INSERT, if it is a bulk load the role may summarise.

    Returns whether the summary is on; :func:`end_bulk_trail` switches it off after the INSERT.
    """
    if opts.trail == "triggers" or new_rows < SUMMARY_ROWS:
        return False
    cur.execute(
        "SELECT set_config('renewal.audit_mode', 'summary', true), "
        "renewal.bypass_allowed('renewal.audit_mode', 'summary')"
    )
    row = cur.fetchone()
    if row and row[1]:
        report.notes.append(TRAIL_NOTE)
        return True
    end_bulk_trail(cur)
    return False


def end_bulk_trail(cur: psycopg.Cursor[Any]) -> None:
    """Full audit images again for every later statement of the transaction."""
    cur.execute("SELECT set_config('renewal.audit_mode', '', true)")
