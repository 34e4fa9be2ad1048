#!/usr/bin/env bash
# The authentication cache: logins/s and CPU per login for 200 repeated logins of one account
# (Door::Mail, the right password), without the cache (every login an argon2id verification
# in a slot of the hashing gate) and with it (5 minutes, 10,000 entries: one verification,
# then hits).
#
#   bench/auth-cache.sh
#
# Runs the ignored test `bench_repeated_logins` of directory/tests/auth_cache.rs in a release
# build, on a temporary sled store. The logins run on the calling thread one after the other,
# so its CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID)) is the CPU of the logins; wall time includes
# the store's read of the account record and the throttle's bookkeeping, as a real LOGIN's.
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
cargo test --release -p mshub-directory --test auth_cache -- \
  --ignored --exact bench_repeated_logins --nocapture 2>&1 \
  | grep -E '^\||logins of one account'
