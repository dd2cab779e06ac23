"""The viewer's endpoints and its place at ``/`` (browsers) next to the OGC landing page (JSON).

Expected values come from independent SQL on the demo data.
"""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg import sql

from layers.registry import get_registry

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/", "/viewer"])
def test_browser_gets_the_viewer(client, path) -> None:
    r = client.get(path, headers={"Accept": HTML})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/vendor/maplibre-gl/maplibre-gl.css" in r.text and "/viewer/static/js/main.js" in r.text


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {"Accept": "application/json"}),
        ("/?f=json", {"Accept": HTML}),
        ("/?f=json", {}),
        ("/", {}),
        ("/ogc", {"Accept": "application/json"}),
        ("/ogc?f=json", {"Accept": HTML}),
    ],
)
def test_json_clients_get_the_ogc_landing_page(client, path, headers) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    rels = {link["rel"] for link in r.json()["links"]}
    assert {"conformance", "data"} <= rels


def test_ogc_landing_page_stays_reachable_as_html(client) -> None:
    r = client.get("/ogc", headers={"Accept": HTML})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "maplibre" not in r.text


@pytest.mark.parametrize(
    "asset",
    [
        "/viewer/static/js/main.js",
        "/viewer/static/viewer.css",
        "/vendor/maplibre-gl/maplibre-gl.mjs",
        "/vendor/maplibre-gl/maplibre-gl-worker.mjs",
        "/vendor/maplibre-gl/maplibre-gl.css",
    ],
)
def test_assets_are_served_locally(client, asset) -> None:
    r = client.get(asset)
    assert r.status_code == 200 and len(r.content) > 1000


@pytest.mark.parametrize(
    "path",
    ["/viewer/static/../routers/viewer.py", "/viewer/static/nope.js", "/viewer/static/%2e%2e/%2e%2e/pyproject.toml"],
)
def test_static_files_stay_inside_the_viewer(client, path) -> None:
    assert client.get(path).status_code == 404


def test_config_matches_registry_and_database(client, conn) -> None:
    cfg = client.get("/viewer/config").json()
    from layers.registry import get_registry

    registry = get_registry()
    assert [layer["id"] for layer in cfg["layers"]] == registry.ids
    assert sum(len(g["layers"]) for g in cfg["groups"]) == len(registry)
    oc = next(layer for layer in cfg["layers"] if layer["id"] == "old_compounds")
    assert [s["color"] for s in oc["lifecycle"]["statuses"]] == [
        s.color for s in registry.get("old_compounds").lifecycle.statuses
    ]
    assert oc["count"] == conn.execute("SELECT count(*) FROM renewal.old_compounds").fetchone()[0]
    rows = conn.execute(
        "SELECT code, name, ST_XMin(geom), ST_YMax(geom) FROM renewal.districts ORDER BY code"
    ).fetchall()
    assert [(d["code"], d["name"]) for d in cfg["districts"]] == [(r[0], r[1]) for r in rows]
    for d, r in zip(cfg["districts"], rows, strict=True):
        assert d["bbox"][0] == pytest.approx(r[2], abs=1e-5) and d["bbox"][3] == pytest.approx(r[3], abs=1e-5)
    assert cfg["endpoints"]["tiles"] == "/tiles/WebMercatorQuad/{z}/{x}/{y}"
    assert cfg["endpoints"]["item"] == "/collections/{collection_id}/items/{feature_id}"
    assert cfg["start_date"] == "2021-01-01" and cfg["today"] == dt.date.today().isoformat()


@pytest.mark.parametrize("q", ["华药", "石钢集团老厂区", "TTD-00", "ttd-001", "老厂区"])
def test_search_matches_sql(client, conn, q) -> None:
    hits = client.get("/viewer/search", params={"q": q, "limit": 50}).json()["hits"]
    from layers.registry import get_registry

    expected = 0
    for layer in get_registry():
        expected += conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE strpos(lower(name), lower(%s)) > 0 OR strpos(lower(code), lower(%s)) > 0"
            ).format(sql.Identifier("renewal", layer.table)),
            (q, q),
        ).fetchone()[0]
    assert len(hits) == min(expected, 50) and expected > 0
    assert all(q.lower() in (h["name"] + h["code"]).lower() for h in hits)
    assert all(len(h["bbox"]) == 4 and h["bbox"][0] <= h["bbox"][2] for h in hits)


