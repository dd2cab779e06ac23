"""Submissions and review through the API: every transition, permission and limit.

Real PostGIS, the real app (TestClient with its lifespan), users created with the real
``renewal users`` code; photos made with Pillow carrying real EXIF time and GPS.
"""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from layers.attachments import attachment_path
from tests.api.edit_support import (
    QIAOXI,
    REVIEW_USERS,
    YUHUA,
    auth,
    insert_feature,
    make_client,
    point_in,
    role_keys,
    row_md5,
)
from tests.conftest import scratch_demo_database

TODAY_MINUS = "2025-06-01"  # inside the 14th five-year plan, so compounds_advanced_fyp counts it


def jpeg(lon: float | None = None, lat: float | None = None, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG photo with EXIF DateTimeOriginal and (optionally) a GPS position."""
    img = Image.new("RGB", size, (180, 120, 60))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 10:15:00"
    if lon is not None and lat is not None:
        gps = exif.get_ifd(0x8825)

        def dms(v: float) -> tuple[float, float, float]:
            d = int(v)
            m = int((v - d) * 60)
            return float(d), float(m), round((v - d - m / 60) * 3600, 4)

        gps[1], gps[2], gps[3], gps[4] = "N", dms(lat), "E", dms(lon)
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.fixture(scope="module")
def review_db() -> Iterator[str]:
    """A demo database of this module's own: its features do not crowd other modules' spatial queries."""
    with scratch_demo_database("renewal_review") as url:
        yield url


@pytest.fixture(scope="module")
def edit_db(review_db: str) -> str:
    """In this module the editing database is its own, so conftest's ``econn`` connects to it."""
    return review_db


@pytest.fixture(scope="module")
def people(review_db: str) -> dict[str, str]:
    """API keys per role (editing users and reviewers), created with the real ``renewal users`` code."""
    return role_keys(review_db, REVIEW_USERS)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attachment storage directory of this module's app."""
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def sc(review_db: str, storage: Path) -> Iterator[TestClient]:
    """A client with review required (the default) and a small attachment limit."""
    with make_client(review_db, review_required=True, storage_dir=str(storage), attachment_max_bytes=200_000,
                     photo_max_distance_m=300) as c:
        yield c


def _compound(econn: psycopg.Connection, district: str = YUHUA) -> int:
    return insert_feature(econn, "old_compounds", district, status="pending", renovation_year=2023)


def _submit(sc: TestClient, people: dict[str, str], role: str, fid: int, status: str = "started",
            props: dict[str, Any] | None = None, **extra: Any) -> Any:
    body = {"type": "Feature", "properties": {"status": status, **(props or {})},
            "change": {"effective_date": TODAY_MINUS, "document": "裕政字〔2026〕8号", "note": "已进场施工"}, **extra}
    return sc.post(f"/collections/old_compounds/items/{fid}/submissions", json=body, headers=auth(people, role))


def _advanced(sc: TestClient) -> float:
    r = sc.get("/progress/compounds_advanced_fyp")
    assert r.status_code == 200
    return float(r.json()["actual"])


def _demo_compound(econn: psycopg.Connection) -> int:
    """A demo compound of Yuhua, pending, with its history, never submitted on."""
    row = econn.execute(
        "SELECT c.id FROM renewal.old_compounds AS c WHERE c.district_code = %s AND c.status = 'pending' "
        "AND NOT EXISTS (SELECT 1 FROM renewal.submissions AS s "
        "WHERE s.layer = 'old_compounds' AND s.feature_id = c.id) ORDER BY c.id LIMIT 1", (YUHUA,)).fetchone()
    assert row is not None
    return int(row[0])


def test_submit_approve_changes_feature_history_audit_and_progress(sc: TestClient, people: dict[str, str],
                                                                    econn: psycopg.Connection) -> None:
    fid = _demo_compound(econn)
    md5 = row_md5(econn, "old_compounds", fid)
    before = _advanced(sc)
    r = _submit(sc, people, "editor_in", fid, props={"renovation_year": 2023})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert r.headers["location"].endswith(f"/submissions/{sub['id']}")
    assert sub["status"] == "pending" and sub["before"]["properties"]["status"] == "pending"
    assert sub["proposal"]["properties"] == {"status": "started", "renovation_year": 2023}
    assert sub["change"]["document"] == "裕政字〔2026〕8号"
    # pending writes nothing: the row, and progress, are unchanged
    assert row_md5(econn, "old_compounds", fid) == md5
    assert _advanced(sc) == before
    # it recorded the feature as a GET reads it (layers.editing.read_feature_row): the ETag becomes the approval's
    # If-Match against the locked row, so an approval of an unchanged feature must not be refused as a conflict
    etag = sc.get(f"/collections/old_compounds/items/{fid}", headers=auth(people, "editor_in")).headers["etag"]
    assert econn.execute("SELECT base_etag FROM renewal.submissions WHERE id = %s", (sub["id"],)).fetchone() == (etag,)
    assert sub["before"]["geometry"]["type"] == "MultiPolygon" and sub["before"]["id"] == fid
    # the editor sees it pending
    mine = sc.get("/submissions", params={"status": "pending", "collection": "old_compounds"},
                  headers=auth(people, "editor_in")).json()["submissions"]
    assert sub["id"] in [s["id"] for s in mine]

    r = sc.post(f"/submissions/{sub['id']}/approve", json={"comment": "核实无误"}, headers=auth(people, "reviewer"))
    assert r.status_code == 200, r.text
    assert r.json()["featureId"] == fid
    status = econn.execute("SELECT status FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()
    assert status == ("started",)
    hist = econn.execute(
        "SELECT to_status, effective_date::text, source_doc, note, recorded_by FROM renewal.status_history "
        "WHERE layer = 'old_compounds' AND feature_id = %s ORDER BY id DESC LIMIT 1", (fid,)).fetchone()
    assert hist is not None and hist[0] == "started" and hist[1] == TODAY_MINUS and hist[2] == "裕政字〔2026〕8号"
    assert f"submission #{sub['id']}" in hist[3] and hist[4].startswith("rev_")
    audit = econn.execute("SELECT actor, channel FROM renewal.audit_log WHERE layer = 'old_compounds' "
                          "AND feature_id = %s ORDER BY id DESC LIMIT 1", (fid,)).fetchone()
    assert audit is not None and audit[0].startswith("rev_") and audit[1] == "review"
    assert _advanced(sc) == before + 1
    got = sc.get(f"/submissions/{sub['id']}", headers=auth(people, "editor_in")).json()
    assert got["status"] == "approved" and [e["action"] for e in got["events"]] == ["submit", "approve"]
    # deciding twice: a clear 409
    again = sc.post(f"/submissions/{sub['id']}/approve", json={}, headers=auth(people, "reviewer"))
    assert again.status_code == 409 and "no longer pending" in again.json()["detail"]


def test_return_correct_resubmit(sc: TestClient, people: dict[str, str], econn: psycopg.Connection) -> None:
    fid = _compound(econn)
    sid = _submit(sc, people, "editor_in", fid, status="started").json()["id"]
    # a return needs a comment
    r = sc.post(f"/submissions/{sid}/return", json={}, headers=auth(people, "reviewer"))
    assert r.status_code == 400 and "comment" in r.json()["detail"]
    r = sc.post(f"/submissions/{sid}/return", json={"comment": "缺少现场照片，请补充"},
                headers=auth(people, "reviewer"))
    assert r.status_code == 200
    got = sc.get(f"/submissions/{sid}", headers=auth(people, "editor_in")).json()
    assert got["status"] == "returned" and got["comment"] == "缺少现场照片，请补充"
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer")).status_code == 409
    # another editor cannot resubmit it; the submitter can
    assert sc.post(f"/submissions/{sid}/resubmit", json={"properties": {"status": "started"}},
                   headers=auth(people, "editor_out")).status_code == 404
    r = sc.post(f"/submissions/{sid}/resubmit", json={"properties": {"status": "started"},
                                                      "change": {"effective_date": TODAY_MINUS}},
                headers=auth(people, "editor_in"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["revision"] == 2
    assert sc.post(f"/submissions/{sid}/resubmit", json={"properties": {"status": "started"}},
                   headers=auth(people, "editor_in")).status_code == 409
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer")).status_code == 200
    actions = [e["action"] for e in sc.get(f"/submissions/{sid}", headers=auth(people, "admin")).json()["events"]]
    assert actions == ["submit", "return", "resubmit", "approve"]


def test_district_scope_and_roles(sc: TestClient, people: dict[str, str], econn: psycopg.Connection) -> None:
    fid = _compound(econn, YUHUA)
    md5 = row_md5(econn, "old_compounds", fid)
    # an editor of another district, by crafted request
    r = _submit(sc, people, "editor_out", fid)
    assert r.status_code == 403 and "130104" in r.json()["detail"]
    # moving a feature out of one's districts
    x, y = point_in(econn, QIAOXI)
    far = {"type": "MultiPolygon", "coordinates": [[[[x, y], [x + 0.001, y], [x + 0.001, y + 0.001], [x, y]]]]}
    r = _submit(sc, people, "editor_in", fid, geometry=far)
    assert r.status_code == 403
    assert sc.post(f"/collections/old_compounds/items/{fid}/submissions", json={"properties": {"status": "started"}},
                   ).status_code == 401
    assert _submit(sc, people, "viewer", fid).status_code == 403
    assert sc.get("/submissions", headers=auth(people, "viewer")).status_code == 403
    assert sc.get("/submissions").status_code == 401
    # reference layers are not reported on by editors
    assert sc.post("/collections/districts/items/1/submissions", json={"properties": {"name": "x"}},
                   headers=auth(people, "editor_in")).status_code == 403
    sid = _submit(sc, people, "editor_in", fid).json()["id"]
    # the other district's editor does not see it; editors cannot decide
    assert sc.get(f"/submissions/{sid}", headers=auth(people, "editor_out")).status_code == 404
    others = sc.get("/submissions", headers=auth(people, "editor_out")).json()["submissions"]
    assert sid not in [s["id"] for s in others]
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "editor_in")).status_code == 403
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "viewer")).status_code == 403
    assert sc.post(f"/submissions/{sid}/approve").status_code == 401
    # a reviewer of another district cannot decide it
    r = sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer_qiaoxi"))
    assert r.status_code == 403 and "130108" in r.json()["detail"]
    assert row_md5(econn, "old_compounds", fid) == md5
    # filters
    listed = sc.get("/submissions", params={"district": YUHUA, "status": "pending"},
                    headers=auth(people, "reviewer")).json()["submissions"]
    assert sid in [s["id"] for s in listed] and all(s["district"] == YUHUA for s in listed)
    assert sc.get("/submissions", params={"status": "bogus"}, headers=auth(people, "reviewer")).status_code == 400
    assert sc.get("/submissions", params={"collection": "nope"}, headers=auth(people, "reviewer")).status_code == 404


