# unlearnlab: `make run` sets up and runs the course; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= auto
OUT ?= runs/latest
BENCH_PROFILE = $(if $(filter auto,$(PROFILE)),quick,$(PROFILE))
# MNIST: ../shared/data when it is there (this project's machines); otherwise torchvision downloads it
SHARED_DATA := $(abspath ../shared/data)
export UNLEARNLAB_DATA ?= $(if $(wildcard $(SHARED_DATA)/MNIST/raw),$(SHARED_DATA),)
# executed notebooks keep no progress bars (tqdm reads only a non-empty value); TQDM_DISABLE=0 shows them
export TQDM_DISABLE ?= 1

.DEFAULT_GOAL := help
.PHONY: help setup sandbox browser run test lint format bench build lectures readme clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/unlearnlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

setup: $(BIN)/unlearnlab  ## create the virtual environment and install the package with its tools

sandbox:  ## install bubblewrap, the grader's sandbox, when it is missing and apt-get can (as root)
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q bubblewrap || { apt-get update -q && apt-get install -y -q bubblewrap; }; } >/dev/null; } || \
	  echo "bubblewrap is not installed: grading runs without a sandbox (sudo apt-get install bubblewrap)"

browser:  ## install Chromium and its driver, for the JupyterLab browser test, when missing and apt-get can (as root)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }; } >/dev/null; } || \
	  echo "Chromium is not installed: the browser test skips (sudo apt-get install chromium chromium-driver)"

run: setup  ## run every notebook with papermill (PROFILE=quick|full|auto); writes runs/latest/report.md
	$(BIN)/unlearnlab run --profile $(PROFILE) --out $(OUT)

test: setup sandbox browser  ## lint and the import layers, then the whole test suite (unit tests and notebooks)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	TQDM_DISABLE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist worksteal --durations=25

lint: setup  ## ruff check and the import layers contract (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: setup  ## ruff format and fix imports
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format unlearnlab tests benchmarks

bench: setup  ## measure pretraining and zero-shot unlearning (PROFILE=quick|full) into benchmarks/results/
	$(BIN)/python benchmarks/bench_pretrain.py --profile $(BENCH_PROFILE)
	$(BIN)/python benchmarks/bench_zero_shot.py --profile $(BENCH_PROFILE)

build: setup  ## regenerate exercises/ from solutions/ and stamp the repository address into every notebook
	$(BIN)/unlearnlab build

lectures: setup  ## execute the lecture notebooks in place (their stored figures are what GitHub shows) and stamp them
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 notebooks/*.ipynb
	$(BIN)/unlearnlab build notebooks/*.ipynb

readme: setup  ## rewrite README.md's headline-results table from benchmarks/results/course_full.json
	$(BIN)/python -c "from unlearnlab.course.report import sync_readme; sync_readme()"

clean:  ## remove the virtual environment and caches (not the MNIST files)
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
