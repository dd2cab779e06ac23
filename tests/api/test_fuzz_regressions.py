"""Server errors found by the randomized schemathesis run (bench/schemathesis_large.py), as its exact requests.

* ``GET /viewer/history/toll_stations/48244?as_of=0024-08-16`` was a 500 (``column t.null does
  not exist``): for a layer without area or length (``measure: none``) the query read the column
  ``t."NULL::double precision"``. Every history of such a layer failed, whatever the feature.
* ``GET /submissions/%C2%B9`` was a 500: ``"¹".isdigit()`` is true but ``int("¹")`` raises.
* ``GET /query/nearest?from_layer=hutuo_river&layer=districts&from_id=368760981050825375744000`` was a
  500 (bigint out of range): ``from_id`` now goes through the feature-id rule (``parse_feature_id``), so
  a number no id can be is a 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.edit_support import make_client


def test_history_of_a_layer_without_measure_is_not_a_server_error(client: Any) -> None:
    r = client.get("/viewer/history/toll_stations/48244?as_of=0024-08-16")  # the fuzzer's date: outside the plan
    assert r.status_code == 400 and "outside the plan period" in r.json()["detail"], r.text[:300]
    r = client.get("/viewer/history/toll_stations/48244?as_of=2024-08-16")
    assert r.status_code == 404, r.text[:300]
    fid = client.get("/collections/toll_stations/items?limit=1").json()["features"][0]["id"]
    for url in (f"/viewer/history/toll_stations/{fid}", f"/viewer/history/toll_stations/{fid}?as_of=2024-08-16"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        body = r.json()
        assert body["id"] == fid and body["measure"] is None and body["measure_value"] is None


def test_history_of_a_layer_with_measure_still_has_its_value(client: Any) -> None:
    fid = client.get("/collections/old_compounds/items?limit=1").json()["features"][0]["id"]
    body = client.get(f"/viewer/history/old_compounds/{fid}?as_of=2024-08-16").json()
    assert body["measure"] and isinstance(body["measure_value"], float | int)


@pytest.fixture(scope="module")
def ec(edit_db: str) -> Iterator[TestClient]:
    with make_client(edit_db) as c:
        yield c


@pytest.mark.parametrize("sid", ["%C2%B9", "%D9%A3", "%EF%BC%91"])  # ¹, Arabic-Indic three, fullwidth one
def test_submission_id_with_unicode_digits_is_not_found(ec: TestClient, keys: dict[str, str], sid: str) -> None:
    r = ec.get(f"/submissions/{sid}", headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 404, r.text[:300]


@pytest.mark.parametrize("from_id", ["368760981050825375744000", "-9223372036854775809", "9223372036854775808"])
def test_nearest_from_an_id_past_bigint_is_not_found(client: Any, from_id: str) -> None:
    """Found by bench/schemathesis_large.py (seed 20261202): a 500, bigint out of range."""
    r = client.get(f"/query/nearest?from_layer=hutuo_river&layer=districts&from_id={from_id}")
    assert r.status_code == 404, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
