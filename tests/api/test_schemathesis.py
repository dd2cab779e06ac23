"""Property-based testing of the whole API from its OpenAPI document (schemathesis, real server).

At least 2,000 generated requests across every operation, as an administrator (so write
endpoints are exercised beyond the 401), against a live server on the editing database:
no 5xx, and every answer documented: its status (errors are the ``default`` problem+json response,
:mod:`api.openapi`), its media type, its headers and its body's schema. The HAR file of the run
(``artifacts/schemathesis.har``) is the independent count of what was sent and answered.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import ARTIFACTS, ROOT, LiveServer

pytestmark = pytest.mark.slow
MIN_REQUESTS = 2000


@pytest.fixture(scope="module")
def st_server(edit_db: str) -> Iterator[LiveServer]:
    """A live server on the editing database (rate limiting off)."""
    s = LiveServer(edit_db, env={"RENEWAL_ANON_RATE_PER_S": "0", "RENEWAL_POOL_MAX_SIZE": "12"})
    try:
        yield s
    finally:
        s.stop()


def test_schemathesis_no_server_errors_and_conforming_responses(st_server: LiveServer, keys: dict[str, str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    har = ARTIFACTS / "schemathesis.har"
    har.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{st_server.url}/api",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                    "content_type_conformance,response_headers_conformance",
        # Deterministic: fixed seed, derandomized generation, one worker, no time cap and no
        # example database, so every CI run sends the same requests (bench/ has a larger run).
        "--max-examples", "50", "--workers", "1", "--request-timeout", "30",
        "--seed", "20261128", "--generation-deterministic",
        "--suppress-health-check", "all",
        "--header", f"X-API-Key: {keys['admin']}",
        "--report", "har", "--report-har-path", str(har),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=780, check=False)
    (ARTIFACTS / "schemathesis.log").write_text(out.stdout + out.stderr)
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(e["response"]["status"] for e in entries)
    server_errors = [f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}"
                     for e in entries if e["response"]["status"] >= 500]
    assert not server_errors, server_errors[:20]
    assert len(entries) >= MIN_REQUESTS, (len(entries), statuses)
    tested = re.search(r"Tested:\s+(\d+)", out.stdout)
    selected = re.search(r"Selected:\s+(\d+)/(\d+)", out.stdout)
    assert tested and selected and int(tested.group(1)) == int(selected.group(2)), out.stdout[-3000:]
    assert out.returncode == 0, out.stdout[-6000:]
