#!/usr/bin/env bash
# Logins under a flood: peak memory of the hub when many wrong-password IMAP LOGINs arrive at
# once (each one an argon2id verification of 19 MiB).
#
#   bench/login-flood.sh [CLIENTS [SOURCES]]   (defaults 500 clients, 20 source addresses)
#
# Since the IMAP listener keeps at most 20 connections before login per source address,
# more than 20 clients per address are partly refused at connect ("connect: …" lines): give
# SOURCES ≥ CLIENTS / 20 (e.g. 500 25) to flood with every LOGIN.
# mshub runs `mshub demo` from a release build on a temporary directory with free ports (log
# filter `warn`). CLIENTS Python threads, spread over SOURCES loopback addresses (127.0.1.1,
# 127.0.1.2, …), each open one IMAP connection over TLS (verifying the demo certificate), wait
# until every client is connected, then all send one LOGIN with a wrong password at once, each
# for another unknown address of the hub's domain: an unknown account costs the same
# verification as a known one, and no per-account throttling can spare it. Each client makes
# exactly one attempt and waits at most 120 s for its answer.
# Prints how many got NO [AUTHENTICATIONFAILED] (checked and refused), NO [UNAVAILABLE]
# (throttled or too busy: a temporary failure), anything else, the time from the first LOGIN
# to the last answer, and the hub's peak RSS (VmHWM) before and after the flood.
# MSHUB=path runs that binary instead of building the tree (e.g. a build of a given commit).
# Everything listens on 127.0.0.1 only; the hub is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-500}
SOURCES=${2:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"

if [ -n "${MSHUB:-}" ]; then
  bin="$MSHUB"
else
  cargo build --release --bin mshub -q
  bin="$CARGO_TARGET_DIR/release/mshub"
fi

work=$(mktemp -d)
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
TOML
"$bin" demo --data "$work" > "$work/out" &
hub_pid=$!
until grep -q "mshub ready" "$work/out"; do
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/out"; exit 1; }
  sleep 0.2
done

hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$hub_pid/status"; }
echo "mshub $("$bin" --version 2>/dev/null || echo "$bin"), $(nproc) cores; peak RSS after start: $(hwm) MiB"

python3 - "$IMAPS" "$work/tls/cert.pem" "$CLIENTS" "$SOURCES" <<'PY'
import imaplib, socket, ssl, sys, threading, time

port, ca, clients, sources = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
context = ssl.create_default_context(cafile=ca)

class Client(imaplib.IMAP4_SSL):
    """IMAP over TLS from a chosen loopback source address."""
    def __init__(self, source):
        self.source = source
        super().__init__("localhost", port, ssl_context=context, timeout=120)

    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname="localhost")

ready = threading.Barrier(clients + 1, timeout=120)
answers = [None] * clients

def one(i):
    client = None
    try:
        client = Client(f"127.0.1.{i % sources + 1}")
    except Exception as e:
        answers[i] = f"connect: {type(e).__name__}"
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    if client is None:
        return
    try:
        client.login(f"flood-{i}@hopital.mshub.test", "not-the-password")
        answers[i] = "OK (unexpected)"
    except imaplib.IMAP4.error as e:
        text = str(e)
        answers[i] = ("NO [AUTHENTICATIONFAILED]" if "AUTHENTICATIONFAILED" in text
                      else "NO [UNAVAILABLE]" if "UNAVAILABLE" in text else f"NO other: {text}")
    except Exception as e:
        answers[i] = f"error: {type(e).__name__}"
    finally:
        try:
            client.shutdown()
        except Exception:
            pass

threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
for t in threads:
    t.start()
try:
    ready.wait()
except threading.BrokenBarrierError:
    print("not every client connected within 120 s")
start = time.monotonic()
for t in threads:
    t.join(timeout=max(0.0, 150 - (time.monotonic() - start)))
took = time.monotonic() - start
counts = {}
for a in answers:
    counts[a or "no answer"] = counts.get(a or "no answer", 0) + 1
print(f"{clients} wrong-password LOGINs from {sources} addresses, answered in {took:.1f} s:")
for answer, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"  {n:5d}  {answer}")
PY
echo "peak RSS (VmHWM) after the flood: $(hwm) MiB"
