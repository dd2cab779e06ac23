"""HTML pages of the OGC API: Jinja2 templates, readable without JavaScript.

A small Leaflet map is drawn when ``/vendor/leaflet/leaflet.js`` loads; without it the page still
shows every link, property and value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from layers.city import current
from layers.history import LOCAL_TIMEZONE

_INSTANT: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@lru_cache(maxsize=1)
def env() -> Environment:
    """The template environment (autoescaping on)."""
    e = Environment(loader=PackageLoader("api.ogc", "templates"), autoescape=select_autoescape(["html"]))
    e.filters["safe_json_text"] = safe_json_text
    e.filters["display"] = display
    return e


def display(value: Any, name: str = "", precisions: Mapping[str, int] | None = None) -> str:
    """A property value for people: numbers to the field's precision, instants in local time (Asia/Shanghai).

    Only the HTML pages use this; GeoJSON and the exports keep the stored value.
    """
    if value is None:
        return ""
    digits = (precisions or {}).get(name)
    if digits is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    if isinstance(value, str) and _INSTANT.match(value):
        try:
            instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if instant.tzinfo is not None:
            return instant.astimezone(ZoneInfo(LOCAL_TIMEZONE)).strftime("%Y-%m-%d %H:%M")
    return str(value)


def safe_json_text(text: str) -> Markup:
    """JSON text made safe inside ``<script>`` (no ``</script>``, no HTML-significant characters)."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render(
    template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """Render a template to an HTML response (``city``: the profile of the database the app serves)."""
    html = env().get_template(template).render(**{"city": current(), **context})
    return HTMLResponse(html, status_code=status_code, headers=headers)
