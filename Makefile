# The developer's interface to Tiers. `make demo` and `make test` are the two that matter.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# The suite's own services: a database it creates (test_tiers) and Redis database 15.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tiers
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TEST_DATABASE_URL TEST_REDIS_URL

.PHONY: help demo serve faults load test lint typecheck migrations-check messages install install-dev browser-deps nginx-dep bench audit-deps clean

help:
	@echo "make demo   - install, migrate, seed and serve Tiers on 127.0.0.1:\$${PORT:-8000}"
	@echo "make test   - linters, type checks, migration check and the whole test suite"
	@echo "make bench  - run the benchmarks in bench/ and record their results"

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Tiers needs Python 3.11 or newer; set PYTHON=python3.11")'
	@echo "setup: creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@touch $@

$(VENV)/.installed: $(VENV)/.python-ok requirements.txt
	@echo "setup: installing requirements.txt"
	@$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	@echo "setup: installing requirements-dev.txt"
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
	@command -v msgfmt >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "setup: installing gettext (msgfmt compiles translations)" && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; } || \
		{ echo "setup: ERROR: msgfmt not found; install gettext" >&2; exit 1; }
	@$(PY) -c 'import weasyprint' 2>/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "setup: installing Pango (WeasyPrint renders the PDF reports with it)" && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; } || \
		echo "setup: WARNING: WeasyPrint cannot load Pango: PDF reports answer 503 until libpango-1.0-0 is installed" >&2

install-dev: install $(VENV)/.installed-dev

messages: install
	@for po in locale/*/LC_MESSAGES/*.po; do msgfmt --check -o "$${po%.po}.mo" "$$po"; done

demo:
	@deploy/demo.sh

# Production-like, no containers: DATABASE_URL, REDIS_URL, SECRET_KEY and TIERS_KEK (or TIERS_LOCAL_EPHEMERAL=1).
serve: install messages
	@deploy/local.sh

# Fault scenarios on a private PostgreSQL and Redis (docs/faults.md); one FAULT line per scenario.
faults: install-dev messages
	@echo "faults: redis_down, postgres_restart, worker_sigkill, receiver_down"
	@TIERS_FAULTS=1 $(PY) -m pytest tests/faults -q -p no:cacheprovider

# 60 s of mixed API load by locust (from bench/.venv-tools, requirements-bench.txt) against deploy/local.sh
# on a private PostgreSQL and Redis: tokens, record reads, decisions, consent changes (bench/README.md).
load: install-dev messages
	@$(PY) bench/bench_load.py

# The suite runs with production-shaped settings from tests/settings.py.
lint: install-dev
	@echo "lint: ruff check, ruff format --check"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: install-dev
	@echo "typecheck: mypy"
	@$(VENV)/bin/mypy

migrations-check: install-dev
	@echo "migrations: makemigrations --check"
	@DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run -v1

# Browser tests (tests/browser) drive Debian's Chromium through Playwright (requirements-dev.txt)
# and check each page with axe-core (package-lock.json). Playwright never downloads a browser here.
CHROMIUM := /usr/bin/chromium

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "setup: ERROR: npm not found; install Node.js 20 and npm (for axe-core)" >&2; exit 1; }
	@npm ci --silent --no-audit --no-fund
	@touch $@

browser-deps: install-dev node_modules/.installed
	@echo "browser-deps: Chromium at $(CHROMIUM) (apt-get install chromium if missing), Playwright, axe-core (npm ci)"
	@[ -x $(CHROMIUM) ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && [ -x $(CHROMIUM) ]; } || \
		{ echo "setup: ERROR: $(CHROMIUM) not found; install Debian's chromium package (as root: apt-get install chromium)" >&2; exit 1; }

# nginx checks deploy/nginx/tiers.conf (`nginx -t`, tests/deploy); Debian's nginx-light is enough.
nginx-dep:
	@command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null && command -v nginx >/dev/null; } || \
		{ echo "setup: ERROR: nginx not found; install Debian's nginx-light package (as root: apt-get install nginx-light)" >&2; exit 1; }

test: install-dev messages lint typecheck browser-deps nginx-dep
	@echo "services: checking PostgreSQL and Redis"
	@PY=$(PY) deploy/test-services.sh
	@$(MAKE) --no-print-directory migrations-check
	@echo "test: pytest"
	@$(PY) -m pytest
	@$(MAKE) --no-print-directory faults

bench: install-dev
	@$(PY) bench/run.py

# Known vulnerabilities in the pinned runtime dependencies (PyPI advisory data; needs the network).
# --strict: a dependency it could not check fails the audit. Not part of `make test`: its answer
# changes with each new advisory, not with our code.
PIP_AUDIT_VERSION := 2.10.1
audit-deps: install
	@$(PY) -m pip_audit --version >/dev/null 2>&1 || $(PY) -m pip install --quiet pip-audit==$(PIP_AUDIT_VERSION)
	@echo "audit-deps: pip-audit -r requirements.txt"
	@$(PY) -m pip_audit -r requirements.txt --strict --progress-spinner off

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache .pytest_cache node_modules
