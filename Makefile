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
DEMO_ACCOUNTS ?= 20000
DEMO_MONTHS ?= 24
DEMO_SEED ?= 11
DEMO_AS_OF ?= 2025-12-31
DATA ?= $(DEMO_DIR)/data
OUT ?= $(DEMO_DIR)/scores
AS_OF ?= $(DEMO_AS_OF)
MODEL_URI ?=
POLICY ?=
WAIT ?=
NO_MLFLOW ?=
ALLOW_STALE ?=
MLFLOW_PORT ?= 5000
# Where the scale benchmark keeps its simulated books (GBs; reused between runs).
BENCH_WORK ?= bench_out/scale
APPROVER ?=
NOTE ?=
# Quote a value for the shell (spaces, quotes and $ reach the command intact).
q = '$(subst ','\'',$(1))'
# Targets that only run the installed CLI: set up .venv when it is missing, never re-sync it.
NEEDS_VENV := $(if $(wildcard $(PROPENSITY)),,setup)

.PHONY: help setup setup-spark test lint format demo simulate validate train promote score evaluate replay bench bench-scale mlflow-ui jupyter clean

help: ## List the targets with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv>=0.5,<1"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	@touch $@

setup: $(VENV)/.installed ## Create .venv and install the locked dependencies (idempotent)

setup-spark: setup ## Add the Spark extra (pyspark) for --engine spark outside the dev setup
	$(UV) sync --locked --compile-bytecode --extra spark --python $(PYTHON)

test: setup ## Run the test suite (unit, data, model, notebooks)
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest

lint: setup ## Check the code with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## Format the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

simulate: setup ## Simulate the demo portfolio into $(DATA)
	$(PROPENSITY) simulate --accounts $(DEMO_ACCOUNTS) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --start 2024-01-01 --out $(call q,$(DATA))

validate: setup ## Validate the tables in $(DATA) against the data contract
	$(PROPENSITY) validate --data $(call q,$(DATA)) --rejects $(call q,$(DEMO_DIR)/rejects.parquet)

demo: setup ## The main job on a simulated portfolio: simulate, validate, train, promote, score
	@echo "== 1/5 simulate $(DEMO_ACCOUNTS) accounts x $(DEMO_MONTHS) months into $(DEMO_DIR)/data"
	$(PROPENSITY) simulate --accounts $(DEMO_ACCOUNTS) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --start 2024-01-01 --out $(DEMO_DIR)/data
	@echo "== 2/5 validate against the data contract"
	$(PROPENSITY) validate --data $(DEMO_DIR)/data
	@echo "== 3/5 train both heads and register a challenger"
	$(PROPENSITY) train --data $(DEMO_DIR)/data --as-of $(DEMO_AS_OF)
	@echo "== 4/5 promote the challenger if it passes the gate (demo approver; a real promotion names its reviewer)"
	$(PROPENSITY) promote --approver demo --note "make demo: automatic promotion of the demo model"
	@echo "== 5/5 score every account overdue at $(DEMO_AS_OF)"
	$(PROPENSITY) score --data $(DEMO_DIR)/data --as-of $(DEMO_AS_OF) --out $(DEMO_DIR)/scores
	@echo
	@echo "Outputs:   $(DEMO_DIR)/scores/as_of=$(DEMO_AS_OF)/ (scores.parquet, rejects.parquet, manifest.json)"
	@echo "MLflow:    runs, model report and registry in ./mlflow.db and ./mlartifacts; browse with 'make mlflow-ui'"

train: setup ## Train on $(DATA) as of $(AS_OF) and register a challenger
	$(PROPENSITY) train --data $(call q,$(DATA)) --as-of $(call q,$(AS_OF))

promote: setup ## Promote the challenger if it passes the gate: make promote APPROVER=name NOTE="why"
	$(PROPENSITY) promote --approver $(call q,$(APPROVER)) --note $(call q,$(NOTE))

