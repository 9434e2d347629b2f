# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

IMAGE ?= mcpgw-operator:dev
# Empty: build on a local Debian base made by hack/base-image.sh (for machines that cannot pull).
# With registry access: make image BASE_IMAGE=python:3.11-slim
BASE_IMAGE ?=

.PHONY: help deps lint test test-unit test-integration dev-up dev-down demo crds image

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

crds: deps ## Regenerate the CRD (and the chart's copy, and the README's API reference)
	$(PY) -m mcpgw_operator.crd --write
	$(PY) hack/readme_api.py --write

dev-up: deps ## Start the local control plane, Redis and the demo authorization server
	@$(PY) hack/dev.py up

dev-down: ## Stop exactly what dev-up started
	@if [ -x $(PY) ]; then $(PY) hack/dev.py down; else echo "[dev] nothing to stop"; fi

demo: dev-up ## Everything in one command: dev-up, a demo gateway authorized headlessly, Ready
	@$(PY) hack/demo.py

image: ## Build the container image (IMAGE=name:tag; BASE_IMAGE=python:3.11-slim for the public base)
	@bash hack/docker-engine.sh
	@$(if $(BASE_IMAGE),true,bash hack/base-image.sh)
	docker build --network host --build-arg BASE_IMAGE=$(or $(BASE_IMAGE),mcpgw-base:bookworm) \
	  --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) -t $(IMAGE) .
	@docker image inspect --format '{{.Size}}' $(IMAGE) | numfmt --to=iec | sed 's/^/[image] $(IMAGE): /'
