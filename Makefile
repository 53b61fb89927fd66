# ScalePayments platform: every target sets itself up (virtualenv + pinned dependencies).
#   make deploy   deploy to a local AWS emulator (ENV=dev|staging|prod|all, ENDPOINT=http://127.0.0.1:PORT)
#   make test     lint, unit tests with coverage, service and data-plane tests, policy compliance, integration
# `make help` lists every target with one line each (the "## " comments below).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt services/requirements.txt | sha1sum | cut -c1-12)
ENV ?= dev
ENDPOINT ?=
STACK ?=
CONFIG ?=
ACCOUNT_MODEL ?= dedicated
REPLACE ?=
UNPROTECT ?=
HEALTH_CHECK_INTERVAL ?=
FORMAT ?=
A ?= staging
B ?= prod
CONFIG_A ?=
CONFIG_B ?=
USAGE ?=
export PYTHONPATH := $(CURDIR)
export PULUMI_SKIP_UPDATE_CHECK := true

# Per-run configuration (CONFIG="minTasks=3 maxTasks=6") and the switches of deploy/destroy, as CLI arguments.
DEPLOY_ARGS = --env $(ENV) $(if $(ENDPOINT),--endpoint $(ENDPOINT)) $(foreach pair,$(CONFIG),--config $(pair)) \
	--account-model $(ACCOUNT_MODEL) $(if $(REPLACE),--replace) $(if $(UNPROTECT),--unprotect) \
	$(if $(HEALTH_CHECK_INTERVAL),--health-check-interval $(HEALTH_CHECK_INTERVAL))

.PHONY: help install lint unit services-test localplane-test compliance integration integration-only test \
	deploy run plan destroy outputs bench clean config-reference preview diff cost diagram mutants

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 28

$(STAMP): requirements.txt requirements-dev.txt services/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

# Node.js tooling (package.json): Graphviz compiled to WebAssembly lays out `make diagram` where no `dot`
# is installed. Without npm the diagram tests skip and `make diagram` says what to install.
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: make diagram needs Node.js 18+ with npm, or Graphviz (dot)"; fi

install: $(STAMP) $(NODE_STAMP) ## create .venv and install the pinned dependencies (and the npm ones)
	@true

lint: $(STAMP) ## ruff (lint + format) and mypy over the whole code base
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check lib tools tap.py policy services tests
	$(VENV)/bin/mypy lib tools policy tap.py services

unit: $(STAMP) $(NODE_STAMP) ## unit tests of the program under Pulumi mocks, the emulator and the tools (lib/ coverage >= 95%)
	$(VENV)/bin/pytest tests/unit -n 2 --dist loadfile --cov=lib --cov-branch --cov-report=term-missing:skip-covered \
		--cov-fail-under=95

services-test: $(STAMP) ## the reference services' tests (real PostgreSQL and Valkey on 127.0.0.1)
	$(VENV)/bin/pytest services/tests -p no:cacheprovider -q

localplane-test: $(STAMP) ## the local data plane's tests (servers, IAM-auth fronts, front door, Service Connect)
	$(VENV)/bin/pytest tests/localplane -p no:cacheprovider -q

compliance: $(STAMP) ## the PCI DSS policy pack over every environment (fails on a mandatory violation)
	$(PY) -m tools.compliance

integration: $(STAMP) ## start an emulator, deploy dev/staging/prod (one shared account), run the scenarios, stop it
	$(PY) -m tools.integration

integration-only: $(STAMP) ## the scenarios against what is deployed now (cfn-outputs/: make deploy or make outputs)
	$(VENV)/bin/pytest tests/integration -v -p no:cacheprovider

test: lint unit services-test localplane-test compliance integration ## everything CI runs

deploy: $(STAMP) ## deploy ENV and run it locally until Ctrl-C (ENDPOINT=...: deploy there and exit; CONFIG="k=v ...")
	$(PY) -m tools.deploy up $(DEPLOY_ARGS)

run: $(STAMP) ## run the platform deployed in ENV at ENDPOINT (data stores, tasks, front door) until Ctrl-C
	$(PY) -m tools.deploy run $(DEPLOY_ARGS)

plan: $(STAMP) ## what a deploy would change in ENV at ENDPOINT (create/update/replace/delete), touching nothing
	$(PY) -m tools.deploy plan $(DEPLOY_ARGS)

destroy: $(STAMP) ## delete ENV's resources from ENDPOINT in reverse dependency order (UNPROTECT=1 for protected ones)
	$(PY) -m tools.deploy destroy $(DEPLOY_ARGS)

outputs: $(STAMP) ## write cfn-outputs/ from a real `pulumi stack output --json` (STACK=...)
	@test -n "$(STACK)" || { echo "usage: make outputs STACK=<pulumi stack>"; exit 2; }
	$(PY) -m tools.outputs --stack $(STACK)

config-reference: $(STAMP) ## regenerate Pulumi.yaml's config block and the README table from lib/config.py
	$(PY) -m tools.config_reference

preview: $(STAMP) ## offline plan of ENV grouped by component (FORMAT=json, CONFIG="k=v ...")
	$(PY) -m tools.insight.preview --env $(ENV) $(if $(FORMAT),--format $(FORMAT)) $(foreach pair,$(CONFIG),--config $(pair))

diff: $(STAMP) ## settings and resources that differ between A and B, as Markdown (CONFIG_A=..., CONFIG_B=...)
	$(PY) -m tools.insight.diff --a $(A) --b $(B) $(if $(FORMAT),--format $(FORMAT)) $(foreach pair,$(CONFIG),--config $(pair)) \
		$(foreach pair,$(CONFIG_A),--config-a $(pair)) $(foreach pair,$(CONFIG_B),--config-b $(pair))

cost: $(STAMP) ## monthly cost of ENV (or ENV=all) at min and max scale (USAGE="key=value ...", FORMAT=json)
	$(PY) -m tools.insight.cost --env $(ENV) $(if $(FORMAT),--format $(FORMAT)) $(foreach pair,$(CONFIG),--config $(pair)) \
		$(foreach pair,$(USAGE),--usage $(pair))

diagram: $(STAMP) $(NODE_STAMP) ## docs/architecture-ENV.svg and .png from the resource graph (ENV=prod: the README's)
	$(PY) -m tools.insight.diagram --env $(ENV) $(foreach pair,$(CONFIG),--config $(pair))

bench: $(STAMP) ## speed figures: program evaluation, emulator deployment
	$(PY) -m tools.bench

# Not part of `make test`: about 40 minutes for the 56 mutants. ONLY=id,id runs some; SUITES=unit runs one suite.
mutants: $(STAMP) $(NODE_STAMP) ## mutation score: each of tools/mutants.py's bugs against the unit and integration suites
	$(PY) -m tools.mutants $(if $(ONLY),--only $(ONLY)) $(if $(SUITES),--suites $(SUITES))

clean: ## remove the virtualenv, caches and generated outputs
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage cfn-outputs .deploy node_modules
