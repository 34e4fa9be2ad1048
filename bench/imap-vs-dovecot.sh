#!/usr/bin/env bash
# IMAP throughput and latency: the same scripted workload (bench/imap_bench.py) against mshub
# and against Debian's Dovecot on this machine, in the same run, both over implicit TLS with
# the same certificate; then mshub's RSS with many concurrent IDLE connections.
#
#   bench/imap-vs-dovecot.sh [MESSAGES [CLIENTS [ROUNDS [IDLE]]]]
#                                    (defaults 10000 messages, 20 clients, 2 rounds, 10000 idle)
#   IDLE_SHIPPED=N (default 100): idle connections against the hub as shipped (see below)
#   IDLE_MAILBOX=NAME (default INBOX): the mailbox the idle sessions select (Drafts is empty)
#
#   PROFILES=reconnect,stay bench/imap-vs-dovecot.sh [MESSAGES [CLIENTS [SECONDS]]]
#                                    (defaults 500 messages, 20 clients, 30 s per profile)
#     Only the profiles (no 10,000-message load, no workload, no IDLE test): CLIENTS clients
#     for SECONDS seconds each, random read commands (FETCH flags and headers of a random
#     message, SEARCH UNSEEN, NOOP, STATUS INBOX), either reconnecting (connect, LOGIN, SELECT,
#     5 random commands, LOGOUT, again) or staying logged in; commands/s, protocol errors and
#     the server's CPU per command (see `imap_bench.py profile`). Against:
#       HUB_CACHES="300 0" (default): mshub once per value of [accounts] auth_cache_secs
#         (0: the authentication cache off, every LOGIN hashed), restarted between values;
#       DOVECOT_MODES="performance default" (default): Dovecot in the login processes'
#         high-performance mode of its documentation (below), then as in Debian's defaults.
#
# One user per server with MESSAGES messages (about 3.6 KB each) in its INBOX, loaded by APPEND.
# Workload per client and round: LOGIN, SELECT, FETCH 1:* (UID FLAGS
# BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]), 100 FETCH BODY.PEEK[], a SEARCH, 100 STORE,
# LOGOUT. mshub runs `mshub demo` from a release build on a temporary directory; Dovecot runs
# from its own configuration file in a temporary directory (maildir, passwd-file user, TLS
# only), on a free port. Installs dovecot-imapd when missing. Everything listens on 127.0.0.1
# only and both servers are stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILES=${PROFILES:-}
if [ -n "$PROFILES" ]; then
  N=${1:-500}
  CLIENTS=${2:-20}
  DURATION=${3:-30}
  HUB_CACHES=${HUB_CACHES:-300 0}
  DOVECOT_MODES=${DOVECOT_MODES:-performance default}
  for p in ${PROFILES//,/ }; do
    case "$p" in reconnect|stay) ;; *) echo "PROFILES: unknown profile $p (reconnect, stay)" >&2; exit 2 ;; esac
  done
  for m in $DOVECOT_MODES; do
    case "$m" in performance|default) ;; *) echo "DOVECOT_MODES: unknown mode $m" >&2; exit 2 ;; esac
  done
  [ "$CLIENTS" -le 250 ] || { echo "at most 250 clients (one source address each)" >&2; exit 2; }
else
  N=${1:-10000}
  CLIENTS=${2:-20}
  ROUNDS=${3:-2}
  IDLE=${4:-10000}
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
USER_ADDR=dr.martin@hopital.mshub.test
PASS=demo-martin

if [ ! -x /usr/sbin/dovecot ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
fi
cargo build --release --bin mshub -q
MSHUB="$CARGO_TARGET_DIR/release/mshub"

work=$(mktemp -d)
chmod 755 "$work"
hub_pid=""
dovecot_conf=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  if [ -n "$dovecot_conf" ]; then doveadm -c "$dovecot_conf" stop 2>/dev/null || true; fi
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
IMAPS=$(free_port)
write_hub_config() { # [auth_cache_secs]
cat > "$work/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:$IMAPS"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
[log]
filter = "warn"
TOML
if [ -n "${1:-}" ]; then printf '[accounts]\nauth_cache_secs = %s\n' "$1" >> "$work/mshub.toml"; fi
}
if [ -n "$PROFILES" ]; then
  write_hub_config "${HUB_CACHES%% *}"
else
  write_hub_config
fi
"$MSHUB" demo --data "$work" > "$work/out" &
hub_pid=$!
until grep -q "mshub ready" "$work/out"; do sleep 0.2; done
CERT="$work/tls/cert.pem"
KEY="$work/tls/key.pem"

# Dovecot: the same certificate, TLS only, one passwd-file user, maildir in $work/dovecot.
d="$work/dovecot"
mkdir -p "$d/run" "$d/home"
chown nobody:nogroup "$d/home"
echo "$USER_ADDR:{PLAIN}$PASS" > "$d/passwd"
start_dovecot() { # default | performance
DPORT=$(free_port)
dovecot_conf="$d/dovecot.conf"
cat > "$dovecot_conf" <<CONF
base_dir = $d/run
state_dir = $d/run
log_path = $d/log
info_log_path = $d/log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$CERT
ssl_key = <$KEY
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
# Default 10: the 20 bench clients log in as the same user from the same address.
mail_max_userip_connections = 100
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DPORT
    ssl = yes
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/home/%u
}
CONF
if [ "$1" = performance ]; then
  # Dovecot 2.3's documented tuning for CPU (doc/wiki/PerformanceTuning.txt, LoginProcess.txt):
  # login processes in high-performance mode (long-running, many connections each, at least
  # one per core), imap processes reused for up to 100 sessions instead of one fork each, and
  # the auth cache for passdb/userdb lookups.
  cat >> "$dovecot_conf" <<CONF
service imap-login {
  service_count = 0
  process_min_avail = $(nproc)
  vsz_limit = 1G
}
service imap {
  service_count = 100
}
auth_cache_size = 10M
CONF
fi
dovecot -c "$dovecot_conf"
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $DPORT)).close()" 2>/dev/null; do sleep 0.2; done
}
stop_dovecot() {
  local pid
  pid=$(cat "$d/run/master.pid" 2>/dev/null || true)
  doveadm -c "$dovecot_conf" stop; dovecot_conf=""
  if [ -n "$pid" ]; then while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
}
restart_hub() { # extra environment for mshub, if any
  kill "$hub_pid"; wait "$hub_pid" || true; hub_pid=""
  env "$@" "$MSHUB" demo --data "$work" > "$work/out" &
  hub_pid=$!
  until grep -q "mshub ready" "$work/out"; do sleep 0.2; done
}
B="python3 bench/imap_bench.py"

