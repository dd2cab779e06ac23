"""QGIS's start-up for the probe scripts (``qgis_probe.py``, ``qgis_edit_probe.py``), run by Debian's Python.

Offscreen, prefix ``/usr`` (python3-qgis), providers loaded, then the project read. Imported by
the probes from their own folder (a script's folder is first on ``sys.path``).
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsProject  # noqa: E402


def open_project(path):
    """Start QGIS and read ``path``: (the application, to keep alive; the project; whether it was read)."""
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    return app, project, project.read(path)
