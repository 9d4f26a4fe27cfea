# Two commands on a fresh machine:  `make run`  and  `make test`.  See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two stamps: the runtime install (`make run`) and the one with the test tools (`make test`,
# a superset, so it satisfies `make run` too). Both go stale when the build inputs change.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
BUILD_INPUTS := pyproject.toml setup.py
# The checkout's compiled catalogues (a build step; the server only reads them).
MO := $(patsubst %.po,%.mo,$(wildcard portal/locale/*/LC_MESSAGES/messages.po))
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=
# `make test` measures line and branch coverage and fails under this floor (percent of lines
# and branches of crypto/, portal/, investigator/; the CLI's child processes included; the
# PostgreSQL run of .ci/run, without the crypto and browser tests, sets its own lower floor)
COV_FLOOR ?= 90
COV_ARGS := --cov --cov-report=term:skip-covered --cov-fail-under=$(COV_FLOOR)

.PHONY: run test test-sqlite test-postgres lint security venv browser nginx bench clean-data help

help:
	@echo "make run    - set up and serve the portal on http://127.0.0.1:8000 (SQLite, ./var)"
	@echo "make test   - set up and run lint, type checks and the whole test suite"

$(RUN_STAMP): $(BUILD_INPUTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $(RUN_STAMP)

$(TEST_STAMP): $(BUILD_INPUTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(RUN_STAMP) $(TEST_STAMP)

%.mo: %.po | $(RUN_STAMP)
	$(BIN)/python -m portal.kernel.i18n compile

venv: $(TEST_STAMP)

run: $(RUN_STAMP) $(MO)
	$(BIN)/portal init
	exec $(BIN)/portal serve

# Chromium for the browser journeys comes from Debian's package (Playwright's download
# does not work offline), with a Chinese font so the design screenshots show the zh_CN pages
# (tests/browser/test_workspace_design.py); installed only when missing and when we may.
browser:
	@{ command -v chromium && fc-list :lang=zh | grep -q .; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	  else echo "chromium or a Chinese font missing (apt-get install chromium fonts-wqy-microhei)"; fi; }

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

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# bandit against the reviewed baseline and pip-audit (see .ci/security for the rules)
security: $(TEST_STAMP)
	BIN=$(BIN) .ci/security

# The whole suite on the embedded default (SQLite); set PORTAL_TEST_DATABASE_URL to run the
# database tests on PostgreSQL instead (see .ci/run).
test: $(TEST_STAMP) $(MO) browser nginx lint security
	$(BIN)/python -m pytest -q $(COV_ARGS) $(PYTEST_ARGS)

test-postgres: $(TEST_STAMP) $(MO)
	PORTAL_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q --ignore=tests/crypto --ignore=tests/browser $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(BIN)/python bench/run_all.py --small

clean-data:
	rm -rf var
