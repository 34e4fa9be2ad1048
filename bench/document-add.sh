#!/usr/bin/env bash
# A patient adds a document from the web inbox (issue "Documents", ajout par le patient: "a 10
# MiB PDF added and listed in under 300 ms"): the multipart POST of /documents/ajouter until its
# 303, then the GET of /documents that lists it, timed N times for a 10 MiB PDF and, for scale,
# a 1 MiB PDF; and the data directory's growth per document added.
#
#   bench/document-add.sh [N]   (default 20 adds of each size)
#
# mshub runs `mshub demo` from a release build (embedded store: sled and blob files) on a
# temporary directory with free ports (log filter `warn`; the per-session form-post throttle,
# [webmail] posts_per_minute, raised so that N may exceed it: it counts, it costs nothing).
# The demo patient Camille signs in through the real login form; each add is one curl run, like
# a browser: the form's CSRF field, the file as `-F file=@…;type=application/pdf` with a type,
# a title (unique per add), today's date, no `Expect: 100-continue`; then, on the same
# connection, GET /documents, which must list the new title. Times are curl's
# `%{time_total}` of each transfer; "add" includes the connection and TLS handshake (reported
# apart: a browser usually has its connection already), "list" reuses the connection.
# The PDFs are a `%PDF-1.4` header, one stream of random bytes (incompressible, like a scan)
# and a `%%EOF` trailer: the vault checks both ends. One add of each size is made first and
# not counted (it creates the patient's key and warms the caches).
# Prints min / median / p90 / max in ms and the failures (must be 0); exits 1 on a failure.
# MSHUB_BIN=path runs that binary instead of building the tree. Everything listens on 127.0.0.1
# only; the hub is stopped and the temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
PATIENT=284057511204339@patient.mshub.test
PASS=demo-camille

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
HTTPS=$(free_port)
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
imaps = "127.0.0.1:0"
https = "127.0.0.1:$HTTPS"
admin = "127.0.0.1:0"
[webmail]
posts_per_minute = 100000
[log]
filter = "${MSHUB_LOG:-warn}"
TOML
: > "$work/out"
"$MSHUB" demo --data "$work" > "$work/out" 2>&1 &
hub_pid=$!
until grep -q "mshub ready" "$work/out"; do
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/out"; exit 1; }
  sleep 0.2
done
CERT="$work/tls/cert.pem"
BASE="https://localhost:$HTTPS"
# The demo certificate names localhost; pin it to the loopback address the hub listens on.
TLS=(--cacert "$CERT" --resolve "localhost:$HTTPS:127.0.0.1")
JAR="$work/jar"
CURL=(curl -sS "${TLS[@]}" -b "$JAR" -c "$JAR")

