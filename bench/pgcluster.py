"""Throwaway PostgreSQL clusters on this machine: a primary and streaming replicas.

Used by ``bench/cluster.py`` (the full cluster with HAProxy) and by the replica tests
(``tests/api/test_replicas.py``). Each node is a real ``initdb``/``pg_basebackup`` data
directory under one temporary directory, run by ``pg_ctl`` as the ``postgres`` OS user (initdb
refuses root), listening on 127.0.0.1 and a socket in that directory, trust authentication.
``fsync=off`` because the clusters live for minutes and are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PGBIN = Path(os.environ.get("RENEWAL_PGBIN", "/usr/lib/postgresql/15/bin"))
_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sock}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = '256MB'
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = '128MB'
max_connections = 100
logging_collector = off
"""


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary as the postgres OS user when we are root (initdb refuses root)."""
    cmd = (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


@dataclass
class Node:
    """One PostgreSQL server of the throwaway cluster."""

    name: str
    datadir: Path
    port: int
    sockdir: Path

    def url(self, dbname: str = "renewal") -> str:
        """A TCP URL (user postgres, trust) to a database on this node."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                      "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash, as a killed machine would be)."""
        if self.running():
            _as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def promote(self) -> None:
        """Promote this replica to a primary."""
        _as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.datadir), "-w", "promote"])

    def running(self) -> bool:
        """Whether its postmaster is up."""
        try:
            _as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.datadir), "status"])
        except subprocess.CalledProcessError:
            return False
        return True


class Cluster:
    """A primary and ``replicas`` streaming replicas in a temporary directory, removed on close."""

    def __init__(self, replicas: int = 2, base: Path | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="renewal-cluster-", dir=base))
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.primary = self._init_primary()
        self.replicas = [self.add_replica(f"replica{i + 1}") for i in range(replicas)]

    def _node(self, name: str) -> Node:
        return Node(name, self.base / name, free_port(), self.base)

    def _init_primary(self) -> Node:
        node = self._node("primary")
        _as_postgres([str(PGBIN / "initdb"), "-D", str(node.datadir), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale", "C.UTF-8"])
        with open(node.datadir / "postgresql.conf", "a") as f:
            f.write(_CONF.format(port=node.port, sock=self.base))
        with open(node.datadir / "pg_hba.conf", "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\nlocal replication all trust\n")
        node.start()
        return node

    def add_replica(self, name: str) -> Node:
        """``pg_basebackup -R`` of the primary, on its own port, started and streaming."""
        node = self._node(name)
        _as_postgres([str(PGBIN / "pg_basebackup"), "-D", str(node.datadir), "-h", "127.0.0.1",
                      "-p", str(self.primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast"])
        with open(node.datadir / "postgresql.auto.conf", "a") as f:
            f.write(f"port = {node.port}\n")
        node.start()
        return node

    def wait_replayed(self, timeout: float = 30) -> None:
        """Wait until every running replica has replayed the primary's current WAL position."""
        import psycopg

        with psycopg.connect(self.primary.url("postgres"), autocommit=True) as p:
            row = p.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            assert row is not None
            target = row[0]
        deadline = time.monotonic() + timeout
        for r in self.replicas:
            if not r.running():
                continue
            with psycopg.connect(r.url("postgres"), autocommit=True) as c:
                while True:
                    row = c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
                    if row and row[0]:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{r.name} did not replay {target}")
                    time.sleep(0.05)

    def close(self) -> None:
        """Stop every node and delete the directory."""
        for node in [*self.replicas, self.primary]:
            try:
                node.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)
