# The two fresh-machine commands are `make demo` and `make test` (see README.md).
# Both install what they need (scripts/bootstrap.sh) and bring the lab up (python -m lab up).
SHELL := /bin/bash
PY := .venv/bin/python
LAB_ENV := /var/lib/runbook-lab/lab.env
# Secrets of the lab (the backup passphrase) come from its env file, as they would from a vault.
WITH_LAB_ENV := set -a; [ -f $(LAB_ENV) ] && . $(LAB_ENV); set +a;

.PHONY: demo test unit deps lab-up lab-heal lab-down lab-status lint daily smoke incident bench tox-check

deps:
	@scripts/bootstrap.sh

lab-up: deps
	@$(PY) -m lab up

# CI runs on a machine a session may have left with a fault injected or a container stopped by
# hand: `make test` starts from green whatever it finds (heal also brings a missing lab up).
lab-heal: deps
	@$(PY) -m lab heal

lab-down: deps
	@$(PY) -m lab down

lab-status: deps
	@$(PY) -m lab status

## demo: bring the lab up and run the daily checklist against it; prints where the reports are.
demo: lab-up
	@started=$$(date +%s%N); $(WITH_LAB_ENV) $(PY) -m pytest -m daily; status=$$?; \
	  tenths=$$(( ($$(date +%s%N) - started) / 100000000 )); \
	  echo; echo "Wall time   : $$((tenths / 10)).$$((tenths % 10)) s (pytest -m daily, every system of the lab)"; \
	  echo "HTML report : $$(readlink -f reports/latest)/report.html"; \
	  echo "JUnit       : $$(readlink -f reports/latest)/junit.xml"; \
	  echo "Summary     : $$(readlink -f reports/latest)/summary.json"; \
	  exit $$status

daily smoke incident: lab-up
	@$(WITH_LAB_ENV) $(PY) -m pytest -m $@

# The selftests under pytest-xdist: each lab system's tests on one worker, in order, systems side
# by side, every other module a unit of its own (selftests/conftest.py). The workers mostly wait
# on the lab, so there are more of them than cores. pytest's exit 5 (nothing collected) fails.
WORKERS ?= 6
SELFTESTS := $(PY) -m pytest -c selftests/pytest.ini selftests -q -p xdist --dist loadgroup

## test: the project's own tests (lint, unit tests, lab fault cycles, report rendering).
test: lab-heal lint
	@$(WITH_LAB_ENV) $(SELFTESTS) -n $(WORKERS)

## unit: the fast selftests: no lab, nothing marked slow (whole runs in subprocesses, real
## daemons, deadlines waited out: make test runs those). Under a minute on 2 cores.
unit: deps
	@$(SELFTESTS) -n $(UNIT_WORKERS) -m "not lab and not slow"
UNIT_WORKERS ?= 4

lint: deps
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

## tox-check: `tox -e daily` and `tox -e smoke` against the healthy lab (tox from PyPI; not in make test).
## tox lives in a venv of its own, so that its dependencies never move the project's pins.
TOX_VENV ?= /var/tmp/runbook-tox
tox-check: lab-heal
	@[ -x $(TOX_VENV)/bin/tox ] || { python3 -m venv $(TOX_VENV) && $(TOX_VENV)/bin/pip install -q 'tox>=4'; }
	@$(WITH_LAB_ENV) RUNBOOK_TOX_CHECK=1 RUNBOOK_TOX=$(TOX_VENV)/bin/tox $(PY) -m pytest -c selftests/pytest.ini selftests/test_tox_envs.py -q

bench: lab-up
	@$(WITH_LAB_ENV) for b in bench/*.py; do $(PY) $$b; done
