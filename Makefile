# ccpulse task runner: every target here is a command the README shows.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK := stack/stack.sh
export CCPULSE_STACK_DIR ?= $(CURDIR)/.stack

.PHONY: install stack-up stack-down stack-status test test-unit demo bench lint clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

## install: virtualenv, Python packages, Debian packages, Kafka jars (starts nothing)
install: $(VENV)/.installed
	bash stack/install.sh

## stack-up / stack-down: the local Kafka (KRaft), Redis and Prometheus on loopback
stack-up: install
	bash $(STACK) up

stack-down:
	bash $(STACK) down

stack-status:
	bash $(STACK) status

## test: install, start the stack if needed, run every test, stop what was started
test: install
	bash scripts/run-tests.sh

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not integration"

## demo: the whole product live — stack, worker, simulator, wallboard
demo: install
	bash scripts/demo.sh

## bench: throughput, freshness, replay, recovery and memory benchmarks
bench: install
	bash scripts/bench.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check stream sinks ccpulse tests
	$(VENV)/bin/mypy

clean: stack-down
	rm -rf $(CCPULSE_STACK_DIR)
