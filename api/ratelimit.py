"""The anonymous rate limit: one token bucket per client address, shared by every worker of ``renewal serve``.

Why shared: ``renewal serve`` runs several worker processes on one port (:mod:`api.cli.supervisor`),
and the kernel spreads a client's connections over them. Buckets kept in each process let a
client that opens several connections reach ``workers x`` the rate. So the supervisor makes one
table in shared memory (:func:`shared_table`) and hands it to each worker, which installs it
(:func:`install`) before the app starts; :func:`buckets` then gives :class:`SharedTokenBuckets`.
A process started any other way (uvicorn directly, tests' ``TestClient``) keeps its buckets in
memory (:class:`TokenBuckets`). Both apply the one bucket rule, :func:`refill`.

The shared table has a fixed number of slots, addressed by a stable hash of the address (Python's
``hash`` differs between processes). A slot remembers whose bucket it holds; a client that lands
on a slot held by another address takes it over with a full bucket, which errs on the lenient
side and keeps the table's size fixed. ``time.monotonic`` is the system's monotonic clock, the
same in every process. One lock guards the table; a take holds it for a few microseconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from typing import Any, Protocol

log = logging.getLogger(__name__)

SLOTS = 65_536
"""Slots of the shared table (24 bytes each: the address hash, the tokens and the time)."""


def refill(tokens: float, last: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    """The bucket rule: refill at ``rate`` up to ``burst``, then take one token.

    Returns the tokens left and the seconds until a token is available (0.0: the request may pass).
    """
    tokens = min(burst, tokens + (now - last) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class Buckets(Protocol):
    """Token buckets per client address."""

    rate: float
    burst: float

    def take(self, client: str) -> float:
        """Take one token; 0.0 if allowed, else the seconds until a token is available."""
        ...


class TokenBuckets:
    """One token bucket per client, in this process's memory: ``rate`` tokens per second up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """Take one token; 0.0 if allowed, else the seconds until a token is available."""
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens, wait = refill(tokens, last, now, self.rate, self.burst)
        self._buckets[client] = (tokens, now)
        if wait == 0.0 and len(self._buckets) > 50_000:
            self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


@dataclass(frozen=True)
class SharedTable:
    """The buckets' shared memory: per slot the address hash, the tokens and the time of the last take."""

    lock: Any
    keys: Any
    """``SLOTS`` unsigned 64-bit address hashes (0: empty)."""
    values: Any
    """``2 * SLOTS`` doubles: tokens and last take of each slot."""


def shared_table(ctx: SpawnContext) -> SharedTable:
    """A new, empty table in shared memory, to pass to worker processes when they are created."""
    return SharedTable(lock=ctx.Lock(), keys=ctx.RawArray("Q", SLOTS), values=ctx.RawArray("d", 2 * SLOTS))


LOCK_TIMEOUT_S = 0.05
"""A take holds the lock for microseconds; one not had in this time was left held by a worker that died."""


class SharedTokenBuckets:
    """Token buckets of :class:`SharedTable`: every worker process takes from the same bucket per client.

    If the table's lock cannot be had in :data:`LOCK_TIMEOUT_S` (a worker killed while holding
    it), this process falls back to buckets of its own for good, logs it, and never blocks again.
    """

    def __init__(self, table: SharedTable, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._table = table
        self._own: TokenBuckets | None = None

    def take(self, client: str) -> float:
        """Take one token; 0.0 if allowed, else the seconds until a token is available."""
        if self._own is not None:
            return self._own.take(client)
        key = int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest(), "little") or 1
        slot = key % SLOTS
        t = self._table
        if not t.lock.acquire(timeout=LOCK_TIMEOUT_S):
            log.warning("the shared rate-limit table stays locked; this worker keeps its own buckets from now on")
            self._own = TokenBuckets(self.rate, int(self.burst))
            return self._own.take(client)
        try:
            now = time.monotonic()
            if t.keys[slot] == key:
                tokens, last = t.values[2 * slot], t.values[2 * slot + 1]
            else:
                t.keys[slot] = key
                tokens, last = self.burst, now
            tokens, wait = refill(tokens, last, now, self.rate, self.burst)
            t.values[2 * slot], t.values[2 * slot + 1] = tokens, now
        finally:
            t.lock.release()
        return wait


_installed: SharedTable | None = None


def install(table: SharedTable) -> None:
    """Use ``table`` for this process's buckets (a worker of ``renewal serve``, before its app starts)."""
    global _installed
    _installed = table


def buckets(rate: float, burst: int) -> Buckets:
    """The buckets this process uses: the shared table's when one is installed, else its own."""
    if _installed is not None:
        return SharedTokenBuckets(_installed, rate, burst)
    return TokenBuckets(rate, burst)
