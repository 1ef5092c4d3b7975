# Two commands a newcomer needs: `make test` (everything CI runs) and, later, `make demo`.
# Only Python 3.10+ and make are assumed; everything else is installed into .venv.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv lint typecheck unit test demo clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e ".[test]" "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest tests/unit -q

test: lint typecheck
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
