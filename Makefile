# LUSWeb developer commands. `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where `make demo` serves: `make demo PORT=8080` when 8000 is taken.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup demo test lint typecheck contracts pytest bench serve worker clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

# The architecture's import contracts (pyproject.toml [tool.importlinter]; docs/architecture.md).
contracts: setup
	$(VENV)/bin/lint-imports --no-cache --no-logo

pytest: setup
	$(VENV)/bin/pytest

test: setup lint typecheck contracts pytest

demo: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_seed --first 2
	$(PY) manage.py demo_serve --addr $(HOST):$(PORT)

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .grimp_cache .import_linter_cache
