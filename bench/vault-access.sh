#!/usr/bin/env bash
# Vault access check with care relationships (issue "vault", care relationships: "the access
# check adds under 1 ms at p99 to a document read with 10,000 relationships in the store"):
# a real store with 1,000 patients, 200 professionals and 10,000 relationships (Follows and
# Grant); 3,000 document reads by professionals with a relationship against the same reads by
# the patient (no relationship check, no audit record), and the parts alone (`standing`,
# `patient_settings`, one audit append, the author-ground directory lookup): p50, p99, max.
#
#   bench/vault-access.sh
#
# Release build of the vault crate only; prints the table the benchmark measures
# (vault/tests/access_bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
cargo test --release -p mshub-vault --test access_bench -- --ignored --nocapture 2>&1 \
  | grep -vE '^(running|test result|$)'
