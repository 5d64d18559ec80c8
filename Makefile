# Two commands on a fresh machine with Python 3.11+, pip and make:
#   make run    build .venv, then start the monitor on the bundled replay data and model
#   make test   build .venv, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned in pyproject (torch==2.13.0, CPU build from the local wheel cache or PyPI)
	$(BIN)/pip install -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ecgmon --source replay $(ARGS)

test: $(STAMP)
	$(BIN)/pytest

# the inner loop: everything but the end-to-end runs and the broker tests (about a minute)
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not broker"

# ruff, then mypy over the ecgmon.* packages (linked as a package tree so that every import resolves)
lint: $(STAMP)
	$(BIN)/ruff check .
	mkdir -p build/typecheck/ecgmon
	for d in core monitor segmentation models simulators; do ln -sfn ../../../$$d build/typecheck/ecgmon/$$d; done
	$(BIN)/mypy -p ecgmon
	$(BIN)/mypy benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
