# Two commands do everything: `make run` and `make test` create .venv when it is
# missing, install the project into it, then run the main job or the test suite.
# `make typecheck` runs mypy on what [tool.mypy] in pyproject.toml names (CI runs it first).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# PyTorch is pinned and installed before stable-baselines3 so that pip never
# pulls a multi-GB GPU build. Elsewhere, point pip at PyTorch's CPU wheel index:
#   make test TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>"
TORCH_VERSION  ?= 2.13.0
TORCH_PIP_ARGS ?=

# Rollout workers are single-threaded; the parent sets its own threads.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export WANDB_SILENT ?= true

ARGS ?=
RESULTS ?= results
# pytest-xdist processes for make test and make test-fast ("logical": one per CPU this process may use; 0: none, the tests run in this process)
TEST_WORKERS ?= logical

.PHONY: install run test test-fast typecheck lint bench bench-report report figures figures-landscape figures-novelty clean help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's|$$(RESULTS)|$(RESULTS)|g' | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (CPU PyTorch first)

run: $(STAMP)  ## train ES on HalfCheetah-v5 with the shipped defaults (ARGS="key=value ..." to override)
	$(PY) -m harness $(ARGS)

test: $(STAMP)  ## run the test suite (TEST_WORKERS=logical: one pytest-xdist process per CPU)
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(ARGS)

test-fast: $(STAMP)  ## the inner loop: every test not marked slow (no real runs, reports or worker processes)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(ARGS)

lint: $(STAMP)  ## ruff check and ruff format --check (rules and style: [tool.ruff] in pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)  ## type-check the ES core, the worker contract, the wall-time model and the report options (mypy; what and how strictly: [tool.mypy] in pyproject.toml)
	$(PY) -m mypy $(ARGS)

bench: $(STAMP)  ## throughput: raw MuJoCo, a plain Gymnasium loop, the harness per backend and workers.n -> $(RESULTS)/bench (not a test)
	$(PY) -m harness.bench --out-dir $(RESULTS)/bench $(ARGS)

bench-report: $(STAMP)  ## the report's wall time and peak memory over 1k, 3k and 10k run folders -> $(RESULTS)/bench/report_scale.md (not a test)
	$(PY) -m harness.bench.report_scale --out-dir $(RESULTS)/bench $(ARGS)

report: $(STAMP)  ## turn the runs under $(RESULTS) into figures and tables
	$(PY) -m harness.report $(RESULTS) $(ARGS)

figures: $(STAMP)  ## the paper's figures and tables from $(RESULTS)/paper alone (no training) into $(RESULTS)/figures/paper
	$(PY) -m harness.report.paper --results $(RESULTS)/paper --out $(RESULTS)/figures/paper $(ARGS)

figures-landscape: $(STAMP)  ## toy-landscape figures (ES, VO, gradient descent) into $(RESULTS)/figures/landscape
	$(PY) -m harness.report.landscape --out $(RESULTS)/figures/landscape $(ARGS)

figures-novelty: $(STAMP)  ## where the agents went in the deceptive-maze sweep ($(RESULTS)/deceptive_point_maze, else $(RESULTS)/paper/deceptive_point_maze), into $(RESULTS)/figures/novelty
	$(PY) -m harness.report.behaviours $(RESULTS)/deceptive_point_maze $(RESULTS)/paper/deceptive_point_maze --out $(RESULTS)/figures/novelty $(ARGS)

clean:  ## remove the virtualenv and caches (keeps results/)
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info
