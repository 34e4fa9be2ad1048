#!/usr/bin/env bash
# Scale-out throughput: one hub node against two, both on the same PostgreSQL (records) and the
# same Garage bucket (sealed blobs); then a roster import on PostgreSQL.
#
#   bench/scaleout.sh [SMTP_MESSAGES [IMAP_MESSAGES [ROSTER_PATIENTS]]]
#                                         (defaults 5000 messages, 2000 messages, 100000 patients)
#   MSHUB=path   use this mshub binary instead of building the release one
#
# 1. A throwaway PostgreSQL cluster (Debian's newest, initdb as `postgres`, loopback port,
#    fsync on, synchronous_commit on) and a single-node Garage with a bucket and a key.
# 2. Node A: `mshub demo --data A` with `[store] backend = "postgres"` and `[blobs] backend =
#    "s3"` (keys, certificate, demo accounts go straight into PostgreSQL); node B: `mshub serve`
#    with A's master key and certificate, its own data directory, the same database and bucket.
#    a. smtp-source (10 KB, HELO, one patient recipient) on the relay ports
#       (`bench_plaintext_loopback`): 20 sessions into A, then the same total as 10 sessions into
#       A and 10 into B at the same time.
#    b. bench/imap_bench.py's workload (20 clients x 2 rounds) on A alone, then 10 clients on A
#       and 10 on B at the same time, on the same mailbox.
#    c. `mshub account import` of the CSV bench/roster-import.sh generates, into a fresh
#       database: time, patients/s, peak RSS (/usr/bin/time), pg_database_size, rows.
# "PostgreSQL transactions/s" is pg_stat_database.xact_commit over the run: it counts read-only
# transactions (each statement outside a transaction is one) as well as writes.
# Everything listens on 127.0.0.1 only and is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
IMAP_N=${2:-2000}
ROSTER=${3:-100000}
SIZE=10240
CLIENTS=20
ROUNDS=2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
GARAGE=${MSHUB_GARAGE:-${GARAGE_ROOT:-/var/tmp/garage-bin}/bin/garage}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL (scripts/install-deps --tests)" >&2; exit 1; }
[ -x "$GARAGE" ] || { echo "no Garage at $GARAGE (scripts/install-deps --tests)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "no smtp-source (run bench/smtp-inbound.sh once, or apt-get install postfix)" >&2; exit 1; }
if [ -z "${MSHUB:-}" ]; then
  cargo build --release --bin mshub -q
  MSHUB="$CARGO_TARGET_DIR/release/mshub"
fi

work=$(mktemp -d)
chmod 755 "$work"
pids=()
pg_started=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$pg_started" ] && as_pg "$PG_BIN/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }

# --- PostgreSQL ---------------------------------------------------------------------------
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work/pg"
as_pg "$PG_BIN/initdb" -D "$work/pg/data" -U mshub --auth=trust -E UTF8 --locale=C >/dev/null
PGPORT=$(free_port)
as_pg "$PG_BIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o \
  "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$work/pg' -c fsync=on -c synchronous_commit=on -c max_connections=200" \
  start >/dev/null
pg_started=1
psql_() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U mshub -At "$@"; }
psql_ -d postgres -c "CREATE DATABASE hub" >/dev/null
psql_ -d postgres -c "CREATE DATABASE roster" >/dev/null
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (fsync on)"

