"""What leaders read: the quarterly supervision report (督导通报), district one-pagers, Word ledgers.

The report is a Word file rendered from a template the supervision office edits
(``templates/*.docx``, docxtpl/Jinja fields listed in ``README.md``), and a PDF converted
from that same Word file by LibreOffice headless. Every number comes from
:mod:`layers.progress` and :mod:`layers.indicators` (never recomputed here); maps are
static PNGs drawn with matplotlib from PostGIS, without any network.

- :mod:`layers.reports.data`: the report's content as plain dicts (the template's context).
- :mod:`layers.reports.maps`: the PNG maps.
- :mod:`layers.reports.render`: docxtpl rendering and the PDF conversion.
- :mod:`layers.reports.attachments`: the hook for photos of approved changes (issue 16).
"""

from layers.reports.render import Progress, ReportFile, district_summary, quarterly_report, target_ledger_document

__all__ = ["Progress", "ReportFile", "district_summary", "quarterly_report", "target_ledger_document"]
