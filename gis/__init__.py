"""Pure, typed GIS helpers: CRS and geodesy, Chinese web-map offsets, geometry checks, file I/O, analysis."""
