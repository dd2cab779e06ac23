"""HTML pages of the OGC API: Jinja2 templates, readable without JavaScript.

A small Leaflet map is drawn when ``/vendor/leaflet/leaflet.js`` loads; without it the page still
shows every link, property and value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from layers.city import current


@lru_cache(maxsize=1)
def env() -> Environment:
    """The template environment (autoescaping on)."""
    e = Environment(loader=PackageLoader("api.ogc", "templates"), autoescape=select_autoescape(["html"]))
    e.filters["safe_json_text"] = safe_json_text
    return e


def safe_json_text(text: str) -> Markup:
    """JSON text made safe inside ``<script>`` (no ``</script>``, no HTML-significant characters)."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render(
    template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """Render a template to an HTML response (``city``: the profile of the database the app serves)."""
    html = env().get_template(template).render(**{"city": current(), **context})
    return HTMLResponse(html, status_code=status_code, headers=headers)
