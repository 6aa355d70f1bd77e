#!/usr/bin/env bash
# How many bytes the page listing of an incremental snapshot adds, against the
# database size (target: <= 0.5%). Uses the same data as compare.sh:
#
#   bash benches/listing_overhead.sh 1G
#
# It snapshots a fresh copy of bench-data/chat-SIZE-s42-wal.db, applies
# `gen_chatdb mutate --percent 1 --seed 7`, snapshots again, and reads the
# size of the newest image object from the store.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=${1:-1G}
SRC=$ROOT/bench-data/chat-$SIZE-s42-wal.db
M=$ROOT/target/release/migsnap
GEN=$ROOT/target/release/examples/gen_chatdb
[[ -f $SRC ]] || { echo "missing $SRC: run benches/compare.sh $SIZE first" >&2; exit 1; }
[[ -x $M && -x $GEN ]] || cargo build --release --bin migsnap --example gen_chatdb >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$SRC" "$work/chat.db"
"$M" --store "$work/.migsnap" init >/dev/null
"$M" --store "$work/.migsnap" snapshot "$work/chat.db" -m full >/dev/null 2>&1
"$GEN" mutate "$work/chat.db" --percent 1 --seed 7 >/dev/null
"$M" --store "$work/.migsnap" snapshot "$work/chat.db" -m incremental >/dev/null 2>&1
db_bytes=$(stat -c %s "$work/chat.db")
read -r full delta < <(sqlite3 "$work/.migsnap/store.db" \
    "SELECT (SELECT raw_len FROM objects WHERE kind = 2 ORDER BY pack LIMIT 1),
            (SELECT raw_len FROM objects WHERE kind = 2 ORDER BY pack DESC LIMIT 1)" | tr '|' ' ')
awk -v db="$db_bytes" -v full="$full" -v delta="$delta" 'BEGIN {
    printf "database: %d bytes\n", db
    printf "full listing (first snapshot): %d bytes = %.3f%% of the database\n", full, 100 * full / db
    printf "delta listing (after 1%% mutation): %d bytes = %.3f%% of the database\n", delta, 100 * delta / db
}'
