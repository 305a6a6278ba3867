# Every target installs what it needs from uv.lock first; nothing has to be set up by hand.
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
export MLOPS_HOME ?= $(CURDIR)/.mlops
export UV_PYTHON_DOWNLOADS := never
export GX_ANALYTICS_ENABLED := false
# PYTHONDONTWRITEBYTECODE emptied for the tests: pytest keeps its assertion-rewritten test modules, and Python the
# project's own modules, as bytecode in __pycache__ (git-ignored) instead of compiling them again in every run and
# every subprocess (about 8 s of a run of the fast layer).
PYTEST := PYTHONDONTWRITEBYTECODE= $(VENV_PY) -m pytest
# pytest exits 5 when a selection holds no test; that is not a failure for the second backend pass.
PYTEST_OK_IF_EMPTY = ; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

.PHONY: install test test-fast bench demo up lint clean

install: $(VENV)/.installed

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process would otherwise
# compile Airflow, MLflow and friends from source on import: seconds per process, every test and DAG parse.
$(VENV)/.installed: uv.lock pyproject.toml Makefile
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv sync --locked --compile-bytecode --python $(PYTHON)
	@touch $@

# The whole suite on a SQLite metadata DB, then the Airflow-database tests again on a fresh PostgreSQL DB.
test: install
	@scripts/ensure_chromium.sh
	$(PYTEST) tests --durations=25
	MLOPS_METADATA_BACKEND=postgres $(PYTEST) tests -m airflow_db --durations=10 $(PYTEST_OK_IF_EMPTY)

# The fast layer: every test that needs neither the metadata database nor the production-shape stack, nor
# data large enough to measure memory bounds, nor seconds of fresh interpreters for one behaviour.
test-fast: install
	$(PYTEST) tests -m "not airflow_db and not system and not scale and not slow"

# Formatting, lint rules and types (configured in pyproject.toml).
lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Every benchmark, or one or more by name: make bench NAME=drift (NAME="drift fleet").
# The project's own modules compiled first, as an installed wheel's are: with PYTHONDONTWRITEBYTECODE set, every
# fresh interpreter a benchmark times would otherwise compile them from source on import, inside the timing.
bench: install
	$(VENV_PY) -m compileall -q src
	$(VENV_PY) benchmarks/run.py $(NAME)

demo: install
	$(VENV_PY) scripts/demo.py

# Airflow standalone with the reference DAGs and the provider, plus the MLflow UI; Ctrl-C stops both.
up: install
	scripts/up.sh

clean:
	rm -rf $(VENV) .mlops .pytest_cache
