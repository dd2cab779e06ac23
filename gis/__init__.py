"""Plain GIS, importing nothing of the project and no database or HTTP library.

CRS parsing and transforms, Chinese web-map offsets (GCJ-02/BD-09), geodesy, geometry checks,
file readers/writers, plain folium rendering and the error base every package builds on. The
domain (:mod:`layers`) and the HTTP/CLI layer (:mod:`api`) sit on top; ``pyproject.toml``'s
import-linter contract keeps it that way.
"""
