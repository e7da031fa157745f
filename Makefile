# ecofed-flwr: `make run` runs an EcoFed federation, `make test` runs the test suite.
# Both set themselves up on a fresh machine (virtual environment, package, offline data).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ecofed-installed
ARGS ?=
# Folder of the Fashion-MNIST idx files when not the Debian package's (see scripts/ensure-data.sh)
DATA_DIR ?=

export FLWR_TELEMETRY_ENABLED=0
export FLWR_DISABLE_UPDATE_CHECK=1
export RAY_USAGE_STATS_ENABLED=0
# Offline unless the caller says otherwise (HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 for hf: data)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup data test lint run clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) data

data:
	@bash scripts/ensure-data.sh $(DATA_DIR)

# ARGS goes to `ecofed run`, e.g. make run ARGS="--run-config 'num-server-rounds=3'"
run: setup
	$(PY) -m ecofed_flwr.cli run $(ARGS)

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) outputs .pytest_cache .mypy_cache .ruff_cache
