# Two commands on a fresh machine with Python 3.11+, pip and make (make test installs mosquitto when missing):
#   make run    build .venv, then start the monitor on the bundled replay data and model
#   make test   build .venv, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test test-fast lint bench lock system-deps clean

# the tested dependency set, with hashes (requirements.lock; `make lock` re-resolves it), then ecgmon itself
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# re-resolve requirements.lock after changing the dependencies in pyproject.toml (needs the network)
lock:
	$(PYTHON) -m venv build/piptools
	build/piptools/bin/pip install -q pip-tools
	build/piptools/bin/pip-compile -q --generate-hashes --extra test --strip-extras --allow-unsafe \
		-o requirements.lock pyproject.toml

# mosquitto (a real broker for the MQTT tests) and openssl: installed when missing, or one clear line
system-deps:
	@bash .ci/system-deps.sh

run: $(STAMP)
	$(BIN)/ecgmon --source replay $(ARGS)

test: $(STAMP) system-deps
	$(BIN)/pytest

# the inner loop: everything but the end-to-end runs and the broker tests (about a minute)
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not broker"

# ruff, then mypy over the ecgmon.* packages (linked as a package tree so that every import resolves)
lint: $(STAMP)
	$(BIN)/ruff check .
	mkdir -p build/typecheck/ecgmon
	for d in core monitor segmentation models simulators evaluation; do ln -sfn ../../../$$d build/typecheck/ecgmon/$$d; done
	$(BIN)/mypy -p ecgmon
	$(BIN)/mypy benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