def test_no_self_review(sc: TestClient, people: dict[str, str], econn: psycopg.Connection) -> None:
    fid = _compound(econn)
    sid = _submit(sc, people, "reviewer", fid).json()["id"]
    r = sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer"))
    assert r.status_code == 403 and "your own" in r.json()["detail"]
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "admin")).status_code == 200


def test_editor_direct_write_refused_reviewer_keeps_it(sc: TestClient, people: dict[str, str],
                                                        econn: psycopg.Connection) -> None:
    fid = _compound(econn)
    etag = sc.get(f"/collections/old_compounds/items/{fid}", headers=auth(people, "admin")).headers["etag"]
    body = {"properties": {"households": 77}}
    r = sc.patch(f"/collections/old_compounds/items/{fid}", json=body,
                 headers={**auth(people, "editor_in"), "If-Match": etag})
    assert r.status_code == 403 and "submissions" in r.json()["detail"]
    r = sc.patch(f"/collections/old_compounds/items/{fid}", json=body,
                 headers={**auth(people, "reviewer"), "If-Match": etag})
    assert r.status_code == 200 and r.json()["properties"]["households"] == 77


def test_new_feature_submission(sc: TestClient, people: dict[str, str], econn: psycopg.Connection) -> None:
    x, y = point_in(econn, YUHUA)
    code = f"P-{uuid.uuid4().hex[:8]}"
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
               "properties": {"code": code, "name": "新停车场", "status": "planned", "spaces": 120},
               "change": {"effective_date": TODAY_MINUS}}
    r = sc.post("/collections/parking_sites/submissions", json=feature, headers=auth(people, "editor_in"))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert r.json()["featureId"] is None and r.json()["district"] == YUHUA
    assert econn.execute("SELECT count(*) FROM renewal.parking_sites WHERE code = %s", (code,)).fetchone() == (0,)
    r = sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer"))
    assert r.status_code == 200
    assert econn.execute("SELECT id FROM renewal.parking_sites WHERE code = %s", (code,)).fetchone() == (
        r.json()["featureId"],)
    # incomplete new features are refused up front
    bad = {**feature, "properties": {"name": "缺编码"}}
    assert sc.post("/collections/parking_sites/submissions", json=bad,
                   headers=auth(people, "editor_in")).status_code == 400


