"""填报与审核 in headless Chromium with the network off: sign in, report with a photo, review, return, resubmit.

Its own demo database and live server (it writes), users made with the real ``renewal users``
code; screenshots of the form, the queue (before/after) and the phone layout go to the artefacts.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from tests.browser.conftest import _check, _new_page
from tests.conftest import ARTIFACTS, LiveServer, scratch_demo_database

YUHUA, QIAOXI = "130108", "130104"
PASSWORD = "report pass 2026"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A scratch demo database, users with passwords, and a live server with review on."""
    from api.cli.users import add_user, set_password

    with scratch_demo_database("renewal_rbrowser") as url:
        tag = uuid.uuid4().hex[:5]
        users = {"editor": f"ed_{tag}", "reviewer": f"rv_{tag}", "other": f"qx_{tag}"}
        add_user(url, users["editor"], "editor", [YUHUA])
        add_user(url, users["reviewer"], "reviewer", [])
        add_user(url, users["other"], "editor", [QIAOXI])
        for name in users.values():
            set_password(url, name, PASSWORD)
        server = LiveServer(url, env={"RENEWAL_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
                                      "RENEWAL_ANON_RATE_PER_S": "0"})
        try:
            yield {"url": url, "base": server.url, "users": users}
        finally:
            server.stop()


def _photo() -> bytes:
    img = Image.new("RGB", (800, 600), (90, 140, 200))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 09:30:00"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _sign_in(vp: Any, base: str, name: str) -> None:
    vp.page.goto(base + "/viewer/report")
    vp.page.fill("#signin-form [name=user]", name)
    vp.page.fill("#signin-form [name=password]", PASSWORD)
    vp.page.click("#signin-form button[type=submit]")
    vp.page.wait_for_selector("#btn-signout:not([hidden])")


def _pending_compound(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT c.id FROM renewal.old_compounds AS c WHERE c.district_code = %s AND c.status = 'pending' AND "
            "NOT EXISTS (SELECT 1 FROM renewal.submissions AS s WHERE s.feature_id = c.id) ORDER BY c.id LIMIT 1",
            (YUHUA,)).fetchone()
    assert row is not None
    return int(row[0])


def _actual(base: str) -> float:
    body = httpx.get(base + "/progress/compounds_advanced_fyp").json()
    return float(body["actual"])


def _report(vp: Any, fid: int, *, note: str, photo: bool = True) -> None:
    page = vp.page
    page.wait_for_selector("#layer option[value=old_compounds]", state="attached")
    page.select_option("#layer", "old_compounds")
    # ids are per layer: wait for this layer's list (the first layer's may hold the same id)
    page.wait_for_selector(f"#feature[data-layer=old_compounds] option[value='{fid}']", state="attached",
                           timeout=30_000)
    page.select_option("#feature", str(fid))
    page.wait_for_selector(f"#fields[data-fid='{fid}'] select[data-field=status] option[value=started]",
                           state="attached")
    page.select_option("#fields select[data-field=status]", "started")
    page.fill("#fields input[data-field=renovation_year]", "2023")
    page.fill("#sub-form [name=effective_date]", "2025-06-01")
    page.fill("#sub-form [name=document]", "裕政字〔2026〕8号")
    page.fill("#sub-form [name=note]", note)
    if photo:
        page.set_input_files("#files", files=[{"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": _photo()}])


