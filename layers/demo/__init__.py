"""The deterministic synthetic demo city of Shijiazhuang (石家庄演示数据).

SYNTHETIC, APPROXIMATE, NOT OFFICIAL. Every feature except the district outlines is
invented: villages, compounds, parcels, roads, parking sites and vacated plots are
placed by a seeded random generator near the rough geography of the city (ring roads,
Hutuo River, named sites of the plan) so that the toolkit's maps and progress checks
have something realistic-looking to work on. Names carry （演示）/（示意）.

The district outlines are a simplified derivative of DataV.GeoAtlas (阿里云 DataV.GeoAtlas),
converted from GCJ-02 to CGCS2000 and simplified; they are approximate and are not
official administrative boundaries. See ``layers/demo/README.md``.

Use :func:`load_demo` (or ``renewal demo load``).
"""

from layers.demo.loader import Progress
from layers.demo.loader import load_demo as load_foundation_demo


def load_demo(conninfo: str, *, scale: int = 1, progress: Progress | None = None) -> dict[str, int]:
    """Load the foundation demo city, then the plan layers and indicator reports (issue 5).

    Returns the feature count of every layer loaded (and of the indicator reports), so the
    CLI can show the whole city.

    Raises
    ------
    ConflictError
        If the database holds another city (its profile has no demo generator): the demo is
        Shijiazhuang's and would land outside that city.
    """
    from gis.errors import ConflictError
    from layers.city import for_conninfo
    from layers.demo.plan_layers import load_plan_layers

    city = for_conninfo(conninfo)
    if city.demo != "shijiazhuang":
        raise ConflictError(
            f"This database holds {city.name} ({city.name_en}), which has no demo data; the synthetic demo "
            "is Shijiazhuang's. Load the demo into a database of its own."
        )

    counts = load_foundation_demo(conninfo, scale=scale, progress=progress)
    return {**counts, **load_plan_layers(conninfo)}


__all__ = ["load_demo", "load_foundation_demo"]
