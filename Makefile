# Repayment propensity scoring: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROPENSITY := $(VENV)/bin/propensity
# uv from PATH, else bootstrapped into .tools/ through pip (no global install needed).
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)

# Demo and nightly defaults (override on the command line: make score AS_OF=2025-06-30 ...).
DEMO_DIR ?= demo
DEMO_ACCOUNTS ?= 4000
DEMO_MONTHS ?= 24
DEMO_SEED ?= 11
DEMO_AS_OF ?= 2025-12-31
DATA ?= $(DEMO_DIR)/data
OUT ?= $(DEMO_DIR)/scores
AS_OF ?= $(DEMO_AS_OF)
MODEL_URI ?=
POLICY ?=
MLFLOW_PORT ?= 5000

.PHONY: help setup test lint format demo simulate validate train promote score evaluate bench mlflow-ui notebooks clean

help: ## List the targets with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv>=0.5,<1"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

setup: $(VENV)/.installed ## Create .venv and install the locked dependencies (idempotent)

test: setup ## Run the test suite (unit, data, model, notebooks)
	$(PY) -m pytest

lint: setup ## Check the code with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## Format the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

simulate: setup ## Simulate the demo portfolio into $(DATA)
	$(PROPENSITY) simulate --accounts $(DEMO_ACCOUNTS) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --start 2024-01-01 --out $(DATA)

validate: setup ## Validate the tables in $(DATA) against the data contract
	$(PROPENSITY) validate --data $(DATA) --rejects $(DEMO_DIR)/rejects.parquet

demo: setup ## Run the main job on a simulated portfolio: simulate, validate
	$(PROPENSITY) simulate --accounts $(DEMO_ACCOUNTS) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --start 2024-01-01 --out $(DEMO_DIR)/data
	$(PROPENSITY) validate --data $(DEMO_DIR)/data

bench: setup ## Print speed and memory figures (simulator, features, training, scoring)
	$(PY) benchmarks/bench_simulate.py

clean: ## Remove the demo outputs, local MLflow store and caches (keeps .venv)
	rm -rf $(DEMO_DIR) mlruns mlartifacts mlflow.db .pytest_cache .ruff_cache
