# Curfew — developer targets. `make help` lists them.
#
#   make render     set up, then render the examples (the main job on an embedded default)
#   make test       set up, lint, type-check, check layers, run the whole test suite
#   make demo       set up, then start the local demo (sample app behind the sidecar)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TOOLS  := .tools/bin
export PATH := $(CURDIR)/$(TOOLS):$(CURDIR)/$(BIN):$(PATH)

LOCK   := requirements/lock.txt
UV     := uv==0.13.9

.DEFAULT_GOAL := help
.PHONY: help setup system-deps tools lock render demo kubectl-plugin lint test test-unit test-integration fuzz e2e bench clean

help:  ## list the targets
	@grep -E '^[A-Za-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Everything comes from the hashed lock, nothing from a resolver: a fresh machine gets the
# versions CI got. `make lock` is the only way the versions move.
$(BIN)/curfew: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

setup: $(BIN)/curfew  ## create .venv from the lock (requirements/lock.txt) and install curfew into it

lock:  ## re-resolve the locks from pyproject.toml to the newest allowed versions (network; note it in CHANGELOG)
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install -q '$(UV)'
	.tools/uv/bin/uv pip compile -q --upgrade --generate-hashes --universal --python-version 3.11 \
		pyproject.toml requirements/build.in --extra test --extra dev -o $(LOCK)
	.tools/uv/bin/uv pip compile -q --generate-hashes --universal --python-version 3.11 \
		pyproject.toml requirements/build.in -c $(LOCK) -o requirements/runtime.txt

system-deps:  ## install Debian packages the tests need (redis-server, wrk, chromium); needs root
	bash scripts/system-deps.sh

tools:  ## fetch the pinned helm and kubectl binaries into .tools/bin
	bash scripts/fetch-tools.sh $(TOOLS)

render: setup  ## render the example policies and workloads to the objects the operator would write
	$(BIN)/curfew render -f examples/

kubectl-plugin:  ## build dist/kubectl-curfew.tar.gz, the archive plugins/krew/curfew.yaml installs
	$(PYTHON) scripts/kubectl-plugin-archive.py dist/kubectl-curfew.tar.gz

demo: setup  ## start the local demo: a sample app behind the sidecar (DEMO_ARGS="--port 9000")
	$(BIN)/curfew demo $(DEMO_ARGS)

lint: setup  ## ruff, mypy --strict and import-linter
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: system-deps setup tools lint  ## everything CI runs: lint, then the whole suite (pytest exit 5, no tests, fails)
	bash scripts/pytest.sh

test-unit: setup  ## the unit tier only (no servers)
	$(BIN)/pytest tests/unit

test-integration: setup tools  ## the integration tier (real Redis, kmock, real HTTP, real helm)
	$(BIN)/pytest tests/integration

fuzz: setup  ## the sidecar's differential HTTP fuzzing (proxy and authz), long profile (FUZZ_EXAMPLES=200000 each)
	CURFEW_FUZZ_PROFILE=long CURFEW_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),200000) \
	  $(BIN)/pytest -p no:cacheprovider --hypothesis-show-statistics \
	  tests/integration/sidecar/test_sidecar_fuzz.py \
	  tests/integration/sidecar/test_sidecar_authz_fuzz.py

e2e: setup tools  ## the opt-in real-cluster suite (needs kind and docker): see docs/install.md
	bash scripts/e2e-kind.sh

bench: setup  ## run every benchmark under bench/
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:  ## remove the virtualenv, tools and caches
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
