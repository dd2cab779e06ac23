"""Two costs of every large load that buy nothing: a history index no query picks, and a projected centroid.

**The status-history index on (layer, to_status, effective_date) goes.** Every status change, and
every feature of an import, inserts one ``renewal.status_history`` row. That index cost about 2 s of
a million-parcel import (``INSERT`` of 977,200 history rows: 9.5 s with it, 4.7 s without, on a
table already holding a million rows). No query of the toolkit filters on ``to_status``: the status
as of a date reads a feature's rows (``layer, feature_id, effective_date``, the index that stays)
or a layer's rows up to a date, which the remaining index's ``layer`` prefix serves as well
(``pg_stat_user_indexes`` showed the planner choosing either for those scans).

**The parcel overview counts each parcel at the centre of its bounding box, in Web Mercator by formula.**
0012 to 0017 used ``ST_Transform(ST_Centroid(geom), 3857)``: an area-weighted centroid over every
vertex and a PROJ call per parcel, 2.4 s of the trigger's aggregate over a million parcels. The box
centre comes from the geometry's stored bounding box, and spherical Mercator is two lines of
arithmetic (x = R·λ, y = R·ln tan(π/4 + φ/2), R = 6,378,137 m, latitude clamped to Web Mercator's
±85.0511°): 1.0 s for the same aggregate. A parcel is some 100 m across and a zoom-12 cell 153 m, so
the map reads the same. The overview is rebuilt from the parcels here, since a later update or
delete subtracts each parcel from the cell the new rule gives it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

R = 6378137.0
MAX_LAT = 85.05112877980659


def _overview_0017():
    """Migration 0017, whose trigger body (zoom-12 cells summed into 11 and 10) this one keeps."""
    path = Path(__file__).with_name("0017_overview_one_zoom_aggregate.py")
    spec = importlib.util.spec_from_file_location("overview_0017", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _box_centres(source: str, sign: str) -> str:
    """(x, y, class, +-1) of every row of ``source``: its bounding box's centre in spherical Mercator."""
    lat = f"radians(least(greatest((ST_YMin(geom) + ST_YMax(geom)) / 2, -{MAX_LAT}), {MAX_LAT}))"
    return f"""
        SELECT c.x, c.y, c.cls, {sign} AS d
        FROM (SELECT {R} * radians((ST_XMin(geom) + ST_XMax(geom)) / 2) AS x,
                     {R} * ln(tan(pi() / 4 + {lat} / 2)) AS y, land_use_code AS cls
              FROM {source} OFFSET 0) AS c"""


def _rebuild(points) -> None:
    """Recount the overview from every parcel by the rule of ``points``."""
    o17 = _overview_0017()
    op.execute(o17._function(o17._apply, points))
    op.execute("DELETE FROM renewal.land_parcels_overview")
    op.execute(o17._apply([points("renewal.land_parcels", "1")]))


def upgrade():
    op.execute("DROP INDEX renewal.status_history_status_idx")
    _rebuild(_box_centres)


def downgrade():
    _rebuild(_overview_0017()._points)
    op.execute("CREATE INDEX status_history_status_idx ON renewal.status_history (layer, to_status, effective_date)")
