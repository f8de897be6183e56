# Two commands for a fresh machine: `make run` and `make test`.
# Each creates .venv if missing and installs what it needs by itself.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/var/dagster
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench bench-generate bench-api bench-recommend api dagster mlflow web bench-web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The runtime install needs no torch; the test install adds the musicgen
# extra. torch is installed first, pinned, so that pip takes the CPU wheel
# and no resolver ever pulls a CUDA build.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/python -m cli.run

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.test-installed
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/generate.py --backend procedural --duration 60

dagster: $(VENV)/.run-installed
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

# The MLflow UI alone (`make run` starts it beside Dagster): generation runs
# and the generator registry in the embedded store, http://127.0.0.1:5000.
mlflow: $(VENV)/.run-installed
	$(BIN)/python -m cli.mlflow_ui

# MusicGen speed with random weights of musicgen-small's architecture (no
# download); on a GPU: BENCH_ARGS="--device cuda --batch 8 --duration 30".
bench-generate: $(VENV)/.test-installed
	$(BIN)/python bench/generate.py --backend musicgen --random-weights small $(BENCH_ARGS)

# The API alone (migrations, then uvicorn), http://127.0.0.1:8000/docs.
api: $(VENV)/.run-installed
	$(BIN)/python -m cli.main serve

# The API under load (two workers, loopback) against a bare Starlette
# baseline; uses wrk when installed (apt-get install wrk), else a Python
# load generator. BENCH_ARGS="--redis redis://127.0.0.1:6379/13" for Redis.
bench-api: $(VENV)/.test-installed
	$(BIN)/python bench/api.py $(BENCH_ARGS)

# The recommender: training time and memory, offline metrics against the
# baselines, and the three endpoints' latency; BENCH_ARGS="--full" for
# 100k listeners x 10k tracks x 5M plays.
bench-recommend: $(VENV)/.test-installed
	$(BIN)/python bench/recommend.py $(BENCH_ARGS)

# The web pages (web/: TypeScript, Vite, Vitest) built into serving/webui/,
# which the API serves, so `make run` needs no Node.js. Needs Node.js 20+.
web:
	cd web && npm ci --no-audit --no-fund && npm run build && npm test

# The listener page in Debian's Chromium on loopback: navigation to audio,
# LCP, bytes gzipped, browser CPU with the visualizer (bench/web.py).
bench-web: $(VENV)/.test-installed
	flock /tmp/sonicforge-bench.lock $(BIN)/python bench/web.py $(BENCH_ARGS)
