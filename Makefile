# Schakel — `make run` starts the hub on embedded defaults, `make test` runs every check.
# Both bootstrap a local .venv from scratch; nothing needs to be installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run replay test lint typecheck pytest fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: setup
	$(BIN)/schakel up --demo

replay: setup
	$(BIN)/schakel replay --input examples/signals.jsonl --out out/replay

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

# the broker- and database-free subset, for a quick loop while editing
fast: setup
	$(BIN)/pytest -m "not kafka and not postgres"

bench: setup
	$(BIN)/python bench/core.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) out var .pytest_cache .mypy_cache .ruff_cache
