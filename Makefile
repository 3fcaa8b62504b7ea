# Chimera — every target sets up what it needs (virtualenv, services, database).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SOAK_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv services browser db test lint typecheck check fmt docs up down status demo bench soak clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# requirements-dev.txt: the runtime pins (requirements.txt, all the image gets) plus the
# test and lint tools.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP)  ## Create .venv and install the pinned requirements and test tools

services:  ## Make sure Redis and PostgreSQL answer (start them if stopped)
	@scripts/ensure-services.sh

browser:  ## Install headless Chromium (Debian's package) for the browser tests
	@scripts/ensure-browser.sh

db: venv services  ## Create and migrate the database
	$(PY) -m chimera db upgrade

test: venv services browser db  ## Run the test suite against real Redis, Postgres and Kafka
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv  ## mypy, strict on chimera/, tasks/, web/, bridges/, llmsim/ and soak/
	$(VENV)/bin/mypy

check: lint typecheck test  ## Everything CI runs

fmt: venv  ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: venv  ## Regenerate docs/settings.md from the settings object
	$(PY) -m chimera.settings_doc > docs/settings.md.new && mv docs/settings.md.new docs/settings.md

up: venv services  ## Start the local stack in the foreground (Ctrl-C stops it)
	$(PY) -m chimera stack up --attach

down: venv  ## Stop the local stack
	$(PY) -m chimera stack down

status: venv  ## One line per component
	$(PY) -m chimera stack status

demo: venv services  ## Bring the stack up, run sample conversations and analyses, show the results
	$(PY) -m chimera demo

bench: venv services  ## Benchmarks, under 10 min (bench/results.json, docs/performance.md; BENCH_ARGS="--help")
	PYTHONPATH=. $(PY) bench/run.py $(BENCH_ARGS)

soak: venv services  ## Soak the local stack: thousands of events, faults, a report (SOAK_ARGS="--help")
	$(PY) -m soak.run $(SOAK_ARGS)

clean:  ## Remove the virtualenv, caches and local state
	rm -rf $(VENV) .chimera .mypy_cache .ruff_cache *.egg-info
