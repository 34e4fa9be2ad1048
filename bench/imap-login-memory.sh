#!/usr/bin/env bash
# Peak memory of the hub when 20 mail clients log in together: its RSS idle, then while
# CLIENTS IMAP clients over TLS send LOGIN at the same moment (a barrier), stay logged in a
# few seconds, SELECT INBOX, FETCH 1:* (FLAGS) and LOGOUT, for ROUNDS rounds. Goal: the peak
# under 100 MiB above idle.
#
#   bench/imap-login-memory.sh [CLIENTS [ROUNDS [STAY [MESSAGES]]]]
#                              (defaults 20 clients, 5 rounds, 3 s logged in, 100 messages)
#   CACHES="300 0" (default): one hub per value of [accounts] auth_cache_secs (300 is the
#     default, the authentication cache on; 0: off, every LOGIN an argon2id verification of
#     19 MiB), each started afresh.
#   ACCOUNTS=distinct (default): one professional account per client (bench-NN@, created
#     with `mshub account add` before the run: 20 colleagues logging in at 8 am; their first
#     round hashes even with the cache on). ACCOUNTS=one: every client is dr.martin.
#   MSHUB=path runs that binary instead of building the tree (release build).
#
# Each hub: `mshub demo` on a temporary directory with free ports (log filter `warn`); the
# accounts' INBOXes filled by APPEND (MESSAGES small messages each), then the hub restarted
# (so that the authentication cache remembers none of the fill's logins); 3 s of quiet, then the
# idle VmRSS is read. Before each round the peak counter is reset (`5 > /proc/PID/clear_refs`:
# VmHWM back to the current RSS; needs root or the hub's owner) and read after it: the
# kernel's peak of that round. A thread also reads VmRSS every 100 ms. The peak reported is
# the highest of both; "minus idle" subtracts the idle VmRSS. Each round: every client
# connects (TLS, the demo certificate verified), all wait at a barrier, all send LOGIN, stay
# STAY s, SELECT INBOX, FETCH 1:* (FLAGS), LOGOUT. Clients come from 4 loopback addresses
# (127.0.3.1-4: the listener keeps at most 20 connections per address before login).
# Everything listens on 127.0.0.1 only; the hub is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-20}
ROUNDS=${2:-5}
STAY=${3:-3}
MESSAGES=${4:-100}
CACHES=${CACHES:-300 0}
ACCOUNTS=${ACCOUNTS:-distinct}
case "$ACCOUNTS" in distinct|one) ;; *) echo "ACCOUNTS: distinct or one" >&2; exit 2 ;; esac
[ "$CLIENTS" -le 80 ] || { echo "at most 80 clients" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"

if [ -n "${MSHUB:-}" ]; then
  bin="$MSHUB"
else
  cargo build --release --bin mshub -q
  bin="$CARGO_TARGET_DIR/release/mshub"
fi

work=""
hub_pid=""
stop_hub() {
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  hub_pid=""
}
cleanup() {
  stop_hub
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_hub() {
  rm -f "$work/out"
  "$bin" demo --data "$work" > "$work/out" &
  hub_pid=$!
  until grep -qs "mshub ready" "$work/out"; do
    kill -0 "$hub_pid" 2>/dev/null || { cat "$work/out"; exit 1; }
    sleep 0.2
  done
}

echo "mshub $("$bin" --version 2>/dev/null || echo "$bin"), $(nproc) cores; $CLIENTS clients ($ACCOUNTS account(s)), $ROUNDS rounds, $STAY s logged in, $MESSAGES messages per INBOX"
for cache in $CACHES; do
  work=$(mktemp -d)
  IMAPS=$(free_port)
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
[accounts]
auth_cache_secs = $cache
TOML
  logins="$work/logins"
  if [ "$ACCOUNTS" = distinct ]; then
    # The demo's store is created on the first start; accounts are added with the hub stopped.
    start_hub
    stop_hub
    for i in $(seq 1 "$CLIENTS"); do
      # RPPS: 11 digits, Luhn-valid (1000000NNN plus its check digit).
      rpps=$(python3 -c '
import sys
s = "1000000%03d" % int(sys.argv[1])
t = sum(((2 * d if 2 * d < 10 else 2 * d - 9) if i % 2 else d) for i, d in enumerate(int(c) for c in reversed(s + "0")))
print(s + str((10 - t % 10) % 10))' "$i")
      printf 'bench-password-%02d\n' "$i" | "$bin" --config "$work/mshub.toml" account add \
        "$(printf 'bench-%02d@hopital.mshub.test' "$i")" professional --rpps "$rpps" \
        --given-name Bench --family-name "N$i" --profession physician --password-stdin >/dev/null
      printf 'bench-%02d@hopital.mshub.test bench-password-%02d\n' "$i" "$i" >> "$logins"
    done
  else
    for _ in $(seq 1 "$CLIENTS"); do echo "dr.martin@hopital.mshub.test demo-martin" >> "$logins"; done
  fi
  cat > "$work/clients.py" <<'PY'
import imaplib, socket, ssl, sys, threading, time

mode = sys.argv[1]
port, ca, pid, logins = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
rounds, stay, messages = int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
accounts = [tuple(l.split()) for l in open(logins) if l.strip()]
clients = len(accounts)
context = ssl.create_default_context(cafile=ca)

def status():
    kib = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                kib[key] = int(value.split()[0])
    return kib

def mib(kib):
    return f"{kib / 1024:.1f} MiB"

class Client(imaplib.IMAP4_SSL):
    def __init__(self, source):
        self.source = source
        super().__init__("localhost", port, ssl_context=context, timeout=120)

    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname="localhost")

# Fill each distinct account's INBOX.
for user, password in sorted(set(accounts)) if mode == "fill" else []:
    m = Client("127.0.0.1")
    m.login(user, password)
    for i in range(messages):
        body = (f"From: Laboratoire <labo@hopital.mshub.test>\r\nTo: {user}\r\n"
                f"Subject: result {i}\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
                f"Message-ID: <bench-{i}-{user}>\r\n\r\nResultat {i}: normal.\r\n")
        typ, data = m.append("INBOX", None, None, body.encode())
        assert typ == "OK", data
    m.logout()
if mode == "fill":
    sys.exit(0)

time.sleep(3)
idle = status()
print(f"  idle: VmRSS {mib(idle['VmRSS'])}, VmHWM since start {mib(idle['VmHWM'])}")
with open(f"/proc/{pid}/clear_refs", "w") as f:
    f.write("5")
idle = status()

peak_sampled = [idle["VmRSS"]]
sampling = True
def sampler():
    while sampling:
        peak_sampled[0] = max(peak_sampled[0], status()["VmRSS"])
        time.sleep(0.1)
threading.Thread(target=sampler, daemon=True).start()

outcomes = {}
lock = threading.Lock()
login_times = []
def count(what):
    with lock:
        outcomes[what] = outcomes.get(what, 0) + 1

round_peaks = []
for r in range(rounds):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    barrier = threading.Barrier(clients, timeout=120)
    def one(i):
        user, password = accounts[i]
        client = None
        try:
            client = Client(f"127.0.3.{i % 4 + 1}")
        except Exception as e:
            count(f"connect: {type(e).__name__}")
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        if client is None:
            return
        try:
            start = time.monotonic()
            client.login(user, password)
            with lock:
                login_times.append(time.monotonic() - start)
            time.sleep(stay)
            typ, data = client.select("INBOX")
            assert typ == "OK", data
            typ, data = client.fetch("1:*", "(FLAGS)")
            assert typ == "OK" and len(data) == messages, (typ, len(data))
            client.logout()
            count("OK")
        except imaplib.IMAP4.error as e:
            count(f"NO/BAD: {e}")
        except Exception as e:
            count(f"error: {type(e).__name__}: {e}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.5)
    round_peaks.append(status()["VmHWM"])

sampling = False
time.sleep(0.2)
after = status()
peak = max(round_peaks + peak_sampled)
login_times.sort()
print(f"  sessions: {', '.join(f'{n} {k}' for k, n in sorted(outcomes.items()))}")
if login_times:
    print(f"  LOGIN answered in: median {login_times[len(login_times) // 2] * 1000:.0f} ms, "
          f"max {login_times[-1] * 1000:.0f} ms")
print(f"  idle VmRSS (after the fill, 3 s quiet): {mib(idle['VmRSS'])}")
print(f"  peak VmRSS sampled every 100 ms: {mib(peak_sampled[0])}")
print(f"  peak VmHWM per round: {', '.join(mib(p) for p in round_peaks)}")
print(f"  VmRSS after the rounds: {mib(after['VmRSS'])}")
print(f"  PEAK: {mib(peak)}, MINUS IDLE: {mib(peak - idle['VmRSS'])} "
      f"(per round: {', '.join(mib(p - idle['VmRSS']) for p in round_peaks)})")
PY
  # The INBOXes are filled, then the hub restarted: no login of the fill is remembered by
  # the authentication cache, nor counted in the idle figure.
  start_hub
  python3 "$work/clients.py" fill "$IMAPS" "$work/tls/cert.pem" "$hub_pid" "$logins" "$ROUNDS" "$STAY" "$MESSAGES"
  stop_hub
  start_hub
  echo
  echo "auth_cache_secs = $cache:"
  python3 "$work/clients.py" measure "$IMAPS" "$work/tls/cert.pem" "$hub_pid" "$logins" "$ROUNDS" "$STAY" "$MESSAGES"
  stop_hub
  rm -rf "$work"
  work=""
done
