# anypickle developer commands. `make demo` and `make test` set up everything
# they need (a virtualenv with maturin and the test dependencies) by themselves.

PY ?= python3
VENV ?= .venv
VPY := $(abspath $(VENV))/bin/python
TEST_DEPS := "maturin>=1.7,<2" "pytest>=8" "hypothesis>=6.100" "cloudpickle>=3" "dill>=0.3.8" numpy ruff

.PHONY: demo test build test-rust test-python lint bench fuzz fuzz-rust fuzz-python clean

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
	PYO3_PYTHON=$(VPY) cargo test -q --workspace

test-python: build
	$(VPY) -m pytest

## Formatting and lints (Rust and Python).
lint: $(VENV)/.installed
	cargo fmt --all -- --check
	PYO3_PYTHON=$(VPY) cargo clippy -q --workspace --all-targets -- -D warnings
	$(VPY) -m ruff check python tests bench examples fuzz
	$(VPY) -m ruff format --check python tests bench examples fuzz

## Fuzzing, bounded in time (FUZZ_SECONDS each): the pure-Rust parser under
## cargo-fuzz (nightly toolchain, installed if missing), then loads() under the
## Python mutation fuzzer. Seeds: fuzz/corpus (see fuzz/make_corpus.py).
FUZZ_SECONDS ?= 60
fuzz: fuzz-rust fuzz-python

fuzz-rust:
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	mkdir -p target/fuzz-corpus
	cd crates/parser && cargo +nightly fuzz run parse $(abspath target/fuzz-corpus) $(abspath fuzz/corpus) -- \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1

fuzz-python: build
	$(VPY) fuzz/mutate_loads.py --seconds $(FUZZ_SECONDS)

## Side-by-side benchmark against pickle, cloudpickle and dill.
bench: build
	$(VPY) bench/run.py
	$(VPY) bench/byvalue.py
	$(VPY) bench/per_call.py

clean:
	rm -rf target .venv .venv-* dist
