#!/usr/bin/env bash
# benches/remote.sh: migsnap push / clone against `restic -r s3:` on the same
# S3 server on loopback (moto), on the same generated chat database, in one run.
#
#   bash benches/remote.sh            # 1G
#   bash benches/remote.sh 256M       # any size gen_chatdb accepts
#
# Measures, side by side:
#   1. first push of a first snapshot      vs  restic backup (first)
#   2. push after a 1%-changed snapshot    vs  restic backup (second):
#      bytes uploaded (the bucket's listing, before and after) and wall time
#   3. clone + checkout on a new machine   vs  restic restore (+ sync),
#      and clone --checkout in one step
#   also: fsck --remote [--read-data]      vs  restic check [--read-data]
#   also: the first push to an encrypted remote (`remote add --encrypt`).
# Snapshots themselves are not timed (benches/compare.sh measures them).
#
# Needs: restic (`apt-get install -y restic`; Debian's package, or a release
# binary from https://github.com/restic/restic/releases on PATH), sqlite3,
# /usr/bin/time, and a Python with moto[server] and boto3: the test venv
# (`bash scripts/test-venv.sh`, then it uses .venv/bin/python) or
# MIGSNAP_TEST_PYTHON. Writes the results between <!-- remote:begin --> and
# <!-- remote:end --> in docs/benchmarks.md and prints them.
#
# Environment knobs (defaults in brackets): SEED [42]  MUTATE_SEED [7]
#   JOURNAL [wal]  PERCENT [1]  BENCH_DATA [bench-data]
#   BENCH_DOC [docs/benchmarks.md]  REMOTE_NO_BUILD [0]: 1 = use the binaries
#   already in target/release.
#   REPS [3]: rounds of the restore steps (3.), whose medians are reported.
# The pushes and backups run once (each changes what the server holds);
# the restore steps, which only read, run REPS times. Timings are warm.
set -euo pipefail
trap 'echo "remote.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SIZE=${1:-1G}
SEED=${SEED:-42}
MUTATE_SEED=${MUTATE_SEED:-7}
JOURNAL=${JOURNAL:-wal}
PERCENT=${PERCENT:-1}
REPS=${REPS:-3}
DATA=$(realpath -m "${BENCH_DATA:-$ROOT/bench-data}")
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
MIGSNAP=$TARGET_DIR/release/migsnap
GEN=$TARGET_DIR/release/examples/gen_chatdb
PY=${MIGSNAP_TEST_PYTHON:-$ROOT/.venv/bin/python}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'remote.sh: %s\n' "$*" >&2; exit 1; }

command -v restic >/dev/null || die "restic is missing: apt-get install -y restic (or put a release binary from https://github.com/restic/restic/releases on PATH)"
command -v sqlite3 >/dev/null || die "sqlite3 is missing: apt-get install -y sqlite3"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install -y time"
"$PY" -c 'import moto, boto3' 2>/dev/null ||
    die "$PY has no moto and boto3: run bash scripts/test-venv.sh, or set MIGSNAP_TEST_PYTHON"

if [[ ${REMOTE_NO_BUILD:-0} != 1 ]]; then
    say "building migsnap and gen_chatdb (release)"
    cargo build --release --bin migsnap --example gen_chatdb >&2
fi
[[ -x $MIGSNAP && -x $GEN ]] || die "build migsnap and gen_chatdb with cargo build --release --bin migsnap --example gen_chatdb"

# --- the S3 server ------------------------------------------------------------
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ENDPOINT=http://127.0.0.1:$PORT
"$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true
export RESTIC_PASSWORD=bench
for _ in $(seq 100); do
    curl -s -o /dev/null "$ENDPOINT" && break
    sleep 0.2
done

# s3 OP ...: create BUCKET, or print the bytes under BUCKET/PREFIX.
s3() {
    "$PY" - "$ENDPOINT" "$@" <<'EOF'
import sys, boto3
endpoint, op, bucket = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint)
if op == "create":
    s3.create_bucket(Bucket=bucket)
