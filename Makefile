# Schakel — `make run` starts the hub on embedded defaults, `make test` runs every check.
# Both bootstrap a local .venv from scratch; nothing needs to be installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup browser run replay test lint typecheck pytest fast bench bench-quick soak fuzz clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# the browser tests (pytest -m browser) drive Debian's chromium through Playwright; install it
# from apt when missing (as root, or with sudo)
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

run: setup
	$(BIN)/schakel up --demo

replay: setup
	$(BIN)/schakel replay --demo --input examples/signals.jsonl --out out/replay

test: setup browser lint typecheck pytest

lint: setup
	$(BIN)/ruff check services tests bench fuzz
	$(BIN)/ruff format --check services tests bench fuzz

typecheck: setup
	$(BIN)/mypy

# the suite on PYTEST_WORKERS processes (pytest-xdist; 0: in this process, one test at a time).
# Two workers for CI's two cores: most broker tests wait (group joins, restarts, polls) rather
# than compute, but a test running a whole `schakel up` (seven processes) beside another slows
# both, and more workers made such tests hit their time limits on a loaded machine. Each file
# runs whole on one worker (its module fixtures are built once); the slow files go first
# (tests/xdist_order.py). Every worker starts its own brokers and PostgreSQL on free ports;
# the per-test timeout applies in each worker.
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

pytest: setup browser
	$(BIN)/pytest $(XDIST)

# the broker-, database- and browser-free subset, for a quick loop while editing
fast: setup
	$(BIN)/pytest $(XDIST) -m "not kafka and not postgres and not browser"

# every bench/*.py at full size, one table, and the summary table of docs/performance.md
bench: setup
	$(BIN)/python bench/run.py --write-docs

# the same at small sizes, to check the harness (docs untouched)
bench-quick: setup
	$(BIN)/python bench/run.py --quick

# the chaos soak at full size: 100,000 signals through killed and restarted workers, an audit
# database outage and a broker restart, then the loss/duplicate/leak checks (make test runs
# a 5,000-signal form of it)
SOAK_SIGNALS ?= 100000
soak: setup
	SCHAKEL_SOAK_SIGNALS=$(SOAK_SIGNALS) $(BIN)/pytest tests/soak -m kafka -s \
		-o timeout=7200 -q

# long randomised fuzzing: the fuzz and property tests with many more, non-repeating examples
# (not part of make test); keep what breaks in tests/fuzz/corpus/
# then coverage-guided fuzzing with atheris, FUZZ_SECONDS per target (crashes in out/fuzz/)
FUZZ_EXAMPLES ?= 20000
FUZZ_SECONDS  ?= 300
fuzz: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,fuzz]'
	SCHAKEL_FUZZ_RANDOM=1 SCHAKEL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz \
		tests/properties -o timeout=7200 -q
	@for target in signal covenant condition; do \
		mkdir -p out/fuzz/corpus-$$target; \
		$(BIN)/python fuzz/harness.py $$target -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -artifact_prefix=out/fuzz/ out/fuzz/corpus-$$target \
			tests/fuzz/corpus/$$target || exit 1; \
	done

clean:
	rm -rf $(VENV) out var .pytest_cache .mypy_cache .ruff_cache
