# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HTMX := static/vendor/htmx.min.js

.PHONY: setup run test lint format bench clean

setup: $(VENV)/.installed $(HTMX)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

run: setup
	$(BIN)/storefront serve

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Loopback-only load runs (about 15 minutes); writes bench/RESULTS.md.
bench: setup
	$(BIN)/pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y wrk)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .ruff_cache test-artifacts