@pytest.mark.parametrize("q", ["%", "_", "\\", "'; DROP TABLE x; --"])
def test_search_treats_wildcards_and_quotes_as_text(client, q) -> None:
    r = client.get("/viewer/search", params={"q": q, "limit": 50})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert all(q in h["name"] + h["code"] for h in hits)  # literal matches only (codes like inside_2nd have '_')
    if q != "_":
        assert hits == []


@pytest.mark.parametrize(
    "params", [{}, {"q": ""}, {"q": "x", "limit": 0}, {"q": "x", "limit": 51}, {"q": "x", "layer": "nope"}]
)
def test_search_bad_input(client, params) -> None:
    r = client.get("/viewer/search", params=params)
    assert r.status_code in (400, 404) and r.headers["content-type"] == "application/problem+json"


def test_history_matches_status_history(client, conn) -> None:
    fid, name, mu = conn.execute(
        "SELECT id, name, area_mu FROM renewal.vacated_land WHERE name LIKE '华药%%'"
    ).fetchone()
    body = client.get(f"/viewer/history/vacated_land/{fid}").json()
    rows = conn.execute(
        "SELECT to_status, effective_date FROM renewal.status_history WHERE layer = 'vacated_land' "
        "AND feature_id = %s ORDER BY effective_date, id",
        (fid,),
    ).fetchall()
    assert body["name"] == name and body["measure"] == "area_mu"
    assert body["measure_value"] == pytest.approx(mu, abs=0.01)
    assert [(h["to_status"], h["effective_date"]) for h in body["history"]] == [(r[0], r[1].isoformat()) for r in rows]


def test_popup_status_on_the_maps_date_and_the_current_one(client, conn) -> None:
    """华药集团老厂区 on 2021-06-30: the popup gives the status the map colours it with on that
    date (it used to say 交割/交付, the current status), and the current one separately."""
    hit = next(h for h in client.get("/viewer/search", params={"q": "华药集团老厂区"}).json()["hits"]
               if h["layer"] == "vacated_land")
    then = conn.execute(
        "SELECT to_status FROM renewal.status_history WHERE layer = 'vacated_land' AND feature_id = %s "
        "AND effective_date <= '2021-06-30' ORDER BY effective_date DESC, id DESC LIMIT 1", (hit["id"],),
    ).fetchone()[0]
    states = client.get("/viewer/status-as-of", params={"layer": "vacated_land", "as_of": "2021-06-30"}).json()
    popup = client.get(f"/viewer/history/vacated_land/{hit['id']}", params={"as_of": "2021-06-30"}).json()
    assert states["states"][str(hit["id"])] == popup["status_as_of"] == then != "handed_over"
    assert popup["status"] == hit["status"] == "handed_over"
    assert popup["as_of"] == "2021-06-30" and popup["status_since"] <= "2021-06-30"
    plain = client.get(f"/viewer/history/vacated_land/{hit['id']}").json()
    assert plain["as_of"] is None and plain["status_as_of"] is None and plain["status"] == "handed_over"


@pytest.mark.parametrize("as_of", ["2020-12-31", "2021-06-30", "2023-03-31"])
def test_popup_agrees_with_the_slider_states(client, conn, as_of) -> None:
    body = client.get("/viewer/status-as-of", params={"layer": "old_compounds", "as_of": as_of}).json()
    ids = [r[0] for r in conn.execute("SELECT id FROM renewal.old_compounds ORDER BY id LIMIT 40").fetchall()]
    for fid in ids:
        popup = client.get(f"/viewer/history/old_compounds/{fid}", params={"as_of": as_of}).json()
        assert popup["status_as_of"] == body["states"][str(fid)], fid


def test_popup_date_must_be_a_date(client) -> None:
    assert client.get("/viewer/history/old_compounds/1", params={"as_of": "2021-13-01"}).status_code == 400


