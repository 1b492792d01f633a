# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME := $(CURDIR)/data/dagster_home
# The demo's first day, written by `make demo` (its days end yesterday), so that `make ui` and later
# demo runs partition the lakehouse from the day its drops start.
-include data/demo.env
demo ui: export RETAIL_LAKEHOUSE_START_DATE := $(RETAIL_LAKEHOUSE_START_DATE)

NPM ?= npm
NODE_STAMP := node_modules/.installed-stamp

.PHONY: setup demo test lint bench ui sql sample clean azure-containers azure-upload system-packages

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m retail_lakehouse.demo

# Azurite, the Azure Storage emulator the ADLS Gen2 tests run against, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $@

# The tests also start a Spark Connect server, whose client is an extra (pyproject.toml).
CONNECT_STAMP := $(VENV)/.spark-connect-stamp
$(CONNECT_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,spark-connect]'
	touch $@

# Debian packages the tests start for real: PostgreSQL (Dagster's instance, the SQL sync) and
# Chromium (the UI test). Installed only where missing, with apt-get (as root, or through sudo).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	command -v psql >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing$$missing"; \
		$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Two workers: most tests wait on processes (Spark, the webserver, Chromium, Postgres, retries'
# back-off), so two run in about the time of one on these 2-core machines. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: setup $(NODE_STAMP) $(CONNECT_STAMP) system-packages
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .

# The benchmark against the peers (SPEC §7): data/bench/report.md, results.json, scaling.png.
# SCALE=0.1|1|3|10 (default 1), DAYS=365; FIXED=whole|all|both: the fixed-cost variant(s) of (b).
SCALE ?= 1
DAYS ?= 365
FIXED ?= whole
BENCH_ARGS ?=
# (g) runs the Spark engine, which needs the spark extra (pandas). With pandas installed, pandera
# imports it in every run (~1 s of a CLI start-up), so the Polars engine's rows run in a virtualenv
# of the project without extras, as `make setup` gives users (who may have run `make test` since,
# which installs pandas into .venv).
SPARK_STAMP := $(VENV)/.spark-stamp
$(SPARK_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,spark]'
	touch $@
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -e .
	touch $@
bench: setup $(SPARK_STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench --scale $(SCALE) --days $(DAYS) --fixed $(FIXED) --polars-venv $(BENCH_VENV) $(BENCH_ARGS)

# ADLS Gen2: create the layer containers, and upload the generated drops to the landing container.
azure-containers: setup
	$(BIN)/python -m retail_lakehouse.azure create-containers

azure-upload: setup
	$(BIN)/python -m retail_lakehouse.azure upload --from data/landing

# The analysts' SQL shell over the gold Delta tables; the seed 000 §9 queries are in
# retail_lakehouse/serving/queries/.
sql: setup
	$(BIN)/python -m retail_lakehouse.serving.shell

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# Regenerates the committed sample of drops (data/sample/landing).
sample: setup
	rm -rf data/sample/landing
	$(BIN)/python -m retail_lakehouse.generator --out data/sample/landing --start 2026-09-01 --days 3 --seed 42 --scale 0.01

clean:
	rm -rf data/landing data/lakehouse data/dagster_home data/demo.env
