"""The domain: what a layer is, and every question asked of the layers.

The registry (fields, labels, lifecycle, colours), the city profile, feature queries, planner
queries, status history and plan progress, imports and exports, editing rules, analysis and
progress maps, and the synthetic demo city. Built on :mod:`gis`; used by :mod:`api`, never the
other way round.
"""