@pytest.mark.parametrize(("body", "status"), [
    ({"properties": {"status": "completed"}}, 400),  # no effective date
    ({"properties": {"status": "nonsense"}, "change": {"effective_date": TODAY_MINUS}}, 400),
    ({"properties": {"households": -5}}, 400),
    ({"properties": {"bogus": 1}}, 400),
    ({"properties": {}}, 400),  # changes nothing
    ({"properties": {"status": "started"}, "change": {"effective_date": "2099-01-01"}}, 400),
    ({"properties": {"status": "started"}, "change": {"effective_date": TODAY_MINUS, "colour": "x"}}, 400),
    ({"properties": {"status": "completed"}, "change": {"effective_date": TODAY_MINUS}}, 200),  # allowed next
    ([1, 2], 400),
])
def test_invalid_submissions(sc: TestClient, people: dict[str, str], econn: psycopg.Connection, body: Any,
                             status: int) -> None:
    fid = _compound(econn)
    econn.execute("UPDATE renewal.old_compounds SET status = 'started' WHERE id = %s", (fid,))
    r = sc.post(f"/collections/old_compounds/items/{fid}/submissions", json=body, headers=auth(people, "editor_in"))
    assert r.status_code == (201 if status == 200 else status), r.text
    assert r.headers["content-type"].startswith("application/" + ("json" if status == 200 else "problem+json"))