def test_history_of_a_line_gives_metres(client, conn) -> None:
    fid, length = conn.execute("SELECT id, length_m FROM renewal.planned_roads ORDER BY id LIMIT 1").fetchone()
    body = client.get(f"/viewer/history/planned_roads/{fid}").json()
    assert body["measure"] == "length_m" and body["measure_value"] == pytest.approx(length, abs=0.01)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/viewer/history/vacated_land/999999", 404),
        ("/viewer/history/nope/1", 404),
        ("/viewer/history/vacated_land/abc", 400),
    ],
)
def test_history_errors(client, path, status) -> None:
    assert client.get(path).status_code == status


# the rule of layers/history.py, written with DISTINCT-free SQL: the last change by the date; without
# one, the first lifecycle status if the feature was created by then; otherwise null (absent)
AS_OF_SQL = """
SELECT t.id, CASE WHEN s.to_status IS NOT NULL THEN s.to_status
                  WHEN t.created_at < (%(d)s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai' THEN %(first)s
                  END
FROM {table} t
LEFT JOIN LATERAL (SELECT h.to_status FROM renewal.status_history h
                   WHERE h.layer = %(layer)s AND h.feature_id = t.id AND h.effective_date <= %(d)s
                   ORDER BY h.effective_date DESC, h.id DESC LIMIT 1) s ON true
WHERE %(district)s::text IS NULL OR t.district_code = %(district)s
"""


@pytest.mark.parametrize("layer", ["old_compounds", "urban_villages", "vacated_land", "planned_roads", "land_parcels"])
@pytest.mark.parametrize(("as_of", "district"), [("2021-06-30", None), ("2020-12-31", None), ("2023-03-31", "130104")])
def test_status_as_of_matches_sql(client, conn, layer, as_of, district) -> None:
    params = {"layer": layer, "as_of": as_of}
    if district:
        params["district"] = district
    body = client.get("/viewer/status-as-of", params=params).json()
    truth = dict(
        conn.execute(
            sql.SQL(AS_OF_SQL).format(table=sql.Identifier("renewal", layer)),
            {"layer": layer, "d": as_of, "district": district,
             "first": get_registry().get(layer).lifecycle.codes[0]},  # type: ignore[union-attr]
        ).fetchall()
    )
    assert {int(k): v for k, v in body["states"].items()} == truth
    counts: dict[str, int] = {}
    for v in truth.values():
        counts[v or "none"] = counts.get(v or "none", 0) + 1
    assert body["counts"] == counts and body["total"] == len(truth)


def test_status_as_of_without_date_is_the_current_status(client, conn) -> None:
    body = client.get("/viewer/status-as-of", params={"layer": "old_compounds", "states": "false"}).json()
    truth = dict(conn.execute("SELECT status, count(*) FROM renewal.old_compounds GROUP BY 1").fetchall())
    assert body["counts"] == truth and body["states"] is None


def test_status_as_of_bbox_limits_features(client, conn) -> None:
    bbox = (114.48, 38.02, 114.52, 38.06)
    body = client.get("/viewer/status-as-of", params={"layer": "land_parcels", "bbox": ",".join(map(str, bbox))}).json()
    n = conn.execute(
        "SELECT count(*) FROM renewal.land_parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)", bbox
    ).fetchone()[0]
    assert len(body["states"]) == n > 0


@pytest.mark.parametrize(
    "params",
    [
        {"layer": "districts"},
        {"layer": "nope"},
        {"layer": "old_compounds", "as_of": "2021-13-01"},
        {"layer": "old_compounds", "district": "13010"},
        {"layer": "old_compounds", "bbox": "1,2,3"},
        {"layer": "old_compounds", "bbox": "114.6,38,114.5,38.1"},
    ],
)
def test_status_as_of_bad_input(client, params) -> None:
    r = client.get("/viewer/status-as-of", params=params)
    assert r.status_code in (400, 404) and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "target", ["compounds_renovated_2021", "villages_started_2021", "vacated_land_handed_over", "roads_opened_2021"]
)
@pytest.mark.parametrize("as_of", ["2021-06-30", "2022-12-31"])
def test_target_features_agree_with_the_progress_api(client, target, as_of) -> None:
    body = client.get("/viewer/target-features", params={"target": target, "as_of": as_of}).json()
    progress = client.get(f"/progress/{target}", params={"as_of": as_of}).json()
    assert len(body["ids"]) == progress["features"]


def test_target_features_unknown_target(client) -> None:
    assert client.get("/viewer/target-features", params={"target": "nope"}).status_code == 404
