"""The app's background tasks (the layer-version listener, the replica monitor): stopped one way."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished (nothing for ``None``).

    Why one helper: a cancelled task still runs its ``finally`` blocks (closing its own
    connection), so whoever stops it waits for that before closing the pools it uses, and its
    ``CancelledError`` is the expected end, not an error. Both owners of a background task
    stop it this way at shutdown.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
