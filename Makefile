# One-command set-up on a fresh machine: `make demo` (example avatar job) and `make test` (all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AVATAR_DATA_DIR ?= $(CURDIR)/data
export WARP_QUIET := 1

.PHONY: install install-fbx warmup demo test test-fast test-slow bench js clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Blender as a Python module (about 1 GB) for FBX export and the Blender import tests.
install-fbx: $(STAMP)
	$(BIN)/python -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('bpy') else 1)" \
	  || $(BIN)/pip install -q -e ".[test,fbx]"

# The first build of the body model takes minutes and is cached in the data folder.
warmup: $(STAMP)
	$(BIN)/avatar warmup

js: tests/js/node_modules/.package-lock.json

tests/js/node_modules/.package-lock.json: tests/js/package.json
	npm install --prefix tests/js --no-audit --no-fund --loglevel=error

demo: warmup
	$(BIN)/avatar body --set height=0.9 --motion walk -o out/example_avatar --force

test: test-fast test-slow

test-fast: warmup js
	$(BIN)/python -m pytest -m "not slow" tests

test-slow: warmup js install-fbx
	$(BIN)/python -m pytest -m slow tests

bench: warmup
	$(BIN)/avatar bench -o bench.json

clean:
	rm -rf out .pytest_cache
