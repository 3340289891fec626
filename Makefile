# The two commands in the README: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint format bench local openapi clean

$(BIN)/sagewatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/sagewatch
	$(BIN)/sagewatch demo

test: $(BIN)/sagewatch
	$(BIN)/python -m pytest

# The unit and integration tiers without the fuzzing ones: about a minute.
test-fast: $(BIN)/sagewatch
	$(BIN)/python -m pytest -q -m "(unit or integration) and not fuzz"

lint: $(BIN)/sagewatch
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_import_contract.py

format: $(BIN)/sagewatch
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(BIN)/sagewatch
	$(BIN)/python bench/capture_parse.py

local: $(BIN)/sagewatch
	$(BIN)/sagewatch local

openapi: $(BIN)/sagewatch
	$(BIN)/sagewatch openapi > docs/openapi.json

clean:
	rm -rf $(VENV) .sagewatch .pytest_cache
