# Two commands on a fresh machine:  `make run`  and  `make test`.  See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres lint security venv browser nginx bench clean-data help

help:
	@echo "make run    - set up and serve the portal on http://127.0.0.1:8000 (SQLite, ./var)"
	@echo "make test   - set up and run lint, type checks and the whole test suite"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/portal init
	exec $(BIN)/portal serve

# Chromium for the browser journeys comes from Debian's package (Playwright's download
# does not work offline); installed only when missing and when we are allowed to.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped (apt-get install chromium)"; fi; }

# nginx for the reverse-proxy test (tests/deploy): Debian's nginx-light (+ envsubst and openssl
# for the proxy's entrypoint script), installed only when
# missing and when we are allowed to; on CI (CI=true) that test fails without it.
nginx:
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && \
	  command -v envsubst >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq nginx-light gettext-base openssl >/dev/null; \
	  else echo "nginx missing: the proxy test will be skipped (apt-get install nginx-light)"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# bandit against the reviewed baseline and pip-audit (see .ci/security for the rules)
security: $(STAMP)
	BIN=$(BIN) .ci/security

# The whole suite on the embedded default (SQLite); set PORTAL_TEST_DATABASE_URL to run the
# database tests on PostgreSQL instead (see .ci/run).
test: $(STAMP) browser nginx lint security
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-postgres: $(STAMP)
	PORTAL_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q --ignore=tests/crypto --ignore=tests/browser $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py --small

clean-data:
	rm -rf var
