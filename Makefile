# Two commands for a new machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
ORBIS_HOME ?= $(CURDIR)/.orbis
export ORBIS_HOME
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit lint host venv image engine server stop bench clean

demo: venv image server
	./scripts/demo.sh

# The suite runs on TEST_WORKERS xdist workers (a file's tests stay on one worker), then the
# few tests that measure latency or CPU time run alone (marker `serial`); docs/testing.md.
TEST_WORKERS ?= 3
test: venv lint image engine
	export DOCKER_HOST=$$(./scripts/engine.sh start | tail -n 1) ORBIS_E2E_REQUIRED=1; \
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not serial" --durations=30 && \
	$(VENV)/bin/pytest -q -m serial

test-unit: venv
	$(VENV)/bin/pytest -q -m "not e2e"

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

host:
	./scripts/setup-host.sh

venv: host $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

image: host venv
	./images/node/build.sh
	./images/runner/build.sh  # the container recipes run in (docs/runner.md)

engine: host
	./scripts/engine.sh start

server: venv engine
	./scripts/server.sh start

stop:
	./scripts/server.sh stop
	./scripts/engine.sh stop

# Benchmarks print figures (no targets are asserted); each says what it measures.
bench: venv image engine
	DOCKER_HOST=$$(./scripts/engine.sh start | tail -n 1) $(VENV)/bin/python bench/deploy_local.py --compare-host
	$(VENV)/bin/python bench/parse_templates.py
	$(VENV)/bin/python bench/scale_sim.py
	command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null  # a C load generator
	DOCKER_HOST=$$(./scripts/engine.sh start | tail -n 1) $(VENV)/bin/python bench/api_load.py
	DOCKER_HOST=$$(./scripts/engine.sh start | tail -n 1) $(VENV)/bin/python bench/crash_resume.py 20

clean: stop
	rm -rf $(VENV) $(ORBIS_HOME)