# Sign in: the login form's CSRF cookie and field, then the form posted.
csrf=$("${CURL[@]}" "$BASE/login" | sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' | head -1)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-urlencode "_csrf=$csrf" \
  --data-urlencode "login=$PATIENT" --data-urlencode "password=$PASS" "$BASE/login")
[ "$code" = 303 ] || { echo "login answered $code" >&2; exit 1; }
# The add form's CSRF field (the session's token: the same for every post of the session).
csrf=$("${CURL[@]}" "$BASE/documents/ajouter" | sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' | head -1)
[ -n "$csrf" ] || { echo "no CSRF field on /documents/ajouter" >&2; exit 1; }

# A valid PDF of exactly $2 bytes: header, one stream of random bytes, trailer and %%EOF.
make_pdf() { # path bytes
  python3 - "$1" "$2" <<'PY'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n" \
       b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
tail = b"\nendstream\nendobj\ntrailer <</Size 4 /Root 1 0 R>>\n%%EOF\n"
n = size - len(head) - len(tail)
n -= len(b"3 0 obj <</Length %d>>\nstream\n" % n)
stream = b"3 0 obj <</Length %d>>\nstream\n" % n
with open(path, "wb") as f:
    f.write(head + stream + os.urandom(n) + tail)
assert os.path.getsize(path) == size, os.path.getsize(path)
PY
}

STORE="$work/store"
bytes_of() { du -sb "$1" | cut -f1; }
today=$(date +%F)

# One add and its listing on one connection; appends "add_s list_s handshake_s ok" to $3.
add_and_list() { # pdf title results
  local out status location listed add_t list_t list_status handshake
  out=$(curl -sS "${TLS[@]}" -b "$JAR" -H 'Expect:' \
      -F "_csrf=$csrf" -F "file=@$1;type=application/pdf;filename=scan.pdf" \
      -F "type=11502-2" -F "title=$2" -F "date=$today" \
      -o "$work/added" -w '%{http_code} %{time_total} %{time_appconnect} %{redirect_url}\n' \
      "$BASE/documents/ajouter" \
    --next "${TLS[@]}" -b "$JAR" -o "$work/list" -w '%{http_code} %{time_total}\n' \
      "$BASE/documents") || out=""
  read -r status add_t handshake location <<<"$(sed -n 1p <<<"$out")"
  read -r list_status list_t <<<"$(sed -n 2p <<<"$out")"
  listed=0
  if [ "${status:-}" = 303 ] && [[ "${location:-}" == "$BASE/documents/"* ]] \
      && [ "${list_status:-}" = 200 ] && grep -qF ">$2<" "$work/list"; then
    listed=1
  else
    echo "  failed: POST ${status:-?} (${location:-no location}), GET /documents ${list_status:-?}" >&2
  fi
  echo "${add_t:-0} ${list_t:-0} ${handshake:-0} $listed" >> "$3"
}

run_size() { # label bytes
  local label=$1 size=$2 pdf="$work/$1.pdf" results="$work/$1.times" before after blobs0 blobs1
  make_pdf "$pdf" "$size"
  : > "$work/warm"
  add_and_list "$pdf" "Échauffement $label" "$work/warm"
  [ "$(cut -d' ' -f4 "$work/warm")" = 1 ] || { echo "$label: the warm-up add failed" >&2; exit 1; }
  sync
  before=$(bytes_of "$STORE"); blobs0=$(bytes_of "$STORE/blobs")
  : > "$results"
  for i in $(seq "$N"); do
    add_and_list "$pdf" "Bench $label n$i $RANDOM$RANDOM" "$results"
  done
  sync
  after=$(bytes_of "$STORE"); blobs1=$(bytes_of "$STORE/blobs")
  # Sealed, not copied in clear: a piece of the random stream appears nowhere in the store,
  # and the last document reads back identical.
  python3 - "$pdf" "$STORE" <<'PY' || exit 1
import os, sys
probe = open(sys.argv[1], "rb").read()[4096:4096 + 64]
for root, _, files in os.walk(sys.argv[2]):
    for name in files:
        path = os.path.join(root, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue  # the control socket
        with open(path, "rb") as f:
            if probe in f.read():
                sys.exit(f"plain bytes of the PDF found in {name}")
PY
  local last
  last=$(sed -n 's/.*href="\(\/documents\/[^"]*\)">Bench '"$label n$N"' .*/\1/p' "$work/list" | head -1)
  [ -n "$last" ] && curl -sS "${TLS[@]}" -b "$JAR" -o "$work/back" "$BASE$last/file"
  cmp -s "$pdf" "$work/back" || { echo "$label: the document read back ($last) differs" >&2; exit 1; }
  echo "$label: no plain bytes of the PDF in the store; the last one reads back identical"
  python3 - "$label" "$size" "$N" "$results" "$before" "$after" "$blobs0" "$blobs1" <<'PY'
import statistics, sys
label, size, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
before, after, blobs0, blobs1 = map(int, sys.argv[5:9])
rows = [line.split() for line in open(path)]
ok = [r for r in rows if r[3] == "1"]
fails = len(rows) - len(ok)
def stats(values):
    v = sorted(values)
    if not v:
        return "no data"
    p90 = v[min(len(v) - 1, max(0, -(-len(v) * 90 // 100) - 1))]  # nearest rank
    return (f"min {v[0]:7.1f}  median {statistics.median(v):7.1f}  "
            f"p90 {p90:7.1f}  max {v[-1]:7.1f}")
add = [float(r[0]) * 1000 for r in ok]
lst = [float(r[1]) * 1000 for r in ok]
both = [a + l for a, l in zip(add, lst)]
hs = [float(r[2]) * 1000 for r in ok]
print(f"{label} PDF ({size} bytes), {n} adds, ms:")
print(f"  add (POST until 303)  {stats(add)}")
print(f"  list (GET /documents) {stats(lst)}")
print(f"  add + list            {stats(both)}")
print(f"  of the add, TCP+TLS set-up: median {statistics.median(hs) if hs else 0:.1f}")
print(f"  failures: {fails}")
print(f"  data directory growth: {(after - before) / n / 1048576:.2f} MiB per document "
      f"({(after - before) / n / size:.3f} × the file), of which blob files "
      f"{(blobs1 - blobs0) / n / 1048576:.2f} MiB")
sys.exit(1 if fails else 0)
PY
}

echo "mshub $("$MSHUB" --version 2>/dev/null || echo "$MSHUB"), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
run_size 1MiB $((1024 * 1024)) || status=1
run_size 10MiB $((10 * 1024 * 1024)) || status=1
echo "documents listed at the end: $(grep -o '<li' "$work/list" | wc -l); mshub RSS $(( $(ps -o rss= -p "$hub_pid") / 1024 )) MiB"
exit $status