def test_report_review_return_resubmit(browser: Any, site: dict[str, Any]) -> None:
    base, users = site["base"], site["users"]
    fid = _pending_compound(site["url"])
    before = _actual(base)
    ctx, ed = _new_page(browser, base, 1280, 900)
    try:
        _sign_in(ed, base, users["editor"])
        # the photo input opens the camera on a phone
        assert ed.page.get_attribute("#files", "capture") == "environment"
        _report(ed, fid, note="已进场施工")
        ed.page.screenshot(path=str(ARTIFACTS / "report-form.png"), full_page=True)
        ed.page.click("#btn-submit")
        ed.page.wait_for_selector("#mine .sub[data-status=pending]")
        assert "#" in ed.page.text_content("#sub-msg")
        assert _actual(base) == before  # pending counts nothing
        # crafting a request for another district's feature, with the page's own session and token
        with psycopg.connect(site["url"]) as conn:
            other = conn.execute("SELECT id FROM renewal.old_compounds WHERE district_code = %s LIMIT 1",
                                 (QIAOXI,)).fetchone()[0]
        status = ed.page.evaluate(
            """async (fid) => { const s = await (await fetch('/auth/session')).json();
                 const r = await fetch(`/collections/old_compounds/items/${fid}/submissions`, {method: 'POST',
                   headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf},
                   body: JSON.stringify({properties: {name: 'x'}})}); return r.status; }""", other)
        assert status == 403
        # and the form lists own-district features only
        options = ed.page.eval_on_selector_all("#feature option", "els => els.map(e => e.value)")
        assert str(other) not in options
        assert ed.external == []  # nothing outside 127.0.0.1 was requested
    finally:
        ctx.close()

    ctx, rv = _new_page(browser, base, 1280, 900)
    try:
        _sign_in(rv, base, users["reviewer"])
        rv.page.wait_for_selector("#queue-list .sub")
        card = rv.page.locator("#queue-list .sub").first
        assert "已进场施工" in card.text_content() and card.locator(".ba svg polygon").count() == 2
        assert card.locator(".thumbs img").count() == 1
        rv.page.screenshot(path=str(ARTIFACTS / "report-queue.png"), full_page=True)
        card.locator(".ba").screenshot(path=str(ARTIFACTS / "report-before-after.png"))
        sid = card.get_attribute("data-sid")
        rv.page.click(f"[data-approve='{sid}']")
        rv.page.wait_for_selector(f"#queue-list .sub[data-sid='{sid}']", state="detached")
        assert _actual(base) == before + 1
        _check(rv)  # no console errors, no outside requests
    finally:
        ctx.close()

    # returned: the editor sees the comment, corrects and resubmits
    fid2 = _pending_compound(site["url"])
    ctx, ed = _new_page(browser, base, 1280, 900)
    try:
        _sign_in(ed, base, users["editor"])
        _report(ed, fid2, note="第一次", photo=False)
        ed.page.click("#btn-submit")
        ed.page.wait_for_selector("#mine .sub[data-status=pending]")
        sid2 = ed.page.locator("#mine .sub[data-status=pending]").first.get_attribute("data-sid")
    finally:
        ctx.close()
    ctx, rv = _new_page(browser, base, 1280, 900)
    try:
        _sign_in(rv, base, users["reviewer"])
        rv.page.wait_for_selector(f"[data-comment='{sid2}']")
        rv.page.fill(f"[data-comment='{sid2}']", "请补充现场照片")
        rv.page.click(f"[data-return='{sid2}']")
        rv.page.wait_for_selector(f"#queue-list .sub[data-sid='{sid2}']", state="detached")
    finally:
        ctx.close()
    ctx, ed = _new_page(browser, base, 375, 740)
    try:
        _sign_in(ed, base, users["editor"])
        returned = ed.page.locator(f"#mine .sub[data-sid='{sid2}']")
        returned.wait_for()
        assert returned.get_attribute("data-status") == "returned"
        assert "请补充现场照片" in returned.text_content()
        assert ed.page.evaluate("document.documentElement.scrollWidth") <= 375  # the phone layout fits
        assert ed.page.get_attribute("#due-xlsx", "href").endswith("f=xlsx")  # 督办清单 download
        ed.page.screenshot(path=str(ARTIFACTS / "report-phone.png"), full_page=True)
        ed.page.click(f"[data-correct='{sid2}']")
        ed.page.wait_for_function("document.querySelector('#sub-form [name=resubmit]').value !== ''")
        ed.page.set_input_files("#files", files=[{"name": "补充.jpg", "mimeType": "image/jpeg", "buffer": _photo()}])
        ed.page.click("#btn-submit")
        ed.page.wait_for_selector(f"#mine .sub[data-sid='{sid2}'][data-status=pending]")
    finally:
        ctx.close()


# --------------------------------------------------------------------------- drawing (terra-draw)


def _canvas_px(page: Any, lonlat: list[float]) -> tuple[float, float]:
    """Viewport pixel of a lon/lat on the report page's drawing map."""
    page.locator("#draw-map").scroll_into_view_if_needed()
    box = page.locator("#draw-map canvas.maplibregl-canvas").bounding_box()
    p = page.evaluate("(ll) => { const p = window.reportDraw.map.project(ll); return [p.x, p.y]; }", lonlat)
    return round(box["x"] + p[0]), round(box["y"] + p[1])  # whole pixels: what a mouse event carries


