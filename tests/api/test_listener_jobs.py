"""The listener's periodic jobs (:meth:`api.versions.LayerVersions.every`) on a real connection.

A job keeps per-process knowledge fresh off the request path; a job whose statement fails must not
take the layer versions' trust down with it (every request would then read versions itself).
"""

from __future__ import annotations

import asyncio
from typing import Any

from api.versions import LayerVersions
from tests.conftest import api_url, run_coroutine


def test_a_failing_job_is_retried_and_leaves_the_versions_trusted(db_url: str) -> None:
    calls = {"bad": 0, "good": 0}

    async def bad(conn: Any) -> None:
        calls["bad"] += 1
        await conn.execute("SELECT * FROM renewal.no_such_table")

    async def good(conn: Any) -> None:
        calls["good"] += 1
        await conn.execute("SELECT 1")

    async def scenario() -> list[bool]:
        """``live`` sampled every 20 ms from the first connect until each job ran three times."""
        versions = LayerVersions(api_url(db_url), heartbeat_s=0.02)
        versions.every(0.05, bad)
        versions.every(0.05, good)
        versions.start()
        seen: list[bool] = []
        try:
            for _ in range(250):
                await asyncio.sleep(0.02)
                if versions.live or seen:
                    seen.append(versions.live)
                if calls["bad"] >= 3 and calls["good"] >= 3:
                    break
            return seen
        finally:
            await versions.stop()

    seen = run_coroutine(scenario())
    assert calls["bad"] >= 3 and calls["good"] >= 3, calls
    assert seen and all(seen), "a failing job took the listener down (versions untrusted until it reconnected)"