score: $(NEEDS_VENV) ## Nightly scoring: make score AS_OF=D DATA=dir OUT=dir [MODEL_URI= POLICY= WAIT= NO_MLFLOW=1 ALLOW_STALE=1]
	@bin/score --data $(call q,$(DATA)) --as-of $(call q,$(AS_OF)) --out $(call q,$(OUT)) \
	  $(if $(MODEL_URI),--model-uri $(call q,$(MODEL_URI))) $(if $(POLICY),--policy $(call q,$(POLICY))) \
	  $(if $(WAIT),--wait $(call q,$(WAIT))) $(if $(filter-out 0 no false,$(NO_MLFLOW)),--no-mlflow) \
	  $(if $(filter-out 0 no false,$(ALLOW_STALE)),--allow-stale) \
	  || { code=$$?; echo "make score: propensity score exited with code $$code (docs/operations.md); make reports any failure as 2, schedulers should call bin/score" >&2; exit $$code; }

evaluate: setup ## Print the quality-bar figures on a fresh simulated portfolio
	$(PROPENSITY) evaluate --accounts 30000 --months 18 --seed 90210

# The headline replay: a fresh portfolio (not the demo's seed), a model trained on its
# year before REPLAY_FROM, then the default policy (fixed tiers), the same policy in value
# mode at the fixed tiers' capacity (--value: on the priors, as --learn-nights defaults to 0;
# it explores 5% of episodes), and the dpd_buckets baseline.
REPLAY_DIR ?= $(DEMO_DIR)/replay
REPLAY_ACCOUNTS ?= 20000
REPLAY_FROM ?= 2025-09-01
REPLAY_NIGHTS ?= 60
REPLAY_SEEDS ?= 3

replay: setup ## Headline: default policy, its value mode and dpd_buckets, 60 nights x 3 seeds
	$(PROPENSITY) simulate --accounts $(REPLAY_ACCOUNTS) --months 24 --seed 2027 --start 2024-01-01 --out $(REPLAY_DIR)/data
	OMP_WAIT_POLICY=PASSIVE $(PROPENSITY) replay --data $(REPLAY_DIR)/data --from $(REPLAY_FROM) --nights $(REPLAY_NIGHTS) --train --value --baseline dpd_buckets --seeds $(REPLAY_SEEDS) --report $(REPLAY_DIR)/replay_report.html

mlflow-ui: setup ## Serve the MLflow UI on localhost for the project's store (MLFLOW_PORT=5000)
	@echo "starting the MLflow UI (store: $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}, one worker); the address follows once it answers"
	@$(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 & pid=$$!; \
	trap 'kill -INT $$pid 2>/dev/null; wait $$pid 2>/dev/null' INT TERM EXIT; \
	$(PY) scripts/wait_http.py $$pid http://127.0.0.1:$(MLFLOW_PORT)/health || exit 1; \
	echo "MLflow UI at http://127.0.0.1:$(MLFLOW_PORT) (experiment repayment-propensity, model repayment-propensity); Ctrl-C to stop"; \
	wait $$pid

jupyter: setup ## Open the notebooks in JupyterLab (borrowed by uv for the session)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} $(UV) run --with jupyterlab jupyter lab notebooks/

bench: setup ## Print speed and memory figures (simulator, validation, features, training, scoring)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_simulate.py --accounts 100000 --months 24
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_validate.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_features.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_train.py --source simulated
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_score.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_replay.py --accounts 20000 --nights 14
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_allocate.py --offers
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_scale.py --accounts 1000000 --work $(call q,$(BENCH_WORK))

bench-scale: setup ## Sharded score and features at 0.25M, 0.5M, 1M, 2M accounts x 24 months, next to DuckDB (long)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_scale.py --accounts 250000 500000 1000000 2000000 --work $(call q,$(BENCH_WORK))

clean: ## Remove everything the project writes: demo outputs, local MLflow store, locks, caches (keeps .venv)
	rm -rf $(DEMO_DIR) mlruns mlartifacts mlflow.db mlflow.db.lock mlflow-debug.log reports \
	  .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./.venv -prune -o -path ./.tools -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
