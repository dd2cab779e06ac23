"""The architecture holds: the dependency direction, and a plain install that works.

* The import-linter contract in ``pyproject.toml`` (``api -> layers -> gis``; ``gis`` is
  plain GIS, ``layers`` knows nothing of HTTP; inside ``layers.query`` each module uses only
  those beneath it; ``layers.values`` sits beneath every door) is kept, and it catches a violation.
* ``pip install .`` without extras, into a fresh virtualenv from ``requirements/run.lock``,
  can import every module of ``api``, ``gis`` and ``layers``, run ``renewal --help``, migrate a
  fresh database and load the demo: every runtime dependency and data file is shipped.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import psycopg
import pytest
from packaging.requirements import Requirement

from tests.conftest import create_database, drop_database

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "gis", "layers")
BIN = Path(sys.executable).parent


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(BIN)) or shutil.which("lint-imports")
    assert exe, "lint-imports is not installed (import-linter is a dev dependency: make setup)"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [exe, str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_ruff_is_clean() -> None:
    """ruff over every package, the tests and the benchmarks (what ``make lint`` runs), so CI catches a slip."""
    exe = shutil.which("ruff", path=str(BIN)) or shutil.which("ruff")
    assert exe, "ruff is not installed (a dev dependency: make setup)"
    run = subprocess.run([exe, "check", "--no-cache", "api", "gis", "layers", "tests", "bench"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_import_contract_is_kept() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert f"{len(contracts['contracts'])} kept" in run.stdout, run.stdout


def _copy_tree(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.js"))


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("gis/crs.py", "import layers.registry", "api -> layers -> gis"),
        ("layers/progress.py", "from api import errors", "api -> layers -> gis"),
        ("gis/geodesy.py", "import psycopg", "gis is plain GIS"),
        ("layers/registry.py", "import fastapi", "layers is the domain"),
        ("layers/query/common.py", "import layers.query.builder", "layers.query: execute > density > paging"),
        ("layers/values.py", "import layers.query", "layers.values is beneath"),
    ],
)
def test_import_contract_catches_a_violation(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """The contract is not vacuous: one backwards import in a copy of the tree breaks it."""
    _copy_tree(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    broken = [ln for ln in run.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), run.stdout


# Declared, but used through another package rather than imported: why each is needed.
INDIRECT = {
    "pyarrow": "pyogrio reads GeoPackages through GDAL's Arrow interface (use_arrow=True)",
    "python-multipart": "FastAPI parses the multipart upload of POST /collections/{id}/imports with it",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    """Each declared run dependency -> the distributions it brings in directly (itself + its extras)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    out: dict[str, set[str]] = {}
    for text in deps:
        req = Requirement(text)
        dists = {_norm(req.name)}
        for extra in req.extras:
            for sub in md.requires(req.name) or []:
                r = Requirement(sub)
                if r.marker is not None and r.marker.evaluate({"extra": extra}):
                    dists.add(_norm(r.name))
        out[_norm(req.name)] = dists
    return out


def _third_party_imports() -> dict[str, str]:
    """Top-level third-party module -> one file importing it, over the installed code and migrations."""
    found: dict[str, str] = {}
    for top in (*PACKAGES, "migrations"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    mod = name.split(".")[0]
                    if mod not in sys.stdlib_module_names and mod not in (*PACKAGES, "migrations"):
                        found.setdefault(mod, str(path.relative_to(ROOT)))
    return found


def test_run_dependencies_are_exact() -> None:
    """Every imported third-party module is declared; every declared dependency is used."""
    declared = _declared()
    provided = {d for dists in declared.values() for d in dists}
    by_module = md.packages_distributions()
    imports = _third_party_imports()
    used: set[str] = set()
    missing = []
    for mod, where in imports.items():
        dists = {_norm(d) for d in by_module.get(mod, [])}
        assert dists, f"{mod} (imported by {where}) is not installed"
        used |= dists
        if not dists & provided:
            missing.append(f"{mod} (imported by {where}, from {sorted(dists)})")
    assert not missing, "imported but not declared in [project] dependencies: " + ", ".join(missing)
    unused = sorted(name for name, dists in declared.items() if not dists & used and name not in INDIRECT)
    assert not unused, f"declared but never imported (remove, or say why in INDIRECT): {unused}"
    for name in INDIRECT:
        assert name in declared, f"{name} is listed as indirect but not declared"


IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    names = []
    for top in {packages!r}:
        pkg = importlib.import_module(top)
        assert "site-packages" in pkg.__file__, pkg.__file__
        names.append(top)
        # __main__ modules run the program when imported; `renewal --help` covers them.
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, top + ".") if not m.name.endswith(".__main__")]
    for name in names:
        importlib.import_module(name)
    print(len(names), "modules imported")
    """
)


@pytest.mark.slow
def test_plain_install_imports_everything(tmp_path: Path) -> None:
    """A fresh venv with only the run dependencies can import every module and run the CLI."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    lock = ROOT / "requirements" / "run.lock"
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True, timeout=1800)
    # Build from a copy so that no build/ or egg-info lands in the working tree.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", "*.egg-info", "build", "out",
                                      ".mypy_cache", ".ruff_cache", ".pytest_cache", "artifacts"),
    )
    subprocess.run([*pip, "--no-deps", str(src)], check=True, timeout=600)

    # Run outside the source tree so that only the installed package can be imported.
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [str(py), "-c", IMPORT_EVERYTHING.format(packages=PACKAGES)],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    count = int(run.stdout.split()[0])
    assert count > 50, run.stdout

    cli = subprocess.run(
        [str(venv / "bin" / "renewal"), "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    for command in ("db", "demo", "serve", "import", "export", "progress"):
        assert command in cli.stdout, cli.stdout

    # Nothing the lock pins beyond what the project declares: pip check finds no gap either way.
    check = subprocess.run([str(py), "-m", "pip", "check"], env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr

    # The installed package carries its migrations and demo data: it can set up a database on its own.
    url = create_database("renewal_install")
    try:
        db_env = {**env, "DATABASE_URL": url}
        for args in (["db", "upgrade"], ["demo", "load"], ["layers", "list"]):
            step = subprocess.run([str(venv / "bin" / "renewal"), *args], cwd=work, env=db_env,
                                  capture_output=True, text=True, timeout=600)
            assert step.returncode == 0, f"renewal {' '.join(args)}: {step.stdout}{step.stderr}"
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM renewal.urban_villages), "
                               "(SELECT count(*) FROM renewal.districts)").fetchone()
        assert row is not None and row[0] > 0 and row[1] > 0, row
    finally:
        drop_database(url)
