# The two commands of the README: `make run` and `make test`; `make check` is the fast loop.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test check venv deps lint bench clean

# Tests that need nothing but our own server: unit, in-process HTTP, filesystem storage.
CHECK_MARKERS := not (s3 or clients or conformance or bench)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/registry serve $(if $(CONFIG),--config $(CONFIG))

deps: venv
	bash scripts/install-test-deps.sh

lint: venv
	$(VENV)/bin/ruff check registry tests testkit bench
	$(VENV)/bin/mypy registry

test: deps lint
	$(PY) -m pytest -W error $(PYTEST_ARGS)

check: lint
	$(PY) -m pytest -W error -m "$(CHECK_MARKERS)" $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) reports
