# Two commands: `make run` (serve the demo city) and `make test` (the whole suite).
# Everything else is a step they depend on.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DB_NAME ?= renewal
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run DB_NAME=x` (given on the command line or in the environment, without DATABASE_URL): the steps
# that connect use the local server's database x (the one provisioning makes) as the API's login; the owner
# is the OS user (api.settings.Settings.owner_url). Otherwise they read DATABASE_URL from the environment or
# .env, whose default is the local `renewal`. Not exported: provision-db.sh reads a set DATABASE_URL as
# "someone else's server".
DB_ENV := $(if $(DATABASE_URL),,$(if $(filter-out file,$(origin DB_NAME)),DATABASE_URL=postgresql://renewal_api@/$(DB_NAME)))

.PHONY: run run-deps test setup setup-run lock assets db demo serve lint typecheck bench notebooks clean

# Python dependencies come from lock files with hashes (requirements/*.lock, made by `make lock`),
# so a fresh clone installs exactly what the suite passed with. `run` needs only run.lock.
$(VENV)/.run-installed: requirements/run.lock pyproject.toml
	@scripts/venv.sh
	@$(VENV)/bin/pip install -q --upgrade pip
	@$(VENV)/bin/pip install -q --require-hashes -r requirements/run.lock
	@$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: requirements/dev.lock $(VENV)/.run-installed
	@$(VENV)/bin/pip install -q --require-hashes -r requirements/dev.lock
	@touch $@

## setup-run: the virtualenv with what running needs, and the map libraries (node_modules)
setup-run: $(VENV)/.run-installed assets

## setup: everything, including the test and lint tools
setup: $(VENV)/.dev-installed assets

## lock: re-pin the Python dependency tree (after editing pyproject.toml's dependencies)
lock:
	@test -x $(VENV)/bin/uv || $(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements/run.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements/dev.lock

## assets: front-end libraries for offline maps (npm ci from package-lock.json), served at /vendor/
assets:
	@scripts/assets.sh

## db: PostgreSQL + PostGIS (installed/started when needed), database created and migrated
db: setup-run
	@scripts/provision-db.sh $(DB_NAME)
	@$(DB_ENV) $(PY) -m api.cli db upgrade

## demo: load the synthetic demo city unless the database already holds data
demo: db
	@$(DB_ENV) $(PY) -m api.cli demo load --if-empty

## run-deps: OS packages the service needs at run time (LibreOffice Writer for PDF reports, a CJK font)
run-deps:
	@scripts/os-run-deps.sh

## run: everything above, then serve API, viewer and maps on http://$(HOST):$(PORT)
run: demo run-deps
	@$(DB_ENV) $(PY) -m api.cli serve --host $(HOST) --port $(PORT)

## test: provision the server, then the whole suite in a fresh test database it drops afterwards
test: setup
	@scripts/provision-db.sh -
	@scripts/os-test-deps.sh
	@$(VENV)/bin/pytest

## lint: ruff, and the import contract in pyproject.toml (api -> layers -> gis)
lint: setup
	$(VENV)/bin/ruff check api gis layers tests bench
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

bench: demo
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

notebooks: demo
	@mkdir -p out/notebooks
	$(DB_ENV) $(VENV)/bin/jupyter nbconvert --to html --execute --output-dir out/notebooks notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out artifacts *.egg-info
