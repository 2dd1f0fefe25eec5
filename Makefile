PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7474
DATA ?= ./data

.PHONY: run test test-slow test-full test-postgres lint install dev clean docs console-shots bench bench-full bench-memory reliability

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: $(VENV)/.installed
	$(BIN)/stigmer serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

# Two worker processes (pytest-xdist): most tests wait on servers and sockets, so two halve the wall time.
# Each worker has its own PostgreSQL databases, data directories and ports. The tests marked `slow` (ten
# seconds or more each: fuzzing, crash loops, backups, kill -9 and replica runs) are `make test-slow`;
# `make test-full` runs both.
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

test-slow: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -n 2 -m slow

test-full: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -n 2

# Errors a linter finds without opinions: undefined names, unused imports, syntax.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check --select F,E9 src tests bench

# The API and end-to-end suites once more, on PostgreSQL (TEST_DATABASE_URL, default the local server).
test-postgres: $(VENV)/.dev-installed
	TEST_STORE=postgres $(BIN)/python -m pytest -q -n 2 tests/api tests/e2e

# The reliability harness at full size (make test runs it at a reduced size); see docs/reliability.md.
reliability: $(VENV)/.dev-installed
	RELIABILITY=full $(BIN)/python -m pytest -q tests/reliability

docs: $(VENV)/.installed
	$(BIN)/python -c "from stigmer.config import settings_markdown; open('docs/settings.md', 'w').write(settings_markdown())"

# The console's browser tests, writing their screenshots into docs/console/ (docs/console.md embeds them).
console-shots: $(VENV)/.dev-installed
	STIGMER_ARTIFACTS=docs $(BIN)/python -m pytest -q -n 0 tests/e2e/console

bench:
	$(MAKE) install
	$(BIN)/pip install -q -e '.[postgres,granian]'
	sh bench/setup.sh
	$(BIN)/python bench/run.py

bench-full:
	$(MAKE) install
	$(BIN)/pip install -q -e '.[postgres,granian]'
	sh bench/setup.sh
	$(BIN)/python bench/run.py --full

bench-memory: $(VENV)/.installed
	$(BIN)/python bench/memory.py --report bench/results/memory.md

clean:
	rm -rf $(VENV) data .pytest_cache