# --- Garage -------------------------------------------------------------------------------
read -r RPC S3 ADMIN < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])')
g="$work/garage"
mkdir -p "$g"
cat > "$g/garage.toml" <<TOML
metadata_dir = "$g/meta"
data_dir = "$g/data"
db_engine = "sqlite"
metadata_fsync = true
data_fsync = true
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC"
rpc_public_addr = "127.0.0.1:$RPC"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ADMIN"
admin_token = "$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
TOML
chmod 600 "$g/garage.toml"
RUST_LOG=garage=warn "$GARAGE" -c "$g/garage.toml" server > "$g/log" 2>&1 &
pids+=($!)
gcli() { RUST_LOG=warn "$GARAGE" -c "$g/garage.toml" "$@"; }
for _ in $(seq 300); do gcli status >/dev/null 2>&1 && break; sleep 0.2; done
node=$(gcli node id -q | cut -d@ -f1)
gcli layout assign -z dc1 -c 1G "$node" >/dev/null
gcli layout apply --version 1 >/dev/null
export MSHUB_S3_ACCESS_KEY_ID="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
export MSHUB_S3_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
gcli key import --yes -n bench "$MSHUB_S3_ACCESS_KEY_ID" "$MSHUB_S3_SECRET_ACCESS_KEY" >/dev/null
gcli bucket create mshub >/dev/null
gcli bucket allow --read --write --owner mshub --key "$MSHUB_S3_ACCESS_KEY_ID" >/dev/null
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $S3)).close()" 2>/dev/null; do sleep 0.2; done
echo "Garage $(gcli --version 2>/dev/null | awk '{print $2}') on 127.0.0.1:$S3 (fsync on)"

