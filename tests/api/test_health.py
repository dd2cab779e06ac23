import httpx
import psycopg
import pytest

from layers.registry import get_registry


def test_healthz_reports_versions(client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
    assert body["geos"] and body["proj"]


def test_layers_lists_every_layer_with_counts_matching_the_database(client, conn: psycopg.Connection) -> None:
    r = client.get("/layers")
    assert r.status_code == 200
    layers = {entry["id"]: entry for entry in r.json()["layers"]}
    assert set(layers) == set(get_registry().ids)
    for layer in get_registry():
        n = conn.execute(f"SELECT count(*) FROM renewal.{layer.table}").fetchone()[0]  # noqa: S608 - registry names
        assert layers[layer.id]["count"] == n
    assert layers["old_compounds"]["fields"][0]["label"]  # Chinese labels travel with the registry
    assert layers["old_compounds"]["lifecycle"]["statuses"][0]["label"] == "待改造"


def test_layers_counts_consistent_with_the_plan(client, conn: psycopg.Connection) -> None:
    layers = {entry["id"]: entry for entry in client.get("/layers").json()["layers"]}
    assert layers["urban_villages"]["count"] == 73
    assert layers["planned_roads"]["count"] == 56
    assert layers["districts"]["count"] == 22
    vacated = conn.execute("SELECT sum(area_mu) FROM renewal.vacated_land").fetchone()[0]
    assert vacated == pytest.approx(2992, rel=0.005)


def test_unknown_path_is_problem_json(client) -> None:
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404


def test_live_server_answers_healthz_and_layers(live_server) -> None:
    assert httpx.get(live_server.url + "/healthz").status_code == 200
    r = httpx.get(live_server.url + "/layers")
    assert r.status_code == 200 and r.json()["count"] == len(get_registry())


def test_database_down_is_503_with_retry_after() -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    settings = Settings(database_url="postgresql://127.0.0.1:1/nowhere?connect_timeout=1", pool_timeout_s=1.0)
    with TestClient(create_app(settings)) as c:
        r = c.get("/healthz")
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.headers["content-type"].startswith("application/problem+json")
