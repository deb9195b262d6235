# One-command set-up on a fresh machine: `make demo` (example avatar job) and `make test` (all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AVATAR_DATA_DIR ?= $(CURDIR)/data
export WARP_QUIET := 1

.PHONY: install install-fbx warmup demo serve test test-fast test-slow slow-deps bench js browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21
	touch $(STAMP)

install: $(STAMP)

# Blender as a Python module (bpy, about 0.9 GB) in its own venv: bpy 5.0 pins numpy<2 while the
# web stack needs numpy>=2. avatarclip_core.export.fbx finds .venv-blender next to .venv.
BLENDER_VENV := .venv-blender
install-fbx: $(BLENDER_VENV)/.installed

$(BLENDER_VENV)/.installed:
	test -x $(BLENDER_VENV)/bin/python || $(PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/pip install -q bpy==5.0.1
	touch $@

# The first build of the body model takes minutes and is cached in the data folder.
warmup: $(STAMP)
	$(BIN)/avatar warmup

js: tests/js/node_modules/.package-lock.json

tests/js/node_modules/.package-lock.json: tests/js/package.json
	npm install --prefix tests/js --no-audit --no-fund --loglevel=error

# Headless browser test: Debian's chromium (apt, as root) + npm playwright-core (never its own browser).
browser: tests/browser/node_modules/.package-lock.json
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

tests/browser/node_modules/.package-lock.json: tests/browser/package.json
	npm install --prefix tests/browser --no-audit --no-fund --loglevel=error

demo: warmup
	$(BIN)/avatar body --set height=0.9 --motion walk -o out/example_avatar --force

# The web studio and REST API on the embedded default (SQLite broker + a worker process).
serve: warmup
	$(BIN)/avatar serve

# The slow tier's downloads (Chromium, Blender's bpy) install while the fast tier runs; a fast-tier
# failure still stops before the slow tier.
test:
	$(MAKE) -j2 test-fast slow-deps
	$(MAKE) test-slow

slow-deps: warmup js browser install-fbx

# Both tiers run on TEST_WORKERS pytest-xdist processes, a test file per process (module fixtures such
# as a trained imitator are built once): the slow tier waits on servers, browsers and sleeps much of
# its time, and the fast tier's many small tests spread over the cores (1.5x on 2 cores). Files are
# handed out largest first (xdist's default), so the fault tests start at once; their limits and waits
# leave room for a busy CPU (tests/test_workers_faults.py).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile
# The cores shared out between the test processes (OpenMP threads of torch, numpy's BLAS; inherited by
# the workers, servers and job processes the tests start): torch's default, one thread per core in
# every process, oversubscribes the cores, and each parallel op then waits for one (2 cores: a test's
# time varied up to 3x with what ran beside it, e.g. the translator test 35 s -> 103 s).
TEST_THREADS ?= $(shell $(PYTHON) -c "import os; print(max(1, (os.cpu_count() or 1) // $(TEST_WORKERS)))")

test-fast: warmup js
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -m "not slow" $(PYTEST_PARALLEL) --durations=15 tests

test-slow: warmup js browser install-fbx
	OMP_NUM_THREADS=$(TEST_THREADS) AVATAR_REQUIRE_BPY=1 $(BIN)/python -m pytest -m slow $(PYTEST_PARALLEL) --durations=30 tests

bench: warmup
	$(BIN)/avatar bench -o bench.json

clean:
	rm -rf out .pytest_cache
