# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CODEX_STAMP := node_modules/.installed
CLIENTS_STAMP := tests/clients/vercel/node_modules/.installed

.PHONY: run install test lint format setup clean bench soak docker-test test-services e2e-openwebui

run: install
	$(PY) -m app serve

# What `make run` installs, and all the server needs: requirements.txt and the pinned Codex, no dev requirements.
install: $(RUNTIME_STAMP) $(CODEX_STAMP)

test: $(DEV_STAMP) $(CODEX_STAMP) test-services $(CLIENTS_STAMP)
	$(PY) -m pytest

soak: $(DEV_STAMP) $(CODEX_STAMP)
	RELIABILITY_SCALE=10 $(PY) -m pytest tests/reliability

# Builds the image and runs it against the fake provider (needs a Docker engine; not part of `make test`).
docker-test: $(DEV_STAMP)
	$(PY) -m tests.docker.run

bench: $(DEV_STAMP) $(CODEX_STAMP)
	$(PY) -m bench.engines

# OpenWebUI in headless Chromium through the gateway (not part of `make test`): .e2e/ holds its installs and output
E2E := .e2e
OPENWEBUI_STAMP := $(E2E)/openwebui/.installed
PLAYWRIGHT_STAMP := $(E2E)/playwright/.installed

e2e-openwebui: $(DEV_STAMP) $(CODEX_STAMP) $(OPENWEBUI_STAMP) $(PLAYWRIGHT_STAMP)
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	PYTHONPATH=$(E2E)/playwright $(PY) -m tests.e2e.openwebui

$(OPENWEBUI_STAMP): tests/e2e/requirements-openwebui.txt
	$(PYTHON) -m venv $(E2E)/openwebui
	$(E2E)/openwebui/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(PLAYWRIGHT_STAMP): tests/e2e/requirements-browser.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade --target $(E2E)/playwright -r $<
	touch $@

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench
	$(VENV)/bin/mypy  # app/ and the FakeEngine, as [tool.mypy] in pyproject.toml sets

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

# The tests start real servers: Redis (tests/redis_server.py) and the scale recipe's HAProxy; Debian's packages,
# installed when missing.
APT := DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get -o DPkg::Lock::Timeout=300
TEST_PACKAGES = $(if $(shell command -v redis-server || command -v valkey-server),,redis-server) \
	$(if $(shell command -v haproxy),,haproxy)
test-services:
	@test -z "$(strip $(TEST_PACKAGES))" || $(APT) install -y --no-install-recommends $(TEST_PACKAGES) || \
	  { $(APT) update -qq && $(APT) install -y --no-install-recommends $(TEST_PACKAGES); }

$(CLIENTS_STAMP): tests/clients/vercel/package.json tests/clients/vercel/package-lock.json
	npm ci --prefix tests/clients/vercel --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) node_modules tests/clients/vercel/node_modules .pytest_cache .ruff_cache
