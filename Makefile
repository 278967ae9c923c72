# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CODEX_STAMP := node_modules/.installed
CLIENTS_STAMP := tests/clients/vercel/node_modules/.installed

.PHONY: run test lint format setup clean bench soak

run: $(RUNTIME_STAMP) $(CODEX_STAMP)
	$(PY) -m app serve

test: $(DEV_STAMP) $(CODEX_STAMP) $(CLIENTS_STAMP)
	$(PY) -m pytest

soak: $(DEV_STAMP) $(CODEX_STAMP)
	RELIABILITY_SCALE=10 $(PY) -m pytest tests/reliability

bench: $(DEV_STAMP) $(CODEX_STAMP)
	$(PY) -m bench.engines

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format app tests bench
	$(VENV)/bin/ruff check --fix app tests bench

setup: $(DEV_STAMP) $(CODEX_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

$(CODEX_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(CLIENTS_STAMP): tests/clients/vercel/package.json tests/clients/vercel/package-lock.json
	npm ci --prefix tests/clients/vercel --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) node_modules tests/clients/vercel/node_modules .pytest_cache .ruff_cache
