# The two commands of the README: `make demo` and `make test`.
# Build output goes outside the clone so repeated runs are incremental.
export CARGO_TARGET_DIR ?= /var/tmp/mshub-target
CARGO ?= cargo

.PHONY: demo test deps test-deps fmt

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --tests

## Start the whole hub on the embedded store with the demo accounts (Ctrl-C stops it).
demo: deps
	$(CARGO) run --bin mshub -- demo --data demo-data

## Every check CI runs: formatting, lints, then all tests of the workspace.
test: test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@scripts/run-tests

fmt:
	$(CARGO) fmt --all