else:
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sys.argv[4]):
        total += sum(o["Size"] for o in page.get("Contents", []))
    print(total)
EOF
}
for bucket in migsnap restic; do s3 create "$bucket"; done

# --- helpers ------------------------------------------------------------------
W=$DATA/remote-$SIZE
rm -rf "$W"
mkdir -p "$W"
LOG=$W/log.txt
: >"$LOG"

# timed CMD...: runs CMD once; sets T_WALL (s) and T_RSS (KiB).
timed() {
    local tf s e
    tf=$(mktemp)
    s=$(date +%s%N)
    echo "\$ $*" >>"$LOG"
    if ! /usr/bin/time -f '%M' -o "$tf" "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "command failed: $*"
    fi
    e=$(date +%s%N)
    T_WALL=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    T_RSS=$(tail -n 1 "$tf")
    rm -f "$tf"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
# By content: a checkout is verified against the snapshot's image, which
# SQLite may have stamped differently from the file's header bytes.
dump_sha() { sqlite3 "$1" .dump | sha256sum | cut -d' ' -f1; }

# --- data ---------------------------------------------------------------------
SRC=$DATA/chat-$SIZE-s$SEED-$JOURNAL.db
if [[ ! -f $SRC ]]; then
    say "generating $SRC"
    "$GEN" create --size "$SIZE" "$SRC" --seed "$SEED" --journal "$JOURNAL" >&2
fi
DB=$W/chat.db
cp "$SRC" "$DB"
db_bytes=$(stat -c %s "$DB")
M=("$MIGSNAP" --store "$W/.migsnap")
"${M[@]}" init >>"$LOG" 2>&1
"${M[@]}" track chat "$DB" >>"$LOG" 2>&1
"${M[@]}" snapshot chat -m first >>"$LOG" 2>&1
"${M[@]}" remote add origin s3://migsnap/plain --endpoint "$ENDPOINT" >>"$LOG" 2>&1
"${M[@]}" remote add sealed s3://migsnap/sealed --endpoint "$ENDPOINT" --encrypt >>"$LOG" 2>&1
RESTIC=(restic -r "s3:$ENDPOINT/restic" --cache-dir "$W/restic-cache")
"${RESTIC[@]}" init >>"$LOG" 2>&1

# --- 1. first push vs first restic backup --------------------------------------
say "1. first push"
timed "${M[@]}" push origin
push1_wall=$T_WALL push1_rss=$T_RSS
push1_bytes=$(s3 size migsnap plain/)
say "1. first push, encrypted"
timed "${M[@]}" push sealed
sealed_wall=$T_WALL
sealed_bytes=$(s3 size migsnap sealed/)
say "1. restic backup (first)"
timed "${RESTIC[@]}" backup --host bench "$DB"
restic1_wall=$T_WALL restic1_rss=$T_RSS
restic1_bytes=$(s3 size restic "")

# --- 2. after a 1% change ---------------------------------------------------------
say "2. mutate $PERCENT%"
"$GEN" mutate "$DB" --percent "$PERCENT" --seed "$MUTATE_SEED" >>"$LOG" 2>&1
"${M[@]}" snapshot chat -m "after $PERCENT%" >>"$LOG" 2>&1
mutated_sha=$(dump_sha "$DB")
say "2. push"
timed "${M[@]}" --format json push origin
push2_wall=$T_WALL
push2_bytes=$(($(s3 size migsnap plain/) - push1_bytes))
say "2. restic backup (second)"
timed "${RESTIC[@]}" backup --host bench "$DB"
restic2_wall=$T_WALL
restic2_bytes=$(($(s3 size restic "") - restic1_bytes))

# --- checks of the remote ---------------------------------------------------------
say "fsck --remote / restic check"
timed "${M[@]}" fsck --remote origin
fsck_wall=$T_WALL
timed "${RESTIC[@]}" check
check_wall=$T_WALL
say "fsck --remote --read-data / restic check --read-data"
timed "${M[@]}" fsck --remote origin --read-data
fsck_data_wall=$T_WALL
timed "${RESTIC[@]}" check --read-data
check_data_wall=$T_WALL

# --- 3. clone + checkout vs restic restore ---------------------------------------
say "3. clone + checkout"
NEW=$W/new-machine
mkdir -p "$NEW"
# Each step starts with nothing dirty in the page cache and, where we may
# (root), with the clean cache dropped: what they read is in moto's memory,
# not in files, and writing 1 GiB into a full page cache first has to
# reclaim it, which cost whichever step came after the most writes. A
# fresh CI machine starts that way.
fresh_memory() {
    sync
    if [[ -w /proc/sys/vm/drop_caches ]]; then echo 1 >/proc/sys/vm/drop_caches; fi
}
# Reading leaves the server as it was, so the restore steps are repeated:
# REPS rounds of the three, each round starting one step later (no step
# always holds the same place: on this VM, whichever writes first into
# memory the host has not backed lately pays for it), each after its
# outputs are removed. Wall = median, RSS = max; every run is printed.
steps=(two fused restic)
two_w=() clone_w=() co_w=() fused_w=() restic_w=()
clone_rss=0 checkout_rss=0 fused_rss=0 restore_rss=0
for ((i = 0; i < REPS; i++)); do
    for ((k = 0; k < ${#steps[@]}; k++)); do
        step=${steps[$(((i + k) % ${#steps[@]}))]}
        rm -rf "$NEW/copy" "$NEW/fused" "$NEW/fused.db" "$W/restic-restore" "$W/restic-cache-new"
        case $step in
        two)
            say "3. clone, then checkout (round $((i + 1)))"
            fresh_memory
            timed "$MIGSNAP" clone s3://migsnap/plain "$NEW/copy" --endpoint "$ENDPOINT"
            clone_w+=("$T_WALL") clone_rss=$(max "$clone_rss" "$T_RSS")
            fresh_memory
            timed "$MIGSNAP" --store "$NEW/copy/.migsnap" checkout heads/chat -o "$NEW/copy/chat.db"
            co_w+=("$T_WALL") checkout_rss=$(max "$checkout_rss" "$T_RSS")
            two_w+=("$(awk -v a="${clone_w[-1]}" -v b="$T_WALL" 'BEGIN { printf "%.2f", a + b }')")
            [[ $(dump_sha "$NEW/copy/chat.db") == "$mutated_sha" ]] || die "the clone's checkout differs from the database"
            ;;
        fused)
            say "3. clone --checkout, one step (round $((i + 1)))"
            fresh_memory
            timed "$MIGSNAP" clone s3://migsnap/plain "$NEW/fused" --endpoint "$ENDPOINT" --checkout heads/chat -o "$NEW/fused.db"
            fused_w+=("$T_WALL") fused_rss=$(max "$fused_rss" "$T_RSS")
            [[ $(dump_sha "$NEW/fused.db") == "$mutated_sha" ]] || die "clone --checkout differs from the database"
            ;;
        restic)
            say "3. restic restore + sync (round $((i + 1)))"
            fresh_memory
            timed bash -c "'${RESTIC[0]}' -r 's3:$ENDPOINT/restic' --cache-dir '$W/restic-cache-new' restore latest --target '$W/restic-restore' && sync '$W/restic-restore$DB'"
            restic_w+=("$T_WALL") restore_rss=$(max "$restore_rss" "$T_RSS")
            [[ $(dump_sha "$W/restic-restore$DB") == "$mutated_sha" ]] || die "restic's restore differs from the database"
            ;;
        esac
    done
done
clone_wall=$(median "${two_w[@]}") only_clone_wall=$(median "${clone_w[@]}") only_checkout_wall=$(median "${co_w[@]}")
fused_wall=$(median "${fused_w[@]}") restore_wall=$(median "${restic_w[@]}")

# --- report -------------------------------------------------------------------------
SECTION=$(mktemp)
{
    echo "<!-- remote:begin -->"
    echo "<!-- generated by benches/remote.sh; edit outside the markers -->"
    echo
    echo "- date: $(date -u +%Y-%m-%d); command: \`bash benches/remote.sh $SIZE\`; machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB"
    echo "- versions: $("$MIGSNAP" --version); $(restic version | cut -d' ' -f1-2); moto $("$PY" -c 'import moto; print(moto.__version__)') on 127.0.0.1"
    echo "- data: \`gen_chatdb create --size $SIZE --seed $SEED --journal $JOURNAL\` ($(mb "$db_bytes")), then \`gen_chatdb mutate --percent $PERCENT --seed $MUTATE_SEED\`; pushes and backups run once; the restore steps (clone, then checkout; \`clone --checkout\`; restic restore + \`sync\`) $REPS rounds in turn, each round starting one step later, each step after \`sync\` and, as root, a drop of the clean page cache: wall = median, RSS = max"
    echo "- bytes uploaded: the bucket's listing (sum of object sizes) before and after"
    echo
    echo "| | migsnap | restic | migsnap / restic |"
    echo "|---|---|---|---|"
    echo "| first push / backup, wall | ${push1_wall} s | ${restic1_wall} s | $(ratio "$push1_wall" "$restic1_wall") |"
    echo "| first push / backup, uploaded | $(mb "$push1_bytes") | $(mb "$restic1_bytes") | $(ratio "$push1_bytes" "$restic1_bytes") |"
    echo "| first push, encrypted remote | ${sealed_wall} s, $(mb "$sealed_bytes") | | |"
    echo "| $PERCENT%-changed push / backup, wall | ${push2_wall} s | ${restic2_wall} s | $(ratio "$push2_wall" "$restic2_wall") |"
    echo "| $PERCENT%-changed push / backup, uploaded | $(mb "$push2_bytes") | $(mb "$restic2_bytes") | $(ratio "$push2_bytes" "$restic2_bytes") |"
    echo "| clone + checkout / restore + sync, wall | ${clone_wall} s (${only_clone_wall} + ${only_checkout_wall}) | ${restore_wall} s | $(ratio "$clone_wall" "$restore_wall") |"
    echo "| \`clone --checkout\` (one step) / restore + sync, wall | ${fused_wall} s | ${restore_wall} s | $(ratio "$fused_wall" "$restore_wall") |"
    echo "| \`fsck --remote\` / \`restic check\`, wall | ${fsck_wall} s | ${check_wall} s | $(ratio "$fsck_wall" "$check_wall") |"
    echo "| \`fsck --remote --read-data\` / \`restic check --read-data\`, wall | ${fsck_data_wall} s | ${check_data_wall} s | $(ratio "$fsck_data_wall" "$check_data_wall") |"
    echo "| peak RSS: first push / backup; clone, checkout, clone --checkout / restore | $((push1_rss / 1024)) MiB; $((clone_rss / 1024)), $((checkout_rss / 1024)), $((fused_rss / 1024)) MiB | $((restic1_rss / 1024)) MiB; $((restore_rss / 1024)) MiB | |"
    echo
    echo "Every run of the restore steps (s): clone + checkout ${two_w[*]}; \`clone --checkout\` ${fused_w[*]}; restic restore + \`sync\` ${restic_w[*]}."
    echo
    echo "<!-- remote:end -->"
} >"$SECTION"
cat "$SECTION"
if grep -q '<!-- remote:begin -->' "$DOC"; then
    "$PY" - "$DOC" "$SECTION" <<'EOF'
import sys, re
doc, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
text = re.sub(r"<!-- remote:begin -->.*?<!-- remote:end -->", lambda _: section, text, flags=re.S)
open(doc, "w").write(text)
EOF
else
    printf '\n## Remotes: push and clone against restic on S3 (issue 16)\n\n%s\n' "$(cat "$SECTION")" >>"$DOC"
fi
rm -f "$SECTION"
