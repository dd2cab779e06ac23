"""An import killed with SIGKILL while it is writing leaves the layer exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyogrio
import pytest

from layers.export import export_to_path
from tests.conftest import ARTIFACTS, ROOT
from tests.layers.conftest import side_tables_state, table_state


@pytest.mark.slow
def test_sigkill_mid_import_leaves_layer_unchanged(io_db: str, io_conn: Any, tmp_path: Path) -> None:
    src = tmp_path / "parcels.gpkg"
    export_to_path(io_db, "land_parcels", src)
    frame = pyogrio.read_dataframe(src)
    frame["code"] = "KILL-" + frame["code"].astype(str)
    big = tmp_path / "kill.gpkg"
    pyogrio.write_dataframe(frame, big, layer="land_parcels")
    before = table_state(io_conn, "land_parcels"), side_tables_state(io_conn)

    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "import-kill.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "import", "land_parcels", str(big)], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": io_db}, stdout=log, stderr=subprocess.STDOUT)
    seen = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            row = io_conn.execute(
                "SELECT pid, left(query, 60) FROM pg_stat_activity WHERE application_name = 'renewal-import' "
                "AND state = 'active' AND (query ILIKE 'INSERT INTO \"renewal\".\"land_parcels\"%%' "
                "OR query ILIKE 'COPY import_stage%%')").fetchone()
            if row is not None:
                seen = row
                time.sleep(0.2)  # well inside the statement
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        log.close()
    assert seen is not None, "the import never reached COPY/INSERT"
    assert proc.returncode == -signal.SIGKILL
    backend = seen[0]
    for _ in range(600):  # the server aborts the orphaned transaction when it next talks to the dead client
        alive = io_conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone()
        if alive is None:
            break
        io_conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
        time.sleep(0.2)
    after = table_state(io_conn, "land_parcels"), side_tables_state(io_conn)
    assert after == before
    assert io_conn.execute("SELECT count(*) FROM renewal.land_parcels WHERE code LIKE 'KILL-%'").fetchone() == (0,)
    assert io_conn.execute("SELECT count(*) FROM renewal.imports WHERE file_name = 'kill.gpkg'").fetchone() == (0,)
