# govbase front door. `make demo` and `make test` each set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv: the one on PATH, else the pip-installed module (installed by `setup` when absent).
UV = $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
VENV := .venv
# the Data Docs' stylesheets, scripts and fonts: npm packages pinned in vendor/package-lock.json
VENDOR := vendor
BIN := $(VENV)/bin
export GOVBASE_HOME ?= $(CURDIR)/var
# the demo publishes department shares with a DEMO pseudonym key (never use it for real data)
export GOVBASE_PSEUDONYM_KEY ?= demo:govbase-demo-pseudonym-key-not-secret
PERSONS ?= 5000
SEED ?= 42
# make test shares the tests over the cores (pytest-xdist, a module at a time), one worker more
# than cores since many tests wait on Airflow or subprocesses: TEST_WORKERS=0 runs them in one process
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: help setup demo test test-slow lint fmt airflow airflow-setup airflow-celery browser bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode  # bytecode at install: imports stay fast where PYTHONDONTWRITEBYTECODE is set
	@touch $@

$(VENDOR)/node_modules/.installed: $(VENDOR)/package.json $(VENDOR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed at set-up for the Data Docs assets (vendor/package.json); Debian: apt-get install npm"; exit 1; }
	cd $(VENDOR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed $(VENDOR)/node_modules/.installed  ## create .venv with uv (installing uv first if absent), the Data Docs assets with npm ci

browser:  ## install Debian's chromium, chromium-driver and CJK fonts (fonts-noto-cjk) for the browser tests (when missing)
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium chromium-driver"; \
	  fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	  if [ -n "$$missing" ]; then \
	  echo "installing from Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "could not install$$missing: the browser tests will skip (or screenshots show boxes for Chinese)"; fi

demo: setup  ## generate demo department data and run the whole pipeline through Airflow
	$(BIN)/python -m etl.orchestration.demo --persons $(PERSONS) --seed $(SEED)

test: setup browser  ## unit + integration tests (slow suites excluded), on every core
	$(BIN)/pytest -q -n $(TEST_WORKERS)

test-slow: setup  ## the on-demand suites marked slow (the 1 GB extraction memory test, the fault-injection suite: docs/reliability.md, a delivery dropped into a running Airflow: docs/airflow.md)
	$(BIN)/pytest -q -m slow

lint: setup  ## ruff, and mypy on etl/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check etl dags tests bench
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format etl dags tests bench
	$(BIN)/ruff check --fix .

airflow: setup  ## start `airflow standalone` with the project's DAGs
	$(BIN)/python -m etl.orchestration.standalone

airflow-setup: setup  ## migrate Airflow's metadata DB and create pool govbase_warehouse (idempotent)
	$(BIN)/python -m etl.orchestration.airflow_env setup

airflow-celery: setup  ## scale-out profile: CeleryExecutor + Redis + PostgreSQL (docs/scale-out.md)
	scripts/airflow_celery.sh

bench: setup  ## ingest benchmark against a bare DuckDB copy, then the two validation engines (on demand)
	$(BIN)/python bench/ingest_bench.py --sizes 100000 1000000
	$(BIN)/python bench/validate_bench.py --persons 200000

clean:  ## remove the demo warehouse (GOVBASE_HOME)
	rm -rf "$(GOVBASE_HOME)"
