"""The analysis notebooks run top to bottom on the demo database, quickly, and are committed without outputs.

Each notebook is executed with nbclient in a kernel that is this interpreter (a kernelspec
written to a temporary ``JUPYTER_PATH``, so a user-level ``python3`` kernel pointing at another
Python cannot be picked up), with ``DATABASE_URL`` pointing at the session test database.
The executed copies are written to ``artifacts/notebooks/`` for inspection.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ARTIFACTS, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUDGET_S = 120.0
"""Both notebooks together must run in under two minutes on the development machine."""
_timings: dict[str, float] = {}


def test_the_two_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"renewal_coverage.ipynb", "vacated_land_and_hutuo_belt.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory, db_url: str, demo_loaded: dict[str, int]) -> dict[str, str]:
    """Environment for the kernel: this interpreter as ``python3``, the test database, the repo importable."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (renewal venv)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return {"JUPYTER_PATH": str(jupyter_path), "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RENEWAL_AS_OF", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    _timings[path.stem] = time.perf_counter() - start
    out_dir = ARTIFACTS / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 3, "the notebook should draw its charts and static maps"


@pytest.mark.slow
def test_notebooks_run_within_budget() -> None:
    if len(_timings) != len(NOTEBOOKS):
        pytest.skip("run together with test_notebook_runs")
    total = sum(_timings.values())
    (ARTIFACTS / "notebooks" / "timings.json").write_text(json.dumps({**_timings, "total": total}, indent=2))
    assert total < BUDGET_S, f"notebooks took {total:.1f} s together ({_timings}); budget {BUDGET_S:.0f} s"
