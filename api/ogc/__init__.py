"""OGC API building blocks shared by the OGC, tiles and query routers.

* :mod:`api.ogc.negotiation`: ``f=`` / ``Accept`` content negotiation and the route classes
  that let a map viewer own HTML at ``/`` while JSON clients still get the landing page.
* :mod:`api.ogc.links`: base URLs and link objects.
* :mod:`api.ogc.html`: Jinja2 templates (readable without JavaScript; Leaflet from ``/vendor/leaflet``).
* :mod:`api.ogc.formats`: a hook for other feature encodings of ``/collections/{id}/items`` (the exporter
  registers gpkg, shp, csv, xlsx, kml there).
* :mod:`api.ogc.metadata`: conformance classes, CRS lists, collection documents and queryables.
"""
