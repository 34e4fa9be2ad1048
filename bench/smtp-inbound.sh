#!/usr/bin/env bash
# Inbound SMTP throughput: Postfix's smtp-source (10 KB messages, 20 parallel sessions) against
# mshub's relay port and against Postfix itself on this machine, in the same run.
#
#   bench/smtp-inbound.sh [MESSAGES]      (default 5000)
#   MSHUB=path/to/mshub bench/smtp-inbound.sh [MESSAGES]
#   NO_POSTFIX=1 bench/smtp-inbound.sh [MESSAGES]
#
# MSHUB: use that prebuilt binary (e.g. a release build of another commit, for an A/B run)
# instead of building this tree's (`cargo build --release --bin mshub`). NO_POSTFIX=1 skips the
# Postfix half (mshub only); by default both run.
# mshub runs from a release build with `bench_plaintext_loopback` (smtp-source has no TLS) and
# acknowledges each message after it is durably stored and encrypted in the patient's INBOX
# (checked after the measurements: the INBOX, read over IMAPS, holds MESSAGES from the sender).
# Postfix (Debian package, reconfigured here for loopback only on port 2526) acknowledges after
# its queue file is fsync'd; its local delivery is set to discard, so it only queues.
# The hub's /metrics is scraped every second during mshub's run, as a Prometheus would; the
# last scrape is checked with promtool (when installed) and must count every message.
# Installs postfix (for smtp-source) when missing. Everything listens on 127.0.0.1 only.
set -euo pipefail
[ -n "${MSHUB:-}" ] && MSHUB=$(realpath "$MSHUB")
cd "$(dirname "$0")/.."
N=${1:-5000}
SESSIONS=20
SIZE=10240
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"

if ! command -v smtp-source >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
if [ -z "${MSHUB:-}" ]; then
  cargo build --release --bin mshub -q
  MSHUB="$CARGO_TARGET_DIR/release/mshub"
fi
[ -x "$MSHUB" ] || { echo "no executable mshub at $MSHUB" >&2; exit 1; }

work=$(mktemp -d)
hub_pid=""
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null
  postfix stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RELAY=$(free_port)
IMAPS=$(free_port)
ADMIN=$(free_port)
cat > "$work/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:$RELAY"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:$IMAPS"
https = "127.0.0.1:0"
admin = "127.0.0.1:$ADMIN"
[log]
filter = "warn"
[mta]
bench_plaintext_loopback = true
max_connections_per_source = 2000
TOML

ready() { # waits for the hub's banner; fails if the hub stopped (e.g. refused the config)
  until grep -q "mshub ready" "$work/out" 2>/dev/null; do
    kill -0 "$hub_pid" 2>/dev/null || { cat "$work/out" >&2; hub_pid=""; exit 1; }
    sleep 0.2
  done
}
# First start: keys, certificate, demo accounts; then trust the bench sender's domain.
"$MSHUB" demo --data "$work" > "$work/out" &
hub_pid=$!
ready
kill "$hub_pid"; wait "$hub_pid" || true; hub_pid=""
"$MSHUB" --config "$work/mshub.toml" domain trust lab.bench.test >/dev/null
rm "$work/out" # or the first start's banner reads as the second's
"$MSHUB" demo --data "$work" > "$work/out" &
hub_pid=$!
ready

bench_stored() { # messages from the bench sender in the patient's INBOX, over IMAPS
  python3 - "$IMAPS" <<'PY'
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login("284057511204339@patient.mshub.test", "demo-camille")
m.select("INBOX", readonly=True)
typ, data = m.search(None, "FROM", "results@lab.bench.test")
print(len(data[0].split()))
m.logout()
PY
}

