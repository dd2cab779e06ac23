"""Front-end libraries served by the app itself, so maps render on closed intranets.

The libraries come from the npm registry at set-up (``package.json`` /
``package-lock.json``, ``make assets`` runs ``npm ci`` into ``node_modules/``); nothing is
copied into the repository. :data:`VENDOR_DIRS` is the whitelist: the first path segment
after ``/vendor/`` names a package, mapped to one directory inside ``node_modules``; only
files under it with a whitelisted suffix are served. To add a library (e.g. maplibre-gl
for the viewer): add it to ``package.json``, run ``npm install``, and add one line here,
e.g. ``"maplibre-gl": "maplibre-gl/dist"`` → ``/vendor/maplibre-gl/maplibre-gl.mjs``.

:data:`FOLIUM_JS` / :data:`FOLIUM_CSS` replace folium's CDN URLs with these local paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from gis.errors import NotFoundError

VENDOR_DIRS: dict[str, str] = {
    "leaflet": "leaflet/dist",
    "jquery": "jquery/dist",
    "bootstrap": "bootstrap/dist",
    "fontawesome": "@fortawesome/fontawesome-free",
    "leaflet.awesome-markers": "leaflet.awesome-markers/dist",
    "maplibre-gl": "maplibre-gl/dist",
    "terra-draw": "terra-draw/dist",
    "terra-draw-maplibre-gl-adapter": "terra-draw-maplibre-gl-adapter/dist",
    "swagger-ui-dist": "swagger-ui-dist",
}
"""URL package name → directory inside ``node_modules`` (the whitelist)."""

ALLOWED_SUFFIXES = frozenset(
    {".js", ".mjs", ".css", ".map", ".png", ".svg", ".gif", ".jpg", ".woff", ".woff2", ".ttf", ".eot", ".json",
     ".pbf"}
)
"""File types that may be served from a whitelisted package directory."""

VENDOR_PREFIX = "/vendor"

FOLIUM_JS: list[tuple[str, str]] = [
    ("leaflet", f"{VENDOR_PREFIX}/leaflet/leaflet.js"),
    ("jquery", f"{VENDOR_PREFIX}/jquery/jquery.min.js"),
    ("bootstrap", f"{VENDOR_PREFIX}/bootstrap/js/bootstrap.bundle.min.js"),
    ("awesome_markers", f"{VENDOR_PREFIX}/leaflet.awesome-markers/leaflet.awesome-markers.js"),
]
"""folium's default JavaScript, from the app (folium's own names; order matters: Leaflet first)."""

FOLIUM_CSS: list[tuple[str, str]] = [
    ("leaflet_css", f"{VENDOR_PREFIX}/leaflet/leaflet.css"),
    ("bootstrap_css", f"{VENDOR_PREFIX}/bootstrap/css/bootstrap.min.css"),
    ("awesome_markers_font_css", f"{VENDOR_PREFIX}/fontawesome/css/all.min.css"),
    ("awesome_markers_css", f"{VENDOR_PREFIX}/leaflet.awesome-markers/leaflet.awesome-markers.css"),
]
"""folium's default CSS, from the app. Bootstrap 3 glyphicons and folium's rotate CSS (both CDN-only,
unused by these maps) are left out."""


def node_modules_dir() -> Path:
    """Where ``npm ci`` installed the libraries (``RENEWAL_NODE_MODULES`` overrides)."""
    env = os.environ.get("RENEWAL_NODE_MODULES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "node_modules"


def resolve(package: str, path: str) -> Path:
    """The file for ``/vendor/<package>/<path>``.

    Raises
    ------
    NotFoundError
        If the package is not whitelisted, the path leaves its directory, the suffix is
        not allowed, or the file is missing (then ``make assets`` has not been run).
    """
    sub = VENDOR_DIRS.get(package)
    if sub is None:
        raise NotFoundError(
            f"No front-end package '{package}' is served. Available: {', '.join(sorted(VENDOR_DIRS))}.",
            detail={"package": package},
        )
    base = (node_modules_dir() / sub).resolve()
    target = (base / path).resolve()
    if base not in target.parents or target.suffix.lower() not in ALLOWED_SUFFIXES:
        raise NotFoundError(f"'{path}' is not a file of package '{package}'.", detail={"package": package})
    if not target.is_file():
        hint = "" if base.is_dir() else " The libraries are not installed: run `make assets` (npm ci)."
        raise NotFoundError(f"'{path}' is not a file of package '{package}'.{hint}", detail={"package": package})
    return target


def local_file(url: str) -> Path:
    """The file behind a ``/vendor/...`` URL of :data:`FOLIUM_JS`/:data:`FOLIUM_CSS` (for inlining)."""
    rest = url.removeprefix(VENDOR_PREFIX + "/")
    package, _, path = rest.partition("/")
    return resolve(package, path)
