# Two commands matter: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit test-integration test-e2e lint bench bench-api bench-notify bench-booking bench-streams bench-tongban clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "citypass needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/citypass serve --demo

test: install lint
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q tests/integration

test-e2e: install
	$(BIN)/pytest -q tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy domain backend miniapp_api projections notifications

bench: install
	$(BIN)/python bench/store.py

bench-api: install
	$(BIN)/python bench/api.py

bench-notify: install
	$(BIN)/python bench/notify.py

bench-booking: install
	$(BIN)/python bench/booking.py

bench-streams: install
	$(BIN)/python bench/streams.py

bench-tongban: install
	$(BIN)/python bench/tongban.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
