# The two commands: `make run` (install and run Tocsin) and `make test`
# (install test dependencies and pass the whole suite, lint and types included).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tocsin run

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m 'not slow' -x

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/scheduler.py --checks 1000 --interval 10 --duration 30
	$(BIN)/python bench/scheduler.py --checks 10000 --interval 10 --duration 30

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
