#!/usr/bin/env bash
# Patient web inbox: requests/s and latency of the inbox page with a large INBOX, many
# patients' sessions at once, with wrk over HTTPS.
#
#   bench/webmail-inbox.sh [MESSAGES [SESSIONS [DURATION]]]   (defaults 10000, 50, 20 s)
#
# mshub runs `mshub demo` from a release build on a temporary directory with free ports (log
# filter `warn`). The demo professional (dr.martin) sends MESSAGES small messages to the demo
# patient Camille through the submission port (bench/webmail_fill.py), so that each message's
# sender is a known professional whose identity the page shows. Then SESSIONS sessions log in
# through the real login form (GET /login for the CSRF cookie and field, POST /login), and wrk
# (SESSIONS connections, 2 threads, bench/webmail_inbox.lua) asks each page for DURATION
# seconds: `/` (the 25 newest messages) and `/?page=N` (the oldest page). Each case starts with
# a 3 s warm-up run that is not counted: the first render of a message decrypts and parses it
# once and caches its summary, so the warm-up is what fills that cache for the page measured.
# MSHUB_BIN=path runs that binary instead of building the tree (e.g. a build of a given commit,
# when the working tree is mid-edit). Installs wrk when missing. Everything listens on 127.0.0.1 only; the hub is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
SESSIONS=${2:-50}
DURATION=${3:-20}
THREADS=2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
PATIENT=284057511204339@patient.mshub.test
PASS=demo-camille

if ! command -v wrk >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -n "${MSHUB_BIN:-}" ]; then
  MSHUB="$MSHUB_BIN"
else
  cargo build --release --bin mshub -q
  MSHUB="$CARGO_TARGET_DIR/release/mshub"
fi

work=$(mktemp -d)
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SUBMISSION=$(free_port)
HTTPS=$(free_port)
cat > "$work/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:$SUBMISSION"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:$HTTPS"
admin = "127.0.0.1:0"
[log]
filter = "warn"
TOML
"$MSHUB" demo --data "$work" > "$work/out" &
hub_pid=$!
until grep -q "mshub ready" "$work/out"; do
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/out"; exit 1; }
  sleep 0.2
done
CERT="$work/tls/cert.pem"
BASE="https://localhost:$HTTPS"
# The demo certificate names localhost; pin it to the loopback address the hub listens on.
CURL=(curl -sS --cacert "$CERT" --resolve "localhost:$HTTPS:127.0.0.1")

start=$(date +%s.%N)
python3 bench/webmail_fill.py 127.0.0.1 "$SUBMISSION" "$CERT" "$N" 4
end=$(date +%s.%N)
python3 -c "t=$end-$start; print(f'fill: $N messages by submission (4 sessions) in {t:.1f} s, {$N/t:.0f} msgs/s')"

# One session: the login form's CSRF cookie and field, then the form posted; prints the
# session cookie's value. A successful login does not count against the login throttle, but
# form posts from one address are rate-limited ([webmail] posts_per_minute, bursts of as
# many): on a 429, wait for its Retry-After and post again.
login() {
  local jar csrf code wait_s tries=0
  jar=$(mktemp -p "$work")
  csrf=$("${CURL[@]}" -c "$jar" "$BASE/login" | sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' | head -1)
  while :; do
    code=$("${CURL[@]}" -o /dev/null -D "$jar.h" -w '%{http_code}' -b "$jar" -c "$jar" \
      --data-urlencode "_csrf=$csrf" --data-urlencode "login=$PATIENT" \
      --data-urlencode "password=$PASS" "$BASE/login")
    [ "$code" = 429 ] && [ $((tries += 1)) -le 5 ] || break
    wait_s=$(awk 'tolower($1) == "retry-after:" { print $2 + 0 }' "$jar.h")
    sleep "${wait_s:-1}"
  done
  [ "$code" = 303 ] || { echo "login answered $code" >&2; return 1; }
  awk -F'\t' '$6 == "__Host-mshub" { print $7 }' "$jar"
}
: > "$work/cookies"
for _ in $(seq "$SESSIONS"); do login >> "$work/cookies"; done
[ "$(sort -u "$work/cookies" | wc -l)" -eq "$SESSIONS" ] || { echo "expected $SESSIONS distinct sessions" >&2; exit 1; }
echo "logged in: $SESSIONS distinct sessions"

# The page must be the real inbox, with every message counted.
cookie=$(head -1 "$work/cookies")
check_page() { # path what
  local code
  code=$("${CURL[@]}" -o "$work/page" -w '%{http_code}' -H "Cookie: __Host-mshub=$cookie" "$BASE$1")
  [ "$code" = 200 ] || { echo "$2: GET $1 answered $code" >&2; exit 1; }
  grep -q ">$N messages, dont" "$work/page" || { echo "$2: GET $1 does not say $N messages" >&2; exit 1; }
  # The sender's identity from the directory, not just the From: header's name.
  grep -q "<strong>Jean Martin</strong>, Médecin" "$work/page" || { echo "$2: GET $1 shows no sender identity" >&2; exit 1; }
}
LAST=$(( (N + 24) / 25 - 1 ))  # the oldest page: 25 messages a page (PAGE_SIZE)
check_page / before
check_page "/?page=$LAST" before

measure() { # label path; a 3 s warm-up (not counted) fills the summary cache for this page
  local out
  WRK_COOKIES="$work/cookies" WRK_THREADS=$THREADS WRK_PATH="$2" \
    wrk -t "$THREADS" -c "$SESSIONS" -d 3s -s bench/webmail_inbox.lua "$BASE/" > /dev/null
  cpu0=$(ps -o times= -p "$hub_pid")
  out=$(WRK_COOKIES="$work/cookies" WRK_THREADS=$THREADS WRK_PATH="$2" \
    wrk -t "$THREADS" -c "$SESSIONS" -d "${DURATION}s" --latency -s bench/webmail_inbox.lua "$BASE/")
  cpu1=$(ps -o times= -p "$hub_pid")
  echo "$out" | sed -n '/Latency Distribution/,/Transfer/p'
  echo "$out" | grep RESULT | sed "s|^RESULT|$1: GET $2, $SESSIONS sessions, ${DURATION} s:|; s|\$| mshub_cpu_s=$((cpu1 - cpu0))|"
  echo "$out" | grep -q "non200=0 socket_errors=0" || { echo "$1: failed requests" >&2; exit 1; }
}
echo "mshub RSS before the runs: $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"
measure newest /
measure oldest "/?page=$LAST"
echo "mshub RSS after the runs: $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"

check_page / after
echo "after: the hub still answers the inbox page"
