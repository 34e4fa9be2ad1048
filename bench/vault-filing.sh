#!/usr/bin/env bash
# Vault filing cost (issue "vault", Benchmark): a 1 MiB document in an IHE XDM archive, and a
# 100-document subset, filed into a real store (sealed, audited, patient notified).
#
#   bench/vault-filing.sh
#
# Release build; prints the timings the benchmark measures.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
cargo test --release -p mshub-vault --test throughput -- --ignored --nocapture 2>&1 \
  | grep -vE '^(running|test result|$)'