if [ -n "$PROFILES" ]; then
  results="$work/results"
  : > "$results"
  profiles() { # label pid port
    for p in ${PROFILES//,/ }; do
      echo "== $1: $p, $CLIENTS clients x $DURATION s"
      $B profile "$p" "$3" "$CERT" "$USER_ADDR" "$PASS" "$CLIENTS" "$DURATION" "$2" "$1" \
        | tee -a "$results" | grep -v '^RESULT'
    done
  }
  echo "mshub (release) on 127.0.0.1:$IMAPS, $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "== loading $N messages into mshub"
  $B load "$IMAPS" "$CERT" "$USER_ADDR" "$PASS" "$N"
  first=1
  for cache in $HUB_CACHES; do
    if [ -z "$first" ]; then write_hub_config "$cache"; restart_hub; fi
    first=""
    profiles "mshub, auth_cache_secs = $cache" "$hub_pid" "$IMAPS"
  done
  kill "$hub_pid"; wait "$hub_pid" || true; hub_pid=""
  loaded=""
  for mode in $DOVECOT_MODES; do
    start_dovecot "$mode"
    echo "Dovecot $(dovecot --version | cut -d' ' -f1) ($mode mode) on 127.0.0.1:$DPORT"
    if [ -z "$loaded" ]; then
      echo "== loading $N messages into Dovecot"
      $B load "$DPORT" "$CERT" "$USER_ADDR" "$PASS" "$N"
      loaded=1
    fi
    profiles "Dovecot, $mode mode" "$(cat "$d/run/master.pid")" "$DPORT"
    stop_dovecot
  done
  echo
  echo "| server | profile | commands/s | server CPU ms/command | protocol errors | sessions | seconds |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  grep '^RESULT' "$results" | while IFS=$'\t' read -r _ label kind rate cpu errs sess secs; do
    echo "| $label | $kind | $rate | $cpu | $errs | $sess | $secs |"
  done
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

start_dovecot default
echo "Dovecot $(dovecot --version | cut -d' ' -f1) on 127.0.0.1:$DPORT, mshub (release) on 127.0.0.1:$IMAPS"

echo "== loading $N messages into each"
$B load "$IMAPS" "$CERT" "$USER_ADDR" "$PASS" "$N"
$B load "$DPORT" "$CERT" "$USER_ADDR" "$PASS" "$N"

echo "== mshub: $CLIENTS clients x $ROUNDS rounds"
cpu0=$(ps -o times= -p "$hub_pid")
$B run "$IMAPS" "$CERT" "$USER_ADDR" "$PASS" "$CLIENTS" "$ROUNDS"
echo "  mshub CPU seconds during the run: $(( $(ps -o times= -p "$hub_pid") - cpu0 )), RSS $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"
echo "== Dovecot: $CLIENTS clients x $ROUNDS rounds"
$B run "$DPORT" "$CERT" "$USER_ADDR" "$PASS" "$CLIENTS" "$ROUNDS"

stop_dovecot
if [ "$IDLE" -gt 0 ]; then
  # The IMAP server admits at most 500 connections per source address (imap/ ImapConfig, no
  # configuration key): the idle client spreads its connections over 127.0.0.2, .3, ...
  # Each LOGIN's argon2id buffer (19 MiB) stays resident while the session lives (glibc heap
  # fragmentation, see BENCHMARKS.md): as shipped, only IDLE_SHIPPED connections are opened (and
  # the driver stops at 3 GiB); then a fresh hub with glibc's mmap threshold pinned at 1 MiB
  # (MALLOC_MMAP_THRESHOLD_, a glibc tunable, no code change) gets all IDLE connections.
  IDLE_SHIPPED=${IDLE_SHIPPED:-100}
  # The mailbox the IDLE sessions select: each session keeps its own copy of the selected
  # mailbox's message list, so the INBOX (MESSAGES messages) costs far more than Drafts (empty).
  IDLE_MAILBOX=${IDLE_MAILBOX:-INBOX}
  restart_hub
  echo "== mshub as shipped (fresh start): $IDLE_SHIPPED concurrent IDLE connections"
  echo "  before: RSS $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"
  $B idle "$IMAPS" "$CERT" "$USER_ADDR" "$PASS" "$IDLE_SHIPPED" "$hub_pid" 3
  restart_hub MALLOC_MMAP_THRESHOLD_=1048576
  echo "== mshub with MALLOC_MMAP_THRESHOLD_=1048576 (fresh start): $IDLE concurrent IDLE connections on $IDLE_MAILBOX (ulimit -n $(ulimit -n))"
  echo "  before: RSS $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"
  $B idle "$IMAPS" "$CERT" "$USER_ADDR" "$PASS" "$IDLE" "$hub_pid" 5 "$IDLE_MAILBOX"
fi
