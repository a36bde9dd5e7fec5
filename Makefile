# crisis: two commands.
#   make run   set up what is needed, build, start the daemon on the example config
#   make test  set up what is needed and run every test
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/crisis.toml

.PHONY: setup run test bench build clean-state examples lint

# The toolchain is pinned by rust-toolchain.toml (1.95.0); guests build for wasm32-wasip2.
setup:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

build: setup
	$(CARGO) build --bin crisis

run: build
	$(CARGO) run --bin crisis -- --config $(CONFIG) playbook validate
	$(CARGO) run --bin crisis -- --config $(CONFIG) daemon

# The Python and JavaScript example plugins are rebuilt only when their sources change.
examples: setup
	examples/build.sh

# Formatting and clippy with warnings as errors; part of `make test`.
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Targets by kind rather than --all-targets, which would also build a test
# harness for each binary (they hold no tests; each is one more large link).
test: setup examples lint
	$(CARGO) test --workspace --lib --tests --benches

# Benchmarks (release build): writes target/bench/summary.{md,json}. Never part of `make test`,
# which only builds them and runs each measurement once as a smoke test.
bench: setup
	$(CARGO) bench --bench suite

clean-state:
	rm -rf .crisis
