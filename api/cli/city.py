"""``renewal city create|show``: set a database up for a city, and show which city it holds.

One database holds one city (:mod:`layers.city`); ``DATABASE_URL`` selects it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from api.settings import Settings

city_app = typer.Typer(help="The city this database holds (profile, districts, area CRS).", no_args_is_help=True)


@city_app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="City name, e.g. 青岛")],
    districts: Annotated[Path, typer.Option("--districts", exists=True, help="District boundary file "
                                            "(GeoJSON incl. DataV bare arrays, shapefile, GeoPackage ...)")],
    crs: Annotated[str | None, typer.Option("--crs", help="CRS of the boundary file when it declares none: "
                                            "gcj02 (DataV), bd09, EPSG:4490 ...")] = None,
    area_crs: Annotated[str | None, typer.Option("--area-crs", help="Area/length CRS (EPSG:n, projected, metres); "
                                                 "default: the nearest CGCS2000 3° Gauss-Krüger zone")] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", exists=True,
                                                 help="Plan catalog YAML (default: none)")] = None,
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name for messages, e.g. Qingdao")] = None,
    adcode: Annotated[str | None, typer.Option("--adcode", help="City adcode (default: from the districts)")] = None,
) -> None:
    """Migrate the (empty) database, store the city's profile and load its districts."""
    from api.cli import console
    from api.cli.db import upgrade
    from layers.city import create_city

    url = Settings().owner_url
    upgrade(url)
    profile, report = create_city(url, name, districts, crs=crs, area_crs=area_crs, catalog=catalog,
                                  name_en=name_en, adcode=adcode)
    console.print(f"[green]{profile.name} ({profile.name_en}, {profile.adcode})[/]: "
                  f"{report.counts.get('added', 0)} districts, "
                  f"area CRS EPSG:{profile.area_srid}, extent {profile.bbox.describe()}, "
                  f"plan catalog: {profile.catalog or 'none'}.")


@city_app.command("show")
def show_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the profile of the city this database holds."""
    from api.cli import console
    from gis.crs import proj_crs
    from layers.city import load

    with psycopg.connect(Settings().owner_url) as conn:
        profile = load(conn, fresh=True)
        row = conn.execute("SELECT count(*), coalesce(sum(area_mu), 0) FROM renewal.districts").fetchone()
    if as_json:
        console.print_json(json.dumps(profile.public(), ensure_ascii=False))
        return
    n, mu = row if row else (0, 0.0)
    lines = [
        ("城市 City", f"{profile.name} {profile.name_en} ({profile.adcode})"),
        ("范围 Extent", profile.bbox.describe()),
        ("面积坐标系 Area CRS", f"EPSG:{profile.area_srid} {proj_crs(profile.area_srid).name}"),
        ("地图中心 Map", f"{profile.centre[0]:.4f}°E {profile.centre[1]:.4f}°N, zoom {profile.zoom:g}"),
        ("标题 Title", f"{profile.title} / {profile.title_en}"),
        ("规划目录 Plan catalog", profile.catalog or "none (plain layer server)"),
        ("演示数据 Demo", profile.demo or "none"),
        ("区县 Districts", f"{n} ({float(mu):,.0f} mu)"),
    ]
    for label, value in lines:
        console.print(f"[bold]{label}[/]: {value}")


def register(app: typer.Typer) -> None:
    """Add ``city`` to the root CLI."""
    app.add_typer(city_app, name="city")
