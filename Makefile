# The two commands: `make run` (install and run Tocsin) and `make test`
# (install test dependencies and pass the whole suite, lint and types included).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean postgresql-server chromium monitoring-plugins

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tocsin run

test: $(STAMP) postgresql-server chromium monitoring-plugins
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m 'not slow' -x

# The store and database-check tests run against a throwaway PostgreSQL server
# (tests/postgres.py): install Debian's when its binaries are missing and we may.
postgresql-server:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL server binaries for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends postgresql >/dev/null; \
	fi

# The browser tests (tests/browser, marker `browser`) drive Debian's headless Chromium
# with Playwright; Playwright never downloads a browser of its own.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null; \
	fi

# The command check runs real Nagios plugins (check_dummy, check_disk, …) when
# Debian's monitoring-plugins-basic is there: install it when it is missing and we may.
monitoring-plugins:
	@if [ ! -x /usr/lib/nagios/plugins/check_dummy ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "installing Debian's monitoring-plugins-basic for the command check tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends monitoring-plugins-basic >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/scheduler.py --checks 1000 --interval 10 --duration 30
	$(BIN)/python bench/scheduler.py --checks 10000 --interval 10 --duration 30
	$(BIN)/python bench/web.py --checks 5000 --days 30

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
