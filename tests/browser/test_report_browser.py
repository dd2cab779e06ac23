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