# --- two hub nodes ------------------------------------------------------------------------
node_config() { # dir relay imaps key tls-section
  mkdir -p "$1/store"
  cat > "$1/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "$4"
local_domains = ["hopital.mshub.test"]
[store]
backend = "postgres"
url = "postgres://mshub@127.0.0.1:$PGPORT/hub"
pool_size = 16
[blobs]
backend = "s3"
endpoint = "http://127.0.0.1:$S3"
bucket = "mshub"
region = "garage"
prefix = "blobs"
$5
[listen]
smtp_relay = "127.0.0.1:$2"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:$3"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
[log]
filter = "warn"
[mta]
bench_plaintext_loopback = true
max_connections_per_source = 2000
TOML
}
wait_ready() { # out-file pid
  until grep -qs "mshub ready" "$1"; do
    kill -0 "$2" 2>/dev/null || { echo "a hub node exited at start:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.2
  done
}
A="$work/a"; B="$work/b"
RELAY_A=$(free_port); RELAY_B=$(free_port); IMAPS_A=$(free_port); IMAPS_B=$(free_port)
node_config "$A" "$RELAY_A" "$IMAPS_A" master.key ""
"$MSHUB" demo --data "$A" > "$A/out" 2>&1 &
pid_a=$!; pids+=("$pid_a")
wait_ready "$A/out" "$pid_a"
"$MSHUB" --config "$A/mshub.toml" domain trust lab.bench.test >/dev/null
# Restart A so that it reads the trusted domain at start, as smtp-inbound.sh does.
kill "$pid_a"; wait "$pid_a" || true
"$MSHUB" demo --data "$A" > "$A/out" 2>&1 &
pid_a=$!; pids+=("$pid_a")
wait_ready "$A/out" "$pid_a"
node_config "$B" "$RELAY_B" "$IMAPS_B" "$A/master.key" \
  "[tls]
cert = \"$A/tls/cert.pem\"
key = \"$A/tls/key.pem\""
"$MSHUB" --config "$B/mshub.toml" serve > "$B/out" 2>&1 &
pid_b=$!; pids+=("$pid_b")
wait_ready "$B/out" "$pid_b"
CERT="$A/tls/cert.pem"
echo "nodes: A (demo) relay $RELAY_A imaps $IMAPS_A, B (serve) relay $RELAY_B imaps $IMAPS_B"
cpu() { ps -o times= -p "$1" | tr -d ' '; }
pg_xacts() { psql_ -d hub -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'hub'"; }
# WAL flushes to disk (fsync of the WAL): the durable commits, several grouped into one.
wal_syncs() { psql_ -d postgres -c "SELECT wal_sync FROM pg_stat_wal"; }

# --- a. SMTP ------------------------------------------------------------------------------
smtp() { # sessions messages host:port
  smtp-source -s "$1" -l "$SIZE" -m "$2" -f results@lab.bench.test \
    -t 284057511204339@patient.mshub.test "$3"
}
echo "== SMTP: $N messages of $SIZE bytes"
c0=$(pg_xacts); w0=$(wal_syncs); ca=$(cpu "$pid_a"); t0=$(date +%s.%N)
smtp "$CLIENTS" "$N" "127.0.0.1:$RELAY_A"
t1=$(date +%s.%N); c1=$(pg_xacts); w1=$(wal_syncs)
echo "  one node, $CLIENTS sessions: $(python3 -c "print(f'{$t1-$t0:.1f}')") s, $(rate "$N" "$t0" "$t1") msgs/s," \
  "PostgreSQL transactions/s $(rate "$((c1 - c0))" "$t0" "$t1"), WAL flushes/s $(rate "$((w1 - w0))" "$t0" "$t1"), hub CPU s $(( $(cpu "$pid_a") - ca ))"
half=$((N / 2))
ca=$(cpu "$pid_a"); cb=$(cpu "$pid_b"); t0=$(date +%s.%N)
smtp $((CLIENTS / 2)) "$half" "127.0.0.1:$RELAY_A" & s1=$!
smtp $((CLIENTS / 2)) "$half" "127.0.0.1:$RELAY_B" & s2=$!
wait "$s1"; wait "$s2"
t1=$(date +%s.%N); c2=$(pg_xacts); w2=$(wal_syncs)
echo "  two nodes, $((CLIENTS / 2)) sessions each: $(python3 -c "print(f'{$t1-$t0:.1f}')") s, $(rate $((2 * half)) "$t0" "$t1") msgs/s," \
  "PostgreSQL transactions/s $(rate "$((c2 - c1))" "$t0" "$t1"), WAL flushes/s $(rate "$((w2 - w1))" "$t0" "$t1"), hub CPU s A $(( $(cpu "$pid_a") - ca )) B $(( $(cpu "$pid_b") - cb ))"
echo "  RSS A $(( $(ps -o rss= -p "$pid_a") / 1024 )) MiB, B $(( $(ps -o rss= -p "$pid_b") / 1024 )) MiB;" \
  "database $(psql_ -d hub -c "SELECT pg_size_pretty(pg_database_size('hub'))")," \
  "bucket: $(gcli bucket info mshub 2>/dev/null | grep -iE '^ *objects' | tr -s ' ' | head -1)"
# Every accepted message is a `message` record (the demo starts with none): a shortfall is a
# message acknowledged and lost, and fails the run.
stored=$(psql_ -d hub -c "SELECT count(*) FROM kv WHERE tree = 'message'")
echo "  messages stored: $stored (sent $((N + 2 * half)))"
[ "$stored" -ge $((N + 2 * half)) ] || { echo "  FAILED: fewer messages stored than sent" >&2; exit 1; }
echo "  records per tree (rows, bytes of the rows), largest first:"
psql_ -d hub -F ' ' -c "SELECT tree, count(*), pg_size_pretty(sum(pg_column_size(kv.*)))
  FROM kv GROUP BY tree ORDER BY sum(pg_column_size(kv.*)) DESC LIMIT 8" | sed 's/^/    /'

# --- b. IMAP ------------------------------------------------------------------------------
USER_ADDR=dr.martin@hopital.mshub.test
PASS=demo-martin
BENCH="python3 bench/imap_bench.py"
echo "== IMAP: $IMAP_N messages in $USER_ADDR's INBOX, $CLIENTS clients x $ROUNDS rounds"
$BENCH load "$IMAPS_A" "$CERT" "$USER_ADDR" "$PASS" "$IMAP_N" | sed 's/^/  /'
echo "  -- one node (A)"
$BENCH run "$IMAPS_A" "$CERT" "$USER_ADDR" "$PASS" "$CLIENTS" "$ROUNDS" 1 | sed 's/^/  /'
echo "  -- two nodes at once: $((CLIENTS / 2)) clients on A, $((CLIENTS / 2)) on B"
c0=$(pg_xacts); t0=$(date +%s.%N)
$BENCH run "$IMAPS_A" "$CERT" "$USER_ADDR" "$PASS" $((CLIENTS / 2)) "$ROUNDS" 2 > "$work/imap-a" & i1=$!
$BENCH run "$IMAPS_B" "$CERT" "$USER_ADDR" "$PASS" $((CLIENTS / 2)) "$ROUNDS" 3 > "$work/imap-b" & i2=$!
wait "$i1"; wait "$i2"
t1=$(date +%s.%N); c1=$(pg_xacts)
sed 's/^/  A: /' "$work/imap-a"; sed 's/^/  B: /' "$work/imap-b"
echo "  two nodes together: $((CLIENTS * ROUNDS)) workloads in $(python3 -c "print(f'{$t1-$t0:.1f}')") s," \
  "$(python3 -c "print(f'{$CLIENTS * $ROUNDS / ($t1 - $t0):.2f}')") workloads/s, PostgreSQL transactions/s $(rate "$((c1 - c0))" "$t0" "$t1")"
kill "$pid_b" "$pid_a"; wait "$pid_b" || true; wait "$pid_a" || true

# --- c. roster import on PostgreSQL -------------------------------------------------------
echo "== roster import: $ROSTER patients into PostgreSQL"
python3 - "$ROSTER" "$work/roster.csv" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(42)
with open(path, "w", encoding="utf-8") as out:
    out.write("ins;nom;prenom;date_naissance;sexe;email\n")
    for i in range(n):
        # Same generator as bench/roster-import.sh: unique up to 94 million patients.
        order, commune, dept = i % 1000, (i // 1000) % 990 + 1, (i // 990_000) % 94 + 1
        dept += dept >= 20
        sex = rnd.choice((1, 2))
        yy, mm, dd = rnd.randint(30, 99), rnd.randint(1, 12), rnd.randint(1, 28)
        body = f"{sex}{yy:02d}{mm:02d}{dept:02d}{commune:03d}{order:03d}"
        key = 97 - int(body) % 97
        out.write(f"{body}{key:02d};Durand;Camille;19{yy:02d}-{mm:02d}-{dd:02d};"
                  f"{'M' if sex == 1 else 'F'};\n")
PY
R="$work/roster"
mkdir -p "$R"
python3 -c 'import secrets; print(secrets.token_hex(32))' > "$R/master.key"
chmod 600 "$R/master.key"
cat > "$R/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "$R/data"
master_key_file = "$R/master.key"
[store]
backend = "postgres"
url = "postgres://mshub@127.0.0.1:$PGPORT/roster"
TOML
import_run() {
  local label=$1 c0 c1 w0 w1 secs rss
  w0=$(wal_syncs)
  c0=$(psql_ -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'roster'")
  /usr/bin/time -f '%e %M' -o "$work/time" "$MSHUB" --config "$R/mshub.toml" account import \
    "$work/roster.csv" > "$work/report" 2> "$work/stderr" || {
    echo "  $label FAILED:"; cat "$work/stderr" "$work/report"; exit 1; }
  c1=$(psql_ -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'roster'")
  w1=$(wal_syncs)
  read -r secs rss < "$work/time"
  printf '  %-10s %s patients in %6.1f s  %8s patients/s  peak RSS %4d MiB  database %s  transactions %d  WAL flushes %d\n' \
    "$label" "$ROSTER" "$secs" "$(python3 -c "print(f'{$ROSTER / max($secs, 0.001):,.0f}')")" \
    $((rss / 1024)) "$(psql_ -d roster -c "SELECT pg_size_pretty(pg_database_size('roster'))")" $((c1 - c0)) $((w1 - w0))
  head -1 "$work/report" | sed 's/^/             /'
}
import_run import
psql_ -d roster -c "VACUUM ANALYZE" >/dev/null
echo "  tables (rows, total size with indexes and TOAST):"
psql_ -d roster -F ' ' -c "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))
  FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 6" | sed 's/^/    /'
import_run re-import
