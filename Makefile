# mlops-platform: `make dev` starts the platform, `make test` runs every test.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
NPM ?= npm
# npm writes this file on every install: it stands for "node_modules matches package-lock.json".
NODE_STAMP := node_modules/.package-lock.json
HOST ?= 127.0.0.1
PORT ?= 3000
SERVE_PORT ?= 8080
DEMO_DAYS ?= 30
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MLOPS_HOME ?= $(CURDIR)/.mlops

.PHONY: install dev demo-data test test-fast lint mlflow-ui bench clean

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools/uv uv==$(UV_VERSION)

# The environment, exactly as uv.lock and package-lock.json pin it (npm: Azurite for tests/cloud).
# Bytecode is compiled at install: this machine sets PYTHONDONTWRITEBYTECODE=1, so nothing else caches it
# and every test process would recompile dagster and mlflow (import dagster: 2.9 s uncompiled, 1.9 s compiled).
install: $(UV) $(NODE_STAMP)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)

$(NODE_STAMP): package.json package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(NPM) ci --no-audit --no-fund; \
	else \
		echo "npm not found: the Azure Blob suite in tests/cloud will be skipped (install Node.js 20)"; \
	fi

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Land demo files for every model unless the landing zone already holds some.
demo-data: install
	@if [ -z "$$(ls -A $(MLOPS_HOME)/landing 2>/dev/null)" ]; then \
		for model in $$($(BIN)/mlops-platform specs | cut -f1); do \
			$(BIN)/mlops-platform simulate --model $$model --days $(DEMO_DAYS) > /dev/null || exit 1; \
			echo "landed $(DEMO_DAYS) days of $$model in $(MLOPS_HOME)/landing"; \
		done; \
	fi

# The serving app runs beside Dagster on loopback (the endpoint assets deploy to it) and is stopped
# (SIGTERM: drains, exits 0) when dagster dev exits. Its token: MLOPS_SERVING_TOKEN, else generated in
# $(MLOPS_HOME)/serving/token.
dev: install demo-data $(DAGSTER_HOME)/dagster.yaml
	@$(BIN)/mlops-platform serve --host 127.0.0.1 --port $(SERVE_PORT) & serve=$$!; \
	trap 'kill $$serve 2>/dev/null; wait $$serve 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

lint: install
	$(BIN)/ruff check mlops_platform tests benchmarks
	$(BIN)/ruff format --check mlops_platform tests benchmarks
	$(BIN)/mypy

# Everything CI runs: lint, types, the fast suite and the slow suites.
test: lint
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

mlflow-ui: install
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(MLOPS_HOME)/mlflow/mlflow.db \
		--default-artifact-root $(MLOPS_HOME)/mlflow/artifacts

# serving.py needs wrk (Debian: apt-get install -y wrk) and both champions in MLOPS_HOME (run `make dev`
# until they are promoted); drift.py needs Evidently, in the uv group
# `bench`, installed for it alone and removed again after it, whatever its outcome.
bench: install
	$(BIN)/python benchmarks/family.py --rounds 3
	$(BIN)/python benchmarks/import_time.py
	$(BIN)/python benchmarks/delta_io.py
	$(BIN)/python benchmarks/landing_sensor.py
	$(BIN)/python benchmarks/scale.py --smoke
	$(BIN)/python benchmarks/serving.py --home $(MLOPS_HOME)
	$(UV) sync --frozen --group bench --compile-bytecode --python $(PYTHON)
	$(BIN)/python benchmarks/drift.py; status=$$?; \
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON); exit $$status

clean:
	rm -rf $(VENV) .tools node_modules .pytest_cache .ruff_cache .mypy_cache
