# Every target installs what it needs from pyproject.toml + uv.lock first, so each works on a
# fresh clone. The interpreter is Python 3.12 (the Lambda runtime) when pyenv has it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
PYTHON_FOR_VENV ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null) $(shell command -v python3))
UV := python3 -m uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync
PORT ?= 8000

.PHONY: help setup dev test test-unit test-integration test-e2e lint typecheck check bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python "$(PYTHON_FOR_VENV)"
	@touch $@

setup: $(VENV)/.synced ## Create .venv from uv.lock (Python 3.12 when available)

dev: setup ## Run the local server on http://127.0.0.1:$PORT (embedded SQLite unless DATABASE_URL)
	PORT=$(PORT) $(RUN) python dev/devserver.py

test: setup ## Run the whole test suite against PostgreSQL (started if it is down)
	@bash scripts/ensure-postgres.sh
	$(RUN) pytest

test-unit: setup ## Unit tests only (no database)
	$(RUN) pytest tests/unit

test-integration: setup ## Integration tests (PostgreSQL and SQLite)
	@bash scripts/ensure-postgres.sh
	$(RUN) pytest tests/integration

test-e2e: setup ## End-to-end tests over real HTTP
	@bash scripts/ensure-postgres.sh
	$(RUN) pytest tests/e2e

lint: setup ## ruff check + format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy
	$(RUN) mypy

check: lint typecheck test ## Everything CI runs before deploying

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam data