run() { # name host:port
  local start end
  start=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f results@lab.bench.test \
    -t 284057511204339@patient.mshub.test "$2"
  end=$(date +%s.%N)
  python3 -c "import sys; n=$N; t=$end-$start; print(f'$1: {n} messages of $SIZE bytes, $SESSIONS sessions: {t:.2f} s, {n/t:.0f} msgs/s')"
}
# Memory with 1,000 idle connections (each greeted and EHLO'd), on the fresh instance.
ulimit -n 4096
python3 bench/idle_connections.py 127.0.0.1 "$RELAY" 1000 5 > "$work/idle" &
idle_pid=$!
until grep -q holding "$work/idle" 2>/dev/null; do
  kill -0 "$idle_pid" 2>/dev/null || { echo "the idle connections failed" >&2; exit 1; }
  sleep 0.2
done
rss=$(ps -o rss= -p "$hub_pid")
echo "mshub: RSS with 1000 idle connections $((rss / 1024)) MiB"
wait "$idle_pid"

# Scraped every second during the run, as Prometheus would.
( while :; do curl -s "http://127.0.0.1:$ADMIN/metrics" -o /dev/null; echo >> "$work/scrapes"; sleep 1; done ) &
scraper=$!
run mshub "127.0.0.1:$RELAY"
kill "$scraper"; wait "$scraper" 2>/dev/null || true
curl -s "http://127.0.0.1:$ADMIN/metrics" > "$work/metrics"
if command -v promtool >/dev/null; then
  promtool check metrics < "$work/metrics" || { echo "mshub: promtool refused /metrics" >&2; exit 1; }
fi
python3 - "$work/metrics" "$N" "$(wc -l < "$work/scrapes")" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def value(series):
    m = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0
accepted = value('mshub_smtp_messages_total{door="relay"}')
buckets = [(float(le), float(n)) for le, n in re.findall(
    r'^mshub_store_commit_seconds_bucket\{result="ok",le="([0-9.e+-]+)"\} (\S+)$', text, re.M)]
count = value('mshub_store_commit_seconds_count{result="ok"}')
p50 = next((le for le, n in buckets if n >= count / 2), float("nan"))
p99 = next((le for le, n in buckets if n >= count * 0.99), float("nan"))
print(f"mshub /metrics ({sys.argv[3]} scrapes during the run): {accepted:.0f} messages counted, "
      f"{count:.0f} commits, commit latency p50 <= {p50 * 1000:g} ms, p99 <= {p99 * 1000:g} ms")
if accepted < int(sys.argv[2]):
    sys.exit("mshub: /metrics counted fewer messages than were acknowledged")
PY
rss=$(ps -o rss= -p "$hub_pid")
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$hub_pid/stat")
echo "mshub: RSS after the run $((rss / 1024)) MiB, CPU time $cpu s (user + system, since start)"
# After the measurements (a login costs a password hash): every message is in the INBOX.
stored=$(bench_stored)
echo "mshub: $stored of $N messages in the patient's INBOX"
[ "$stored" -eq "$N" ] || { echo "mshub: messages missing from the INBOX" >&2; exit 1; }

kill "$hub_pid"; wait "$hub_pid" || true; hub_pid=""
[ -n "${NO_POSTFIX:-}" ] && exit 0

# Postfix on 127.0.0.1:2526, queue only (local delivery discards).
[ -f /etc/postfix/main.cf ] || cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
postconf -e "myhostname = bench.localdomain" "maillog_file = /var/log/postfix-bench.log" \
  "smtpd_banner = \$myhostname ESMTP"
postconf -e "inet_interfaces = loopback-only" "mydestination = patient.mshub.test" \
  "local_transport = discard:" "default_transport = discard:" "smtpd_client_connection_count_limit = 100" \
  "mynetworks = 127.0.0.0/8" "smtpd_recipient_restrictions = permit_mynetworks, reject" \
  "local_recipient_maps =" "compatibility_level = 3.6"
postconf -M "2526/inet=2526 inet n - y - - smtpd"
postfix start >/dev/null 2>&1 || postfix reload >/dev/null 2>&1
sleep 1
run postfix "127.0.0.1:2526"