def test_lifecycle_skip_is_409(sc: TestClient, people: dict[str, str], econn: psycopg.Connection) -> None:
    """planned -> completed skips the urban-village lifecycle: refused at submission, not at review."""
    fid2 = insert_feature(econn, "urban_villages", YUHUA, status="planned")
    body = {"properties": {"status": "completed"}, "change": {"effective_date": TODAY_MINUS}}
    r = sc.post(f"/collections/urban_villages/items/{fid2}/submissions", json=body, headers=auth(people, "editor_in"))
    assert r.status_code == 409 and "allowed next" in r.json()["detail"]


def test_concurrent_approvals_of_one_feature(sc: TestClient, people: dict[str, str], econn: psycopg.Connection,
                                             review_db: str, storage: Path) -> None:
    fid = _compound(econn)
    a = _submit(sc, people, "editor_in", fid, status="started").json()["id"]
    b = sc.post(f"/collections/old_compounds/items/{fid}/submissions",
                json={"properties": {"households": 999}}, headers=auth(people, "editor_in")).json()["id"]
    results: dict[int, Any] = {}
    barrier = threading.Barrier(2)

    def approve(sid: int) -> None:
        with make_client(review_db, review_required=True, storage_dir=str(storage)) as c:
            barrier.wait()
            results[sid] = c.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer"))

    threads = [threading.Thread(target=approve, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], [r.text for r in results.values()]
    loser = next(r for r in results.values() if r.status_code == 409)
    assert "changed" in loser.json()["detail"] and "resubmit" in loser.json()["detail"]
    # the same submission approved twice at once: one wins
    c1 = _submit(sc, people, "editor_in", _compound(econn)).json()["id"]
    results.clear()
    barrier = threading.Barrier(2)

    def approve_same(slot: int) -> None:
        with make_client(review_db, review_required=True, storage_dir=str(storage)) as c:
            barrier.wait()
            results[slot] = c.post(f"/submissions/{c1}/approve", headers=auth(people, "reviewer" if slot else "admin"))

    threads = [threading.Thread(target=approve_same, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results.values()) == [200, 409]


def test_attachments_exif_thumbnail_distance_and_access(sc: TestClient, people: dict[str, str],
                                                        econn: psycopg.Connection, storage: Path) -> None:
    fid = _compound(econn)
    sid = _submit(sc, people, "editor_in", fid).json()["id"]
    x, y = econn.execute("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM renewal.old_compounds "
                         "WHERE id = %s", (fid,)).fetchone()
    near, far = jpeg(x, y), jpeg(x + 0.05, y)
    up = sc.post(f"/submissions/{sid}/attachments", files={"file": ("../../../etc/现场.jpg", near, "image/jpeg")},
                 headers=auth(people, "editor_in"))
    assert up.status_code == 201, up.text
    info = up.json()
    assert len(info["sha256"]) == 64 and info["media_type"] == "image/jpeg"
    assert info["taken_at"] == "2026-11-30T10:15:00" and abs(info["position"][0] - x) < 1e-5
    stored = storage / info["sha256"][:2] / info["sha256"][2:4] / info["sha256"]
    assert stored.read_bytes() == near and not (storage.parent / "etc").exists()
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("far.jpg", far, "image/jpeg")},
                   headers=auth(people, "editor_in")).status_code == 201
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("批复.pdf", pdf, "application/pdf")},
                   headers=auth(people, "editor_in")).json()["media_type"] == "application/pdf"
    got = sc.get(f"/submissions/{sid}", headers=auth(people, "reviewer")).json()
    atts = {a["sha256"]: a for a in got["attachments"]}
    assert len(atts) == 3 and "warning" not in atts[info["sha256"]]
    far_item = next(a for a in got["attachments"] if a["distance_m"] and a["distance_m"] > 300)
    assert "m from the feature" in far_item["warning"]
    # limits: type from the bytes, size
    r = sc.post(f"/submissions/{sid}/attachments", files={"file": ("x.jpg", b"MZ\x90\x00not an image", "image/jpeg")},
                headers=auth(people, "editor_in"))
    assert r.status_code == 415 and "PDF" in r.json()["detail"]
    big = jpeg(size=(3000, 3000)) + b"\x00" * 200_000
    r = sc.post(f"/submissions/{sid}/attachments", files={"file": ("big.jpg", big, "image/jpeg")},
                headers=auth(people, "editor_in"))
    assert r.status_code == 413 and "MB" in r.json()["detail"]
    # other district's editor may not attach; viewers may not
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("a.jpg", near, "image/jpeg")},
                   headers=auth(people, "editor_out")).status_code == 404
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("a.jpg", near, "image/jpeg")},
                   headers=auth(people, "viewer")).status_code == 403
    refused = near + b"refused"  # a file nobody may attach leaves nothing in the storage
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("b.jpg", refused, "image/jpeg")},
                   headers=auth(people, "editor_out")).status_code == 404
    assert not attachment_path(storage, hashlib.sha256(refused).hexdigest()).exists()
    # reading: signed-in callers read; anonymous only once approved (layer open to them)
    r = sc.get(f"/attachments/{info['sha256']}", headers=auth(people, "viewer"))
    assert r.status_code == 200 and r.content == near and r.headers["content-type"] == "image/jpeg"
    thumb = sc.get(f"/attachments/{info['thumbnail']}", headers=auth(people, "viewer"))
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    assert sc.get(f"/attachments/{info['sha256']}").status_code == 404
    assert sc.get("/attachments/..%2F..%2Fetc%2Fpasswd", headers=auth(people, "viewer")).status_code == 404
    assert sc.get("/attachments/" + "0" * 64, headers=auth(people, "viewer")).status_code == 404
    assert sc.post(f"/submissions/{sid}/approve", headers=auth(people, "reviewer")).status_code == 200
    assert sc.get(f"/attachments/{info['sha256']}").status_code == 200
    # approved submissions are closed to new evidence
    assert sc.post(f"/submissions/{sid}/attachments", files={"file": ("a.png", near, "image/png")},
                   headers=auth(people, "editor_in")).status_code == 409


