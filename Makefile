# anypickle developer commands. `make demo` and `make test` set up everything
# they need (a virtualenv with maturin and the test dependencies) by themselves.

PY ?= python3
VENV ?= .venv
VPY := $(abspath $(VENV))/bin/python
TEST_DEPS := "maturin>=1.7,<2" "pytest>=8" "hypothesis>=6.100" "cloudpickle>=3" "dill>=0.3.8" numpy ruff

.PHONY: demo test build test-rust test-python lint bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q $(TEST_DEPS)
	touch $@

## Build the extension in release mode into the virtualenv.
build: $(VENV)/.installed
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin develop --release -q

## The demo: pickle a realistic structure, load it with the stdlib, time it.
demo: build
	$(VPY) examples/demo.py

## Every test: Rust unit tests, then the Python suites.
test: test-rust test-python

test-rust: $(VENV)/.installed
	PYO3_PYTHON=$(VPY) cargo test -q

test-python: build
	$(VPY) -m pytest

## Formatting and lints (Rust and Python).
lint: $(VENV)/.installed
	cargo fmt --all -- --check
	PYO3_PYTHON=$(VPY) cargo clippy -q --all-targets -- -D warnings
	$(VPY) -m ruff check python tests bench examples fuzz
	$(VPY) -m ruff format --check python tests bench examples fuzz

## Side-by-side benchmark against pickle, cloudpickle and dill.
bench: build
	$(VPY) bench/run.py

clean:
	rm -rf target .venv .venv-* dist
