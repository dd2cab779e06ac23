"""Renewal coverage analysis on the PostGIS database: tested functions behind the notebooks.

Every function takes an open psycopg connection or a libpq URL and, where statuses
matter, an ``as_of`` date (default today). Statuses as of a date come from
``renewal.status_history`` by the one rule of :mod:`layers.history`: the ``to_status`` of
the latest change dated on or before the date; a feature with no change recorded by then
is in the first status of its lifecycle if it was created by then, and absent otherwise
(see :func:`layers.analysis._sql.as_of_subquery`). Heavy spatial work (KNN,
intersections, areas in the city's area CRS) runs in PostGIS; results come back as pandas
DataFrames or geopandas GeoDataFrames in EPSG:4490.
"""

from layers.analysis.coverage import (
    has_resettlement_layer,
    period_ends,
    read_layer,
    renovation_by_district,
    resettlement_housing_progress,
    ring_zone_summary,
    status_counts_over_time,
    urban_village_stages,
)
from layers.analysis.land import (
    constraint_conflicts,
    far_violations,
    vacated_land_by_stage,
    vacated_land_by_use,
    vacated_land_plots,
)
from layers.analysis.parking import parking_coverage, parking_coverage_by_district, parking_gaps
from layers.analysis.roads import compounds_near_opened_roads, road_length_by_district

__all__ = [
    "compounds_near_opened_roads",
    "constraint_conflicts",
    "far_violations",
    "has_resettlement_layer",
    "parking_coverage",
    "parking_coverage_by_district",
    "parking_gaps",
    "period_ends",
    "read_layer",
    "renovation_by_district",
    "resettlement_housing_progress",
    "ring_zone_summary",
    "road_length_by_district",
    "status_counts_over_time",
    "urban_village_stages",
    "vacated_land_by_stage",
    "vacated_land_by_use",
    "vacated_land_plots",
]