def test_unknown_submission_and_trail_is_append_only(sc: TestClient, people: dict[str, str],
                                                     econn: psycopg.Connection) -> None:
    assert sc.get("/submissions/999999999", headers=auth(people, "admin")).status_code == 404
    assert sc.get("/submissions/abc", headers=auth(people, "admin")).status_code == 404
    assert sc.post("/submissions/999999999/approve", headers=auth(people, "admin")).status_code == 404
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        econn.execute("DELETE FROM renewal.submission_events")


def test_users_cli_creates_reviewers(review_db: str) -> None:
    from api.cli.users import add_user

    name = f"r_{uuid.uuid4().hex[:6]}"
    add_user(review_db, name, "reviewer", ["裕华区"])
    with psycopg.connect(review_db) as conn:
        assert conn.execute("SELECT role, districts FROM renewal.users WHERE name = %s", (name,)).fetchone() == (
            "reviewer", [YUHUA])


def test_progress_with_pending_is_a_marked_preview(sc: TestClient, people: dict[str, str],
                                                   econn: psycopg.Connection) -> None:
    fid = _demo_compound(econn)
    md5 = row_md5(econn, "old_compounds", fid)
    hist = econn.execute("SELECT count(*) FROM renewal.status_history").fetchone()
    assert _submit(sc, people, "editor_in", fid, props={"renovation_year": 2023}).status_code == 201
    official = sc.get("/progress", params={"task": 13}).json()
    assert official["include_pending"] is False and "notice" not in official
    assert sc.get("/progress", params={"task": 13, "include_pending": "true"}).status_code == 401
    r = sc.get("/progress", params={"task": 13, "include_pending": "true"}, headers=auth(people, "viewer"))
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["include_pending"] is True and preview["pending_applied"] >= 1 and "待审核" in preview["notice"]

    def actual(body: dict[str, Any]) -> float:
        return float(next(t["actual"] for t in body["targets"] if t["target"] == "compounds_advanced_fyp"))

    assert actual(preview) >= actual(official) + 1
    # nothing was written: the row, the history and the official figure are as they were
    assert row_md5(econn, "old_compounds", fid) == md5
    assert econn.execute("SELECT count(*) FROM renewal.status_history").fetchone() == hist
    assert actual(sc.get("/progress", params={"task": 13}).json()) == actual(official)


