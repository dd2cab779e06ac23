"""The app's background tasks (breaker probe, layer-version listener, replica monitor): stopped one way."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

log = logging.getLogger(__name__)

STOP_ROUNDS: Final = 5
STOP_WAIT_S: Final = 1.0


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished (nothing for ``None``).

    Why one helper: a cancelled task still runs its ``finally`` blocks (closing its own
    connection), so whoever stops it waits for that before closing the pools it uses, and its
    ``CancelledError`` is the expected end, not an error. Every owner of a background task
    stops it this way at shutdown.

    Why more than one ``cancel()``: on Python 3.11 ``asyncio.wait_for`` can swallow a
    cancellation that arrives as its inner call completes (fixed in 3.12), and the loops here
    use ``wait_for`` around connects and probes; a swallowed cancel left the loop running and
    shutdown waiting for ever (seen against a refused port). So the task is cancelled again
    each second, and after :data:`STOP_ROUNDS` tries shutdown goes on and says so.
    """
    if task is None:
        return
    for _ in range(STOP_ROUNDS):
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if done:
            break
    if not task.done():
        log.warning("background task %s did not stop after %d cancellations; leaving it", task.get_name(), STOP_ROUNDS)
        return
    if not task.cancelled() and task.exception() is not None:
        log.warning("background task %s ended with %r", task.get_name(), task.exception())
