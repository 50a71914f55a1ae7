# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER = 0

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast lint format bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU wheel, pinned: an unpinned torch pulls gigabytes of CUDA packages.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# torchao (--quantize) beside the venv, not in it: diffusers imports it in every process
	# when installed (+1.1 s per actor start, measured); only the quantize test's process
	# puts this folder on its path (tests/unit/test_lanes.py).
	$(BIN)/python -m pip install -q --no-deps --upgrade --target $(VENV)/side 'torchao>=0.14'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/promptreel demo

# Debian's headless Chromium for the report tests (Playwright drives it; it never downloads
# a browser). Quick when already installed; CI runs as root.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# tests/unit: plain Python, no Ray, no CLI subprocess that renders (seconds); tests/e2e: real
# Ray, real subprocesses, signals, S3, Chromium. Helpers live in tests/support.
# Two xdist workers, a file each at a time: measured on the 2-core machine, three ran the
# same suite in the same wall time (7:51-8:32 vs 7:48) with each test ~40 % slower from
# contention (three session Rays, torch threads fighting for two cores).
test: $(STAMP) browser
	$(BIN)/ruff check pipeline jobs tests bench
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check pipeline jobs tests bench
	$(BIN)/ruff format --check pipeline jobs tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix pipeline jobs tests bench
	$(BIN)/ruff format pipeline jobs tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf runs .pytest_cache