def test_session_sign_in_cookie_and_csrf(sc: TestClient, people: dict[str, str], review_db: str,
                                         econn: psycopg.Connection) -> None:
    from api.cli.users import add_user, set_password

    name = f"ed_{uuid.uuid4().hex[:6]}"
    add_user(review_db, name, "editor", ["裕华区"])
    set_password(review_db, name, "correct horse 7")
    with make_client(review_db, review_required=True) as c:
        assert c.post("/auth/session", json={"user": name, "password": "wrong"}).status_code == 401
        r = c.post("/auth/session", json={"user": name, "password": "correct horse 7"})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "renewal_session=" in cookie
        csrf = r.json()["csrf"]
        assert c.get("/auth/whoami").json() == {"name": name, "role": "editor", "districts": [YUHUA], "via": "session"}
        assert c.get("/auth/session").json()["csrf"] == csrf
        fid = _compound(econn)
        body = {"properties": {"status": "started"}, "change": {"effective_date": TODAY_MINUS}}
        r = c.post(f"/collections/old_compounds/items/{fid}/submissions", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = c.post(f"/collections/old_compounds/items/{fid}/submissions", json=body,
                   headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        r = c.post(f"/collections/old_compounds/items/{fid}/submissions", json=body,
                   headers={"X-CSRF-Token": "é".encode()})  # non-ASCII header bytes: 403, not 500
        assert r.status_code == 403
        r = c.post(f"/collections/old_compounds/items/{fid}/submissions", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201 and r.json()["submitted_by"] == name
        assert c.delete("/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 200
        c.cookies.clear()
        assert c.get("/auth/whoami").json()["role"] == "anonymous"
        # an API key opens a session too
        r = c.post("/auth/session", json={"api_key": people["reviewer"]})
        assert r.status_code == 200 and r.json()["role"] == "reviewer"


def test_session_lookups_are_cached_for_the_auth_ttl_and_sign_out_is_at_once(review_db: str,
                                                                           econn: psycopg.Connection) -> None:
    """A signed-in viewer's requests skip the session query for RENEWAL_AUTH_CACHE_TTL_S (like API keys).

    Signing out takes effect at once in the process that handled it; a revocation made elsewhere
    (here straight in the database, as another worker would) within the TTL; with TTL 0 at once.
    """
    from api.cli.users import add_user, set_password

    name = f"ed_{uuid.uuid4().hex[:6]}"
    add_user(review_db, name, "editor", ["裕华区"])
    set_password(review_db, name, "correct horse 7")

    def signed_in(c: TestClient) -> tuple[str, str]:
        r = c.post("/auth/session", json={"user": name, "password": "correct horse 7"})
        assert r.status_code == 200, r.text
        return c.cookies["renewal_session"], r.json()["csrf"]

    def revoke_elsewhere() -> None:
        econn.execute("UPDATE renewal.sessions AS s SET revoked_at = now() FROM renewal.users AS u "
                      "WHERE u.id = s.user_id AND u.name = %s AND s.revoked_at IS NULL", (name,))

    with make_client(review_db, auth_cache_ttl_s=60) as c:
        signed_in(c)
        assert c.get("/auth/whoami").json()["via"] == "session"
        revoke_elsewhere()
        assert c.get("/auth/whoami").json()["via"] == "session"  # cached: no query until the TTL
        c.cookies.clear()
        token, csrf = signed_in(c)
        assert c.get("/auth/session").json()["csrf"] == csrf  # the token read with the session, not again
        assert c.delete("/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 200
        c.cookies.set("renewal_session", token)  # the old cookie replayed after signing out
        assert c.get("/auth/whoami").json()["role"] == "anonymous"
    with make_client(review_db, auth_cache_ttl_s=0) as c:
        signed_in(c)
        assert c.get("/auth/whoami").json()["via"] == "session"
        revoke_elsewhere()
        assert c.get("/auth/whoami").json()["role"] == "anonymous"


def test_due_list_json_and_xlsx(sc: TestClient, people: dict[str, str]) -> None:
    from openpyxl import load_workbook

    r = sc.get("/due", params={"district": YUHUA, "as_of": "2021-12-15"}, headers=auth(people, "viewer"))
    assert r.status_code == 200, r.text
    other_city = sc.get("/due", params={"district": "370202"}, headers=auth(people, "viewer"))  # a Qingdao adcode
    assert other_city.status_code == 400 and "district" in other_city.json()["detail"]
    items = r.json()["items"]
    assert items and all(i["district"] == YUHUA and i["days_left"] <= 30 and i["actual"] < i["goal"] for i in items)
    # the 2021 compounds target (deadline 2021-12-31) is due within 30 days of 2021-12-15 unless met
    x = sc.get("/due", params={"district": YUHUA, "as_of": "2021-12-15", "f": "xlsx"}, headers=auth(people, "viewer"))
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws["A3"].value == "区县" and ws.max_row >= 3 + len(items)  # the ledgers' layout: title, blank, header
    assert {row[1] for row in ws.iter_rows(min_row=4, values_only=True)} == {i["title"] for i in items}
    assert sc.get("/due", params={"f": "pdf"}).status_code == 400
    assert sc.get("/due", params={"f": "xlsx", "district": "ÿRIª𮊳"}).status_code == 400  # found by schemathesis


def test_maps_count_pending_only_when_switched_on_and_say_so(sc: TestClient, people: dict[str, str],
                                                              econn: psycopg.Connection) -> None:
    """The folium maps use the switch of /progress: approved only by default, pending marked when asked."""
    fid = _demo_compound(econn)
    code = econn.execute("SELECT code FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()[0]
    md5 = row_md5(econn, "old_compounds", fid)
    assert _submit(sc, people, "editor_in", fid, props={"renovation_year": 2023}).status_code == 201
    official = sc.get("/maps/old_compounds", params={"status": "started"})
    assert official.status_code == 200
    assert f'"{code}"' not in official.text  # still 待改造: not among the started compounds
    assert "含待审核" not in official.text and "renewal-pending" not in official.text
    assert sc.get("/maps/old_compounds", params={"status": "started", "include_pending": "true"}).status_code == 401
    preview = sc.get("/maps/old_compounds", params={"status": "started", "include_pending": "true"},
                     headers=auth(people, "viewer"))
    assert preview.status_code == 200, preview.text
    assert f'"{code}"' in preview.text  # the pending change shows
    assert "【含待审核】老旧小区" in preview.text and "图例（含待审核填报）" in preview.text
    assert 'class="renewal-pending"' in preview.text and "Includes pending submissions" in preview.text

    def subtitle(page: str) -> str:
        start = page.index("任务13 · 完成 ")
        return page[start:page.index("（", start)]

    target = {"target": "compounds_advanced_fyp"}
    plain = sc.get("/maps/progress", params=target, headers=auth(people, "viewer")).text
    marked = sc.get("/maps/progress", params={**target, "include_pending": "true"}, headers=auth(people, "viewer")).text
    assert "含待审核" not in plain and "【含待审核】" in marked
    done = lambda page: float(subtitle(page).split("完成 ")[1].split("/")[0].replace(",", ""))  # noqa: E731
    assert done(marked) >= done(plain) + 1
    # nothing was written
    assert row_md5(econn, "old_compounds", fid) == md5


def test_ledgers_count_pending_only_when_switched_on_and_say_so(sc: TestClient, people: dict[str, str],
                                                                 econn: psycopg.Connection) -> None:
    """The XLSX ledgers use the switch of /progress: approved only by default, every sheet marked when asked."""
    from openpyxl import load_workbook

    fid = _demo_compound(econn)
    code = econn.execute("SELECT code FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()[0]
    assert _submit(sc, people, "editor_in", fid, props={"renovation_year": 2023}).status_code == 201

    def book(url: str, pending: bool) -> Any:
        params = {"include_pending": "true"} if pending else {}
        r = sc.get(url, params=params, headers=auth(people, "viewer"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert ("with-pending" in r.headers["content-disposition"]) is pending
        return load_workbook(io.BytesIO(r.content))

    url = "/progress/compounds_advanced_fyp/ledger"
    assert sc.get(url, params={"include_pending": "true"}).status_code == 401
    official, preview = book(url, False), book(url, True)

    def city_actual(wb: Any) -> float:
        ws = wb["汇总"]
        return float(next(row[3] for row in ws.iter_rows(min_row=4, values_only=True) if row[0] == "全市"))

    assert city_actual(preview) >= city_actual(official) + 1
    assert not any("含待审核" in str(ws["A1"].value) for ws in official.worksheets)
    assert all(str(ws["A1"].value).startswith("【含待审核】") and "待审核" in str(ws["A2"].value)
               for ws in preview.worksheets)

    url = "/collections/old_compounds/ledger"
    official, preview = book(url, False), book(url, True)

    def status_of(wb: Any) -> str:
        for ws in wb.worksheets[1:]:
            for row in ws.iter_rows(values_only=True):
                if row and row[0] == code:
                    return str(row[-2])
        raise AssertionError(f"{code} is on no district sheet")

    assert status_of(official) == "待改造" and status_of(preview) == "已开工"
    assert all(str(ws["A1"].value).startswith("【含待审核】") for ws in preview.worksheets)
    assert "含待审核" not in str(official.worksheets[0]["A1"].value)


def test_cli_maps_and_ledgers_take_the_same_switch(sc: TestClient, people: dict[str, str], econn: psycopg.Connection,
                                                   review_db: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``renewal map|ledger ... --include-pending``: the switch of /progress, marked; without it approved only."""
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from api.cli import app

    fid = _demo_compound(econn)
    code = econn.execute("SELECT code FROM renewal.old_compounds WHERE id = %s", (fid,)).fetchone()[0]
    assert _submit(sc, people, "editor_in", fid, props={"renovation_year": 2023}).status_code == 201
    monkeypatch.setenv("DATABASE_URL", review_db)
    runner = CliRunner()

    def run(*args: str) -> None:
        res = runner.invoke(app, list(args))
        assert res.exit_code == 0, res.output

    plain, marked = tmp_path / "plain.xlsx", tmp_path / "marked.xlsx"
    run("ledger", "layer", "old_compounds", "-o", str(plain))
    run("ledger", "layer", "old_compounds", "-o", str(marked), "--include-pending")

    def status_of(path: Path) -> str:
        for ws in load_workbook(path).worksheets[1:]:
            for row in ws.iter_rows(values_only=True):
                if row and row[0] == code:
                    return str(row[-2])
        raise AssertionError(f"{code} is on no district sheet")

    assert status_of(plain) == "待改造" and status_of(marked) == "已开工"
    assert str(load_workbook(marked).worksheets[0]["A1"].value).startswith("【含待审核】")
    run("ledger", "target", "compounds_advanced_fyp", "-o", str(marked), "--include-pending")
    assert str(load_workbook(marked)["汇总"]["A1"].value).startswith("【含待审核】")
    assert runner.invoke(app, ["ledger", "target", "compounds_advanced_fyp", "-o", str(tmp_path / "x.docx"),
                               "--include-pending"]).exit_code != 0
    page = tmp_path / "map.html"
    run("map", "layer", "old_compounds", "-o", str(page), "--status", "started", "--include-pending")
    text = page.read_text(encoding="utf-8")
    assert f'"{code}"' in text and "【含待审核】" in text and "renewal-pending" in text
    run("map", "layer", "old_compounds", "-o", str(page), "--status", "started")
    text = page.read_text(encoding="utf-8")
    assert f'"{code}"' not in text and "含待审核" not in text
