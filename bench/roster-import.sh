#!/usr/bin/env bash
# Roster import speed (issue "scale-out", Benchmark): N generated patients with valid INS keys
# imported by `mshub account import` on the embedded store (sled), release build.
#
#   bench/roster-import.sh N [--letters]
#
# Prints the time, patients/s, disk used by the data directory and peak RSS, then the same
# for a second import of the same file (idempotent: every line unchanged). With --letters,
# each created space's PDF notice is written too (and its disk use reported).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: bench/roster-import.sh N [--letters]}"
letters="${2:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mshub-target}"
cargo build --release -p mshub --quiet
bin="$CARGO_TARGET_DIR/release/mshub"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/roster.csv" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(42)
with open(path, "w", encoding="utf-8") as out:
    out.write("ins;nom;prenom;date_naissance;sexe;email\n")
    for i in range(n):
        # (department, commune, order) from i: unique up to 94 million patients.
        order, commune, dept = i % 1000, (i // 1000) % 990 + 1, (i // 990_000) % 94 + 1
        dept += dept >= 20  # 20 is Corsica, written 2A/2B
        sex = rnd.choice((1, 2))
        yy, mm, dd = rnd.randint(30, 99), rnd.randint(1, 12), rnd.randint(1, 28)
        body = f"{sex}{yy:02d}{mm:02d}{dept:02d}{commune:03d}{order:03d}"
        key = 97 - int(body) % 97
        out.write(f"{body}{key:02d};Durand;Camille;19{yy:02d}-{mm:02d}-{dd:02d};"
                  f"{'M' if sex == 1 else 'F'};\n")
PY
cat > "$work/mshub.toml" <<TOML
hub_domain = "mshub.test"
data_dir = "$work/data"
master_key_file = "$work/master.key"
TOML
python3 -c 'import secrets; print(secrets.token_hex(32))' > "$work/master.key"
chmod 600 "$work/master.key"

args=(account import "$work/roster.csv")
[ "$letters" = "--letters" ] && args+=(--letters "$work/letters")

run() {
  local label="$1"
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --config "$work/mshub.toml" "${args[@]}" \
    > "$work/report" 2> "$work/stderr" || { cat "$work/stderr" "$work/report"; exit 1; }
  read -r secs rss_kib < "$work/time"
  local rate
  rate=$(python3 -c "print(f'{$n / max($secs, 0.001):,.0f}')")
  printf '%-10s %s patients in %6.1f s  %12s patients/s  peak RSS %4d MiB  data %s\n' \
    "$label" "$n" "$secs" "$rate" $((rss_kib / 1024)) "$(du -sh "$work/data" | cut -f1)"
  head -1 "$work/report" | sed 's/^/           /'
}
run "import"
if [ -d "$work/letters" ]; then
  echo "           letters: $(du -sh "$work/letters" | cut -f1) in $(find "$work/letters" -name '*.pdf' | wc -l) files"
fi
run "re-import"
