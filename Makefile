# neuroflow: the two Quickstart commands are `make quickstart` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export VENV PYTHON

.PHONY: quickstart setup test-tools train test test-fast lint format ui serve bench-serving bench-scoring bench-training bench-cli bench-gate bench-quality screenshots clean

quickstart: setup ## Set everything up, train on breast_cancer, register the champion
	$(BIN)/neuroflow train
	@echo ""
	@echo "Browse it: $(BIN)/neuroflow ui   (then open http://127.0.0.1:5000)"

setup: ## Create $(VENV) with the pinned dependencies (reused while the pins are unchanged)
	@scripts/setup_venv.sh

test-tools: ## Debian packages the full suite needs: docker-compose (parser only), chromium, chromium-driver
	@scripts/setup_test_tools.sh

train: setup
	$(BIN)/neuroflow train

test: setup test-tools ## The whole test suite: unit, integration (real flows, servers, the compose stack) and quality
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

test-fast: setup ## Unit tests only
	$(BIN)/python -m pytest -m "not integration and not slow"

PACKAGE_FOLDERS := core models pipelines service cli

lint: setup ## ruff, the layer contracts (import-linter), pyright (imports resolve) and mypy (types)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pyright
	$(BIN)/mypy $(PACKAGE_FOLDERS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ui: setup
	$(BIN)/neuroflow ui

serve: setup ## Serve the champion on http://127.0.0.1:3000
	$(BIN)/neuroflow serve

bench-serving: setup ## Serving benchmark (a few minutes; installs Debian's hey if it is missing)
	@command -v hey >/dev/null || apt-get install -y hey
	$(BIN)/python benchmarks/serving/run.py

bench-scoring: setup ## Batch scoring benchmark: neuroflow predict vs mlflow models predict on 1M rows, then 10M rows' peak memory (~15 min)
	$(BIN)/python benchmarks/scoring/run.py

bench-training: setup ## Training benchmark against bare scripts: the step, (a) fixed cost, (b) 1M-row job, (c) first run (~30 min); BENCH_BASELINE=REV adds neuroflow at REV
	$(BIN)/python benchmarks/training/run.py $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE))

bench-quality: setup ## Network quality: both presets, the baselines and RealMLP on 12 real tables x 5 seeds (about an hour; QUICK=1: 3 tables, minutes)
	@scripts/setup_bench.sh
	@scripts/setup_realmlp.sh || echo "RealMLP's venv could not be built; its column is left out"
	$(BIN)/python benchmarks/quality/run.py $(if $(QUICK),--quick)

bench-gate: setup ## Gate benchmark: how often the gate promotes a challenger that is no better, against one that is (~5 minutes)
	$(BIN)/python benchmarks/gate/run.py

bench-cli: setup ## CLI benchmark: how fast each command-line mistake is reported, against a full train (~2 minutes)
	$(BIN)/python benchmarks/cli/run.py

screenshots: setup test-tools ## Refresh the README's screenshots from a stack test run (about 3 minutes)
	SCREENSHOTS_DIR=docs/images $(BIN)/python -m pytest -q tests/integration/test_stack.py

clean:
	rm -rf mlflow.db mlruns mlartifacts reports .pytest_cache .mypy_cache .ruff_cache
