# Two commands a newcomer needs: `make test` (everything CI runs) and, later, `make demo`.
# Only Python 3.10+ and make are assumed; everything else is installed into .venv.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

# The version matrix: the newest 2.11, the oldest supported 3.x, and the newest 3.1 (the last to
# draw the connection form from the hook's wtforms fields) and 3.2 (the first from conn-fields),
# each in its own venv, running the unit, integration and CLI tests (the browser and reliability
# suites run on AIRFLOW_VERSION above). The emulator's tests import no Airflow and run once, in
# `make test`; only its pytest plugin, which Airflow users load, runs on every version.
MATRIX ?= 2.11.2 3.0.6 3.1.8 3.2.2
MATRIX_TESTS ?= tests/unit tests/integration tests/cli tests/emulator/test_emulator_plugin.py
# Airflow's constraints files live on GitHub, which CI cannot reach; resolving as of shortly after
# each release (uv --exclude-newer) gives the same effect: the dependency versions it shipped with.
# common-compat is exempt: we need its newer shims, and it supports every Airflow from 2.11.
AS_OF_2.11.2 := 2026-03-31
AS_OF_3.0.6 := 2025-09-15
AS_OF_3.1.8 := 2026-03-28
AS_OF_3.2.2 := 2026-06-15
# The msads SDK (fidelity tests of the emulator) is exempt too: the emulator follows today's SDK.
as_of = $(if $(AS_OF_$(1)),--exclude-newer $(AS_OF_$(1)) \
	--exclude-newer-package apache-airflow-providers-common-compat=2100-01-01 --exclude-newer-package msads=2100-01-01)

.PHONY: venv lint typecheck unit test test-gcs test-azure browser test-package test-celery test-matrix test-postgres demo clean

# Debian's python3 has no venv module without the python3-venv package: install it when root with
# apt-get (as .ci/run installs what it needs), else say so.
$(UV):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && scripts/debian-deps.sh --package python3-venv \
	  && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e ".[test]" "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(STAMP)

venv: $(STAMP)

# gs:// destinations need the google provider (~125 packages, some of [test]'s moved back): a venv of
# its own for that one test file, so the main venv and the matrix stay as they are.
GCS_VENV := .venv-gcs
GCS_STAMP := $(GCS_VENV)/.installed-$(AIRFLOW_VERSION)
GCS_TESTS := tests/integration/test_destinations_gcs.py

$(GCS_STAMP): $(UV) pyproject.toml
	$(UV) venv --quiet --allow-existing --python $(BIN)/python $(GCS_VENV)
	$(UV) pip install --quiet --python $(GCS_VENV)/bin/python -e ".[test,test-gcs]" "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(GCS_STAMP)

test-gcs: $(GCS_STAMP)
	$(GCS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(GCS_TESTS)

# abfs:// (Azure Blob) destinations the same way: the azure provider in .venv-azure, and Microsoft's
# Azurite (npm; the blob service, started by the tests on loopback) installed inside that venv's
# folder. Azurite 3.35 is the newest that runs on Node.js 20 (3.36 wants 21+). Needs node and npm
# (installed from Debian when missing and root, as .ci/run does; Debian's npm brings nodejs).
AZURE_VENV := .venv-azure
AZURITE_VERSION := 3.35.0
AZURE_STAMP := $(AZURE_VENV)/.installed-$(AIRFLOW_VERSION)-azurite-$(AZURITE_VERSION)
AZURE_TESTS := tests/integration/test_destinations_azure.py

$(AZURE_STAMP): $(UV) pyproject.toml
	@command -v npm >/dev/null 2>&1 || scripts/debian-deps.sh --package npm
	$(UV) venv --quiet --allow-existing --python $(BIN)/python $(AZURE_VENV)
	$(UV) pip install --quiet --python $(AZURE_VENV)/bin/python -e ".[test,test-azure]" "apache-airflow==$(AIRFLOW_VERSION)"
	npm install --prefix $(AZURE_VENV)/azurite --no-save --no-audit --no-fund --loglevel=error "azurite@$(AZURITE_VERSION)"
	touch $(AZURE_STAMP)

test-azure: $(AZURE_STAMP)
	$(AZURE_VENV)/bin/python -m pytest -q -p no:cacheprovider $(AZURE_TESTS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest tests/unit -q

# Debian's chromium for the browser test, installed when root with apt-get (else the test says how).
browser:
	@scripts/debian-deps.sh

# The suite runs as two pytest sessions at once (scripts/run_side_by_side.py), each with its own
# metastore: the browser and reliability tests (Airflow servers and child processes, mostly
# waiting) beside the rest, which is followed by the gs:// and abfs:// tests in their own venvs and
# by the quick run of the benchmarks (moved there from the reliability session to even out the two:
# about 11 and 13 minutes before). The second session's output is printed when both are done;
# either failing fails the target.
BENCH_TESTS := tests/reliability/test_rel_benchmarks_quick.py
test: lint typecheck browser
	$(BIN)/python scripts/run_side_by_side.py \
	  "$(BIN)/python -m pytest -q --ignore=tests/package --ignore=tests/deployment --ignore=tests/browser --ignore=tests/reliability --ignore=$(GCS_TESTS) --ignore=$(AZURE_TESTS) && $(MAKE) --no-print-directory test-gcs && $(MAKE) --no-print-directory test-azure && $(BIN)/python -m pytest -q -p no:cacheprovider $(BENCH_TESTS)" \
	  --beside $(VENV)/test-browser-reliability.log "$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=$(BENCH_TESTS) tests/browser tests/reliability"

# The package as users install it: `uv build` (wheel + sdist), the wheel in a clean venv with
# Airflow, then `airflow providers list/hooks` and `msads-authorize --help` from that venv.
test-package: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/package

.venv-%/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --disable-pip-version-check uv
	.venv-$*/bin/uv pip install --quiet --python .venv-$*/bin/python $(call as_of,$*) -e ".[test]" "apache-airflow==$*"
	touch $@

test-matrix: $(foreach v,$(MATRIX),.venv-$(v)/.installed)
	@for v in $(MATRIX); do \
	  echo "== Airflow $$v: $(MATRIX_TESTS)"; \
	  .venv-$$v/bin/python -m pytest -q -p no:cacheprovider --ignore=$(GCS_TESTS) --ignore=$(AZURE_TESTS) $(MATRIX_TESTS) || exit 1; \
	done

# A CeleryExecutor deployment (Debian's redis-server and postgresql, started on loopback and removed
# after): two workers as two hosts share one token per connection (tests/deployment).
test-celery: venv
	$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/deployment

# The integration tests with PostgreSQL as the metastore (Debian's postgresql package; the tests
# start a throwaway server on loopback and remove it afterwards).
test-postgres: venv
	MSADS_TEST_METASTORE=postgres $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

demo: venv
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .venv-* .demo .pytest_cache .mypy_cache .ruff_cache