def _lonlat_at(page: Any, x: float, y: float) -> list[float]:
    """The lon/lat under a viewport pixel of the drawing map."""
    box = page.locator("#draw-map canvas.maplibregl-canvas").bounding_box()
    return page.evaluate("([x, y]) => { const p = window.reportDraw.map.unproject([x, y]); return [p.lng, p.lat]; }",
                         [x - box["x"], y - box["y"]])


def _item_geometry(base: str, fid: int) -> dict[str, Any]:
    r = httpx.get(f"{base}/collections/old_compounds/items/{fid}")
    assert r.status_code == 200, r.text
    geometry: dict[str, Any] = r.json()["geometry"]
    return geometry


def _near(a: list[float], b: list[float], tol: float = 3e-5) -> bool:
    """Within about a pixel at zoom 16 (sub-pixel layout offsets); a vertex moved by 30 px is 6e-4 degrees away."""
    return abs(a[0] - b[0]) < tol and abs(a[1] - b[1]) < tol


def _approve_by_name(browser: Any, site: dict[str, Any], name: str, shot: str) -> int:
    """The reviewer approves the pending submission naming ``name``; returns the feature id it wrote."""
    base = site["base"]
    ctx, rv = _new_page(browser, base, 1280, 900)
    try:
        _sign_in(rv, base, site["users"]["reviewer"])
        card = rv.page.locator("#queue-list .sub", has_text=name)
        card.wait_for()
        assert card.locator(".ba svg polygon").count() >= 1  # the proposed shape is drawn for the reviewer
        card.locator(".ba").screenshot(path=str(ARTIFACTS / shot))
        sid = card.get_attribute("data-sid")
        rv.page.click(f"[data-approve='{sid}']")
        rv.page.wait_for_selector(f"#queue-list .sub[data-sid='{sid}']", state="detached")
        got = rv.page.evaluate("async (sid) => (await (await fetch(`/submissions/${sid}`)).json())", sid)
        assert got["status"] == "approved", got
        _check(rv)
        return int(got["result_feature_id"])
    finally:
        ctx.close()


def test_editor_draws_a_new_polygon_reviewer_approves_it(browser: Any, site: dict[str, Any]) -> None:
    """A new compound drawn on the map (terra-draw, offline) becomes a feature with that shape once approved."""
    base, users = site["base"], site["users"]
    with psycopg.connect(site["url"]) as conn:
        lon, lat = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM "
                                "renewal.districts WHERE code = %s) AS q", (YUHUA,)).fetchone()
    code, name = f"DRAW{uuid.uuid4().hex[:6].upper()}", "新绘制小区"
    ctx, ed = _new_page(browser, base, 1280, 900)
    try:
        page = ed.page
        _sign_in(ed, base, users["editor"])
        page.wait_for_selector("#draw-map[data-ready=true]")
        page.wait_for_selector("#layer option[value=old_compounds]", state="attached")
        page.select_option("#layer", "old_compounds")
        page.wait_for_selector("#feature[data-layer=old_compounds] option[value=new]", state="attached",
                               timeout=30_000)
        page.select_option("#feature", "new")
        page.wait_for_selector("#fields[data-fid=new] input[data-field=code]")
        assert page.text_content("#draw-draw") == "画面"  # the layer stores polygons
        page.evaluate("([lon, lat]) => window.reportDraw.map.jumpTo({center: [lon, lat], zoom: 16})", [lon, lat])
        cx, cy = _canvas_px(page, [lon, lat])
        corners = [(-60, -40), (60, -40), (60, 40), (-60, 40)]
        expected = [_lonlat_at(page, cx + dx, cy + dy) for dx, dy in corners]
        for dx, dy in corners:
            page.mouse.click(cx + dx, cy + dy)
            page.wait_for_timeout(150)
        page.mouse.click(cx + corners[0][0], cy + corners[0][1])  # the first vertex again closes the ring
        page.wait_for_selector("#draw-state[data-changed=true][data-parts='1']")
        page.fill("#fields input[data-field=code]", code)
        page.fill("#fields input[data-field=name]", name)
        page.select_option("#fields select[data-field=status]", "pending")
        page.fill("#sub-form [name=effective_date]", "2025-06-01")
        page.fill("#sub-form [name=note]", "新增小区，现场核实边界")
        page.screenshot(path=str(ARTIFACTS / "report-draw-new.png"), full_page=True)
        page.click("#btn-submit")
        page.locator("#mine .sub[data-status=pending]", has_text=name).wait_for()
        assert "#" in page.text_content("#sub-msg")
        _check(ed)
    finally:
        ctx.close()

    fid = _approve_by_name(browser, site, name, "report-draw-new-before-after.png")
    geom = _item_geometry(base, fid)
    assert geom["type"] == "MultiPolygon" and len(geom["coordinates"]) == 1
    ring = geom["coordinates"][0][0]
    assert len(ring) == 5 and _near(ring[0], ring[-1], 1e-12)
    for want in expected:  # every clicked corner is a vertex of the stored polygon (CRS84 in, CRS84 out)
        assert any(_near(v, want) for v in ring), (want, ring)
    listed = httpx.get(f"{base}/collections/old_compounds/items", params={"code": code}).json()
    assert [f["id"] for f in listed["features"]] == [fid]


