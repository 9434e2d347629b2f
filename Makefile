# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help deps lint test test-unit test-integration dev-up dev-down demo crds

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

deps: ## Install everything the tests and the dev environment need (idempotent)
	@bash hack/install-deps.sh

lint: deps ## Ruff (lint and format check) and mypy --strict
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint ## Lint, then every test: unit and integration against real parts
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: deps ## Unit tests only (nothing started)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: deps ## Integration tests only
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

crds: deps ## Regenerate the CRD from the API models
	$(PY) -m mcpgw_operator.crd --write

dev-up: deps ## Start the local control plane, Redis and the demo authorization server
	@$(PY) hack/dev.py up

dev-down: ## Stop exactly what dev-up started
	@if [ -x $(PY) ]; then $(PY) hack/dev.py down; else echo "[dev] nothing to stop"; fi

demo: dev-up ## Everything in one command: dev-up, a demo gateway authorized headlessly, Ready
	@$(PY) hack/demo.py
