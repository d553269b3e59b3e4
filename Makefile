# GoGlobal Referral Network. `make run` starts everything; `make test` installs everything and runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PROMTOOL := $(TOOLS)/bin/promtool
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help preflight preflight-run install run test test-chaos test-fast test-hostile test-unit test-service lint format bench docs browser promtool infra-up infra-down infra-status clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required ($(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml contract/pyproject.toml shared/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: $(VENV)/.synced  ## create .venv with the pinned dependencies (uv.lock)

# Needs only python3 (and Java 17 + Maven for Kafka): nx-27017 installs into a venv of its own under .state/.
infra-up:  ## start Kafka (KRaft) and nx-27017 (MongoDB wire protocol on SQLite) here, or reuse them
	@$(PYTHON) deploy/local/infra.py up

infra-down:  ## stop Kafka and nx-27017 (make run and make test leave them running); then rm -rf .state removes their data
	@$(PYTHON) deploy/local/infra.py down

infra-status:  ## is Kafka answering metadata requests, and nx-27017 pings?
	@$(PYTHON) deploy/local/infra.py status

# Ports: GOGLOBAL_KAFKA_PORT (9092; the controller on the next), GOGLOBAL_MONGO_PORT (27017), GOGLOBAL_INTAKE_PORT
# (8000), GOGLOBAL_MATCHING_PORT (8001), GOGLOBAL_NOTIFICATIONS_PORT (8002): checked before anything is installed.
preflight:  ## are the infrastructure's ports free (or held by this stack already)?
	@$(PYTHON) deploy/local/infra.py preflight

preflight-run:  ## are the ports make run binds free: the infrastructure's (unless it already runs) and the services'?
	@$(PYTHON) deploy/local/infra.py preflight services

run:  ## start the infrastructure, the three services and the demo partners; Ctrl-C stops the services (make infra-down: the infrastructure)
	@$(MAKE) --no-print-directory preflight-run
	@$(MAKE) --no-print-directory install infra-up
	@$(PY) deploy/local/run.py

browser:  ## Debian's chromium and chromium-driver, for the console's browser test
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing chromium and chromium-driver from Debian's packages..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver) \
	    || echo "WARNING: could not install chromium; the browser test will be skipped"; \
	fi

# Only the promtool binary, unpacked from Debian's prometheus package: installing the package would start a server.
promtool:  ## Debian's promtool in .tools/bin (no Prometheus server), for the alert-rule tests
	@if [ ! -x $(PROMTOOL) ]; then \
	  echo "unpacking promtool from Debian's prometheus package into $(TOOLS)/bin..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  tmp=$$(mktemp -d) && \
	  ( (cd $$tmp && apt-get download -qq prometheus) \
	    || ($$SUDO apt-get update -qq && cd $$tmp && apt-get download -qq prometheus) ) \
	  && dpkg -x $$tmp/prometheus_*.deb $$tmp/root && mkdir -p $(TOOLS)/bin \
	  && install -m 0755 $$tmp/root/usr/bin/promtool $(PROMTOOL) \
	  || echo "WARNING: could not unpack promtool; the alert-rule tests will be skipped"; \
	  rm -rf $$tmp; \
	fi

# The chaos scenarios' full form: 500 requests each at 10/s, 30 s outages, 60 s failing webhooks.
FULL_CHAOS := GOGLOBAL_CHAOS_REQUESTS=500 GOGLOBAL_CHAOS_RATE=10 GOGLOBAL_CHAOS_FAULT_S=30 GOGLOBAL_CHAOS_SETTLE_S=900
CHAOS ?= short

# The tiers that need no infrastructure; tests/service once it exists.
FAST_TIERS := tests/unit tests/deploy $(wildcard tests/service)

test: preflight install infra-up browser promtool  ## install everything, run the whole suite and print its coverage by package (CHAOS=full: chaos in its full form, as CI); Kafka and nx-27017 keep running
	$(if $(filter full,$(CHAOS)),$(FULL_CHAOS)) $(PY) -m pytest -q --cov --cov-report=
	$(PY) -m tools.coverage_report

test-fast: install promtool  ## the tiers that need no infrastructure (unit, deploy, service): about a minute
	$(PY) -m pytest -q $(FAST_TIERS)

test-hostile: preflight install infra-up  ## schemathesis over the OpenAPI document, fuzzed Kafka records, webhook targets
	$(PY) -m pytest -q tests/hostile

test-chaos: preflight install infra-up  ## only the chaos scenarios, in their full form
	$(FULL_CHAOS) $(PY) -m pytest -q -s tests/chaos

test-unit: install  ## only the unit tier (no infrastructure)
	$(PY) -m pytest -q tests/unit

test-service: install  ## every service's use cases (and intake's HTTP app) in process on in-memory fakes (no infrastructure)
	$(PY) -m pytest -q tests/service

docs: install  ## regenerate docs/asyncapi.yaml and docs/schemas/ from the event contract (a test checks drift)
	$(PY) -m tools.asyncapi --out docs

bench: preflight install infra-up  ## benchmarks: print ratios against baselines measured in the same run, write docs/benchmarks.md
	$(PY) -m bench.run_all

lint: install  ## ruff, mypy --strict and the layering contracts (lint-imports, in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install  ## ruff's fixes and formatting, in place
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the virtual environments (.state, with Kafka/nx-27017 data, stays: make infra-down, then rm -rf .state)
	rm -rf $(VENV) $(TOOLS)
