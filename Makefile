# ScalePayments platform: every target sets itself up (virtualenv + pinned dependencies).
#   make deploy   deploy to a local AWS emulator (ENV=dev|staging|prod|all, ENDPOINT=http://127.0.0.1:PORT)
#   make test     ruff, mypy, unit tests with coverage, policy compliance, integration tests on the emulator

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt services/requirements.txt | sha1sum | cut -c1-12)
ENV ?= dev
ENDPOINT ?=
STACK ?=
export PYTHONPATH := $(CURDIR)
export PULUMI_SKIP_UPDATE_CHECK := true

.PHONY: install lint unit services-test localplane-test compliance integration integration-only test deploy outputs bench clean config-reference

$(STAMP): requirements.txt requirements-dev.txt services/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check lib tools tap.py policy services tests
	$(VENV)/bin/mypy lib tools policy tap.py services

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit --cov=lib --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=90

services-test: $(STAMP)
	$(VENV)/bin/pytest services/tests -p no:cacheprovider -q

localplane-test: $(STAMP)
	$(VENV)/bin/pytest tests/localplane -p no:cacheprovider -q

compliance: $(STAMP)
	$(PY) -m tools.compliance

integration: $(STAMP)
	$(PY) -m tools.integration

integration-only: $(STAMP)
	$(VENV)/bin/pytest tests/integration -v -p no:cacheprovider

test: lint unit services-test localplane-test compliance integration

deploy: $(STAMP)
	$(PY) -m tools.deploy --env $(ENV) $(if $(ENDPOINT),--endpoint $(ENDPOINT))

outputs: $(STAMP)
	@test -n "$(STACK)" || { echo "usage: make outputs STACK=<pulumi stack>"; exit 2; }
	$(PY) -m tools.outputs --stack $(STACK)

config-reference: $(STAMP)
	$(PY) -m tools.config_reference

bench: $(STAMP)
	$(PY) -m tools.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage cfn-outputs