def test_editor_moves_a_vertex_of_a_feature_reviewer_approves_it(browser: Any, site: dict[str, Any]) -> None:
    """Vertex editing: drag one corner of a compound; approved, the stored shape has the moved corner."""
    base, users = site["base"], site["users"]
    fid = _pending_compound(site["url"])
    with psycopg.connect(site["url"]) as conn:
        name, inside = conn.execute(
            "SELECT name, ARRAY[ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))] "
            "FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()
    old = _item_geometry(base, fid)
    assert old["type"] == "MultiPolygon" and len(old["coordinates"][0]) == 1  # no holes: editable
    corner = old["coordinates"][0][0][1]
    ctx, ed = _new_page(browser, base, 1280, 900)
    try:
        page = ed.page
        _sign_in(ed, base, users["editor"])
        page.wait_for_selector("#layer option[value=old_compounds]", state="attached")
        page.select_option("#layer", "old_compounds")
        page.wait_for_selector(f"#feature[data-layer=old_compounds] option[value='{fid}']", state="attached",
                               timeout=30_000)
        page.select_option("#feature", str(fid))
        page.wait_for_selector(f"#fields[data-fid='{fid}']")
        page.wait_for_selector("#draw-state[data-changed=false][data-parts='1']")
        x, y = _canvas_px(page, list(inside))
        page.mouse.click(x, y)  # select the shape: its vertices get handles
        page.wait_for_timeout(300)
        x, y = _canvas_px(page, corner)
        target = (x + 30, y + 20)
        moved = _lonlat_at(page, *target)
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 10, y + 7, steps=4)
        page.mouse.move(*target, steps=6)
        page.mouse.up()
        page.wait_for_selector("#draw-state[data-changed=true]")
        page.screenshot(path=str(ARTIFACTS / "report-draw-vertex.png"), full_page=True)
        page.fill("#sub-form [name=note]", "按实测边界修正一个角点")
        page.click("#btn-submit")
        page.locator("#mine .sub[data-status=pending]", has_text=name).first.wait_for()
        _check(ed)
    finally:
        ctx.close()

    assert _item_geometry(base, fid) == old  # pending: the feature is unchanged
    assert _approve_by_name(browser, site, name, "report-draw-vertex-before-after.png") == fid
    ring = _item_geometry(base, fid)["coordinates"][0][0]
    assert any(_near(v, moved) for v in ring), (moved, ring)
    assert not any(_near(v, corner, 1e-9) for v in ring)
    assert len(ring) == len(old["coordinates"][0][0])  # moved, not inserted


def test_without_the_drawing_library_the_form_still_reports(browser: Any, site: dict[str, Any]) -> None:
    """No terra-draw (or no WebGL): the map and its tools are hidden with a note, and a status change still goes."""
    base = site["base"]
    fid = _pending_compound(site["url"])
    ctx, ed = _new_page(browser, base, 1280, 900)
    try:
        ctx.route("**/vendor/terra-draw*/**", lambda r: r.abort())
        page = ed.page
        _sign_in(ed, base, site["users"]["editor"])
        page.select_option("#layer", "old_compounds")
        page.wait_for_selector(f"#feature[data-layer=old_compounds] option[value='{fid}']", state="attached",
                               timeout=30_000)
        page.select_option("#feature", str(fid))
        page.locator("#draw-state", has_text="仍可填报").wait_for()
        assert not page.is_visible("#draw-map") and not page.is_visible(".draw-tools")
        page.select_option(f"#fields[data-fid='{fid}'] select[data-field=status]", "started")
        page.fill("#sub-form [name=effective_date]", "2025-06-01")
        page.click("#btn-submit")
        page.locator("#mine .sub[data-status=pending]").first.wait_for()
        assert ed.external == []
    finally:
        ctx.close()
