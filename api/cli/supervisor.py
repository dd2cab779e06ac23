"""Several uvicorn worker processes, each with its own listening socket on the same port (``SO_REUSEPORT``).

Why not uvicorn's own ``workers=N``: there every worker accepts from one shared socket, and a
client that keeps its connections open (a browser map, QGIS, a benchmark) has them all accepted by
whichever worker woke first; measured with 8 keep-alive connections and 2 workers: one worker
used 1.23 s of CPU, the other 0.03 s, so the second core stayed idle. With ``SO_REUSEPORT`` the
kernel spreads new connections over the workers' sockets by their addresses, so keep-alive
clients use every worker too. uvicorn 0.54 has no option for it; this supervisor is the small
part it lacks (start, restart a worker that dies, stop them all on SIGTERM/SIGINT).

Linux only lets processes of the same user share such a port, so another user cannot take a
share of the traffic.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from api.ratelimit import SharedTable, shared_table
from api.ratelimit import install as install_rate_table

RESTART_PAUSE_S = 1.0
"""Wait before restarting a worker that died, so a worker that cannot start does not spin."""
STOP_TIMEOUT_S = 30.0
"""How long workers get to finish their requests on shutdown before they are killed."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _worker(config: dict[str, Any], rate_table: SharedTable) -> None:
    import uvicorn

    install_rate_table(rate_table)  # before the app is built: its rate limit uses the workers' one table
    sock = listening_socket(config["host"], config["port"])
    uvicorn.Server(uvicorn.Config(**config)).run(sockets=[sock])


def run_workers(n: int, config: dict[str, Any]) -> None:
    """Run ``n`` workers serving ``config`` (keyword arguments of ``uvicorn.Config``) until SIGTERM/SIGINT."""
    # fail at once, with the OS's message, when the port is taken by a server that does not share it;
    # the probe is closed before the workers start (a listening socket nobody accepts on would get
    # its share of the connections and leave them hanging)
    listening_socket(config["host"], config["port"]).close()
    ctx = multiprocessing.get_context("spawn")
    rate_table = shared_table(ctx)  # the anonymous rate limit's buckets, one table for every worker
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> BaseProcess:
        proc = ctx.Process(target=_worker, args=(config, rate_table), name="renewal-worker")
        proc.start()
        return proc

    procs = [start() for _ in range(n)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    print(f"worker {proc.pid} exited with {proc.exitcode}; starting another", file=sys.stderr)
                    time.sleep(RESTART_PAUSE_S)
                    procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
