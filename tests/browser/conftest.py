"""Browser fixtures: Debian's Chromium driven by playwright, network off, on the live demo server.

Every request that does not go to 127.0.0.1 is aborted and recorded; each test asserts that none
was attempted (the viewer must work on an intranet with no internet) and that the page logged no
console errors. Screenshots go to ``tests.conftest.ARTIFACTS``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""WebGL (MapLibre) works in headless Chromium without a GPU through SwiftShader."""


def _chromium_path() -> str | None:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    path = _chromium_path()
    if path is None:
        if IN_CI:
            raise RuntimeError("chromium is not installed (scripts/os-test-deps.sh installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class ViewerPage:
    """A page on the viewer, with what it logged and which outside requests it tried."""

    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def open(self, path: str = "/") -> None:
        """Load the viewer and wait until it has drawn with its status states applied."""
        self.page.goto(self.base_url + path)
        self.page.wait_for_function("document.body.dataset.ready", timeout=60_000)
        assert self.page.evaluate("document.body.dataset.ready") == "true"
        self.idle()

    def idle(self) -> None:
        """Wait for pending status requests and for the map to finish drawing."""
        self.page.evaluate("window.viewer.idle()")

    def eval(self, script: str, arg: Any = None) -> Any:
        """Evaluate JavaScript in the page."""
        return self.page.evaluate(script, arg)

    def jump(self, lon: float, lat: float, zoom: float) -> None:
        """Move the camera without animation and wait for the tiles."""
        self.eval("([lon, lat, z]) => window.viewer.map.jumpTo({center: [lon, lat], zoom: z})", [lon, lat, zoom])
        self.page.wait_for_timeout(100)
        self.idle()

    def rendered(self, layer: str) -> int:
        """Features of ``layer`` drawn in the current view."""
        return int(self.eval("(l) => window.viewer.renderedFeatures(l)", layer))

    def screenshot(self, name: str) -> bytes:
        """Save a screenshot as a test artefact and return its bytes."""
        ARTIFACTS.mkdir(exist_ok=True)
        data: bytes = self.page.screenshot(path=str(ARTIFACTS / f"viewer-{name}.png"))
        return data


def _new_page(browser: Any, base_url: str, width: int, height: int) -> tuple[Any, ViewerPage]:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    vp = ViewerPage(page, base_url)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            vp.external.append(url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: vp.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: vp.console_errors.append(f"uncaught: {e}"))
    page.on("response", lambda r: vp.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return context, vp


def _check(vp: ViewerPage) -> None:
    assert vp.external == [], f"the viewer tried to reach the internet: {vp.external}"
    assert vp.console_errors == [], f"console errors: {vp.console_errors}; failed responses: {vp.failed}"


@pytest.fixture()
def viewer(browser: Any, live_server: Any) -> Iterator[ViewerPage]:
    """A desktop-size page on the live server (1280×800), checked for errors and outside requests."""
    context, vp = _new_page(browser, live_server.url, 1280, 800)
    try:
        yield vp
        _check(vp)
    finally:
        context.close()


@pytest.fixture()
def phone(browser: Any, live_server: Any) -> Iterator[ViewerPage]:
    """A phone-width page (375×740)."""
    context, vp = _new_page(browser, live_server.url, 375, 740)
    try:
        yield vp
        _check(vp)
    finally:
        context.close()
