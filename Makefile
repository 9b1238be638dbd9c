# ember — two commands on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint format bench clean venv

venv: $(STAMP)

# torch==2.13.0 is a CPU wheel on local disk: installed first, by exact pin,
# so nothing else pulls a multi-gigabyte CUDA build from the registry.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 || echo "note: torch==2.13.0 not installed; framework tests will skip"
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ember.demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

lint: $(STAMP)
	$(PY) -m ruff check ember tests benchmarks
	$(PY) -m ruff format --check ember tests benchmarks
	$(VENV)/bin/lint-imports --no-cache --no-logo   # the layers in pyproject.toml

format: $(STAMP)
	$(PY) -m ruff format ember tests benchmarks
	$(PY) -m ruff check --fix ember tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/matmul.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
