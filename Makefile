# Two commands on a fresh machine: `make run` and `make test`.
# PYTHON picks the interpreter; any other than the default gets its own venv, so
# `make test PYTHON=python3.13` never touches .venv.
PYTHON ?= python3
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
BIN := $(VENV)/bin
HTMX := static/vendor/htmx.min.js
# The oldest and the newest supported Python: `make test-all` (and CI) runs the suite on both.
SUPPORTED_PYTHONS := 3.11 3.13

.PHONY: setup run test test-all test-granian lint format wheel bench clean

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
	$(BIN)/python --version
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# The suites that serve the shop over real HTTP, with every LiveStack's shop under Granian
# (the optional server) instead of Hypercorn: it is offered only while these pass on it.
GRANIAN_SUITES := tests/integration tests/e2e tests/admin/test_live_refunds.py \
	tests/admin/test_mail.py tests/reliability/test_browser.py \
	tests/reliability/test_concurrency.py tests/reliability/test_flows.py \
	tests/reliability/test_input.py tests/reliability/test_money.py \
	tests/reliability/test_pinned_version.py

test-granian: setup
	$(BIN)/pip install --quiet -e '.[test,granian]'
	STOREFRONT_TEST_SERVER=granian $(BIN)/pytest $(GRANIAN_SUITES)

# Each supported Python in its own venv; .ci/find-python fails loudly if one is missing.
# Every Python runs even when an earlier one fails, so one CI run shows both.
test-all:
	@status=0; for version in $(SUPPORTED_PYTHONS); do \
	  python=$$(.ci/find-python $$version) || exit 1; \
	  echo "== make test PYTHON=$$python"; \
	  $(MAKE) --no-print-directory test PYTHON=$$python || status=1; \
	done; exit $$status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The sdist and the wheel in dist/, templates, static files (htmx), schema and data inside.
wheel: setup
	$(BIN)/python -m build --no-isolation --outdir dist .

# Loopback-only load runs (about 13 minutes, under 15); writes bench/RESULTS.md.
# The scale-out rounds need HAProxy and PostgreSQL's server binaries.
bench: setup
	$(BIN)/pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y wrk)
	test -x /usr/sbin/haproxy || command -v haproxy >/dev/null \
		|| (apt-get update -qq && apt-get install -y haproxy)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| (apt-get update -qq && apt-get install -y postgresql)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .venv-* node_modules static/vendor .pytest_cache .ruff_cache test-artifacts \
		build dist
