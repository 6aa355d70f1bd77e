#!/usr/bin/env bash
# migsnap diff against sqldiff --schema on the same pair of 200-table
# databases, in the same run (issue 3's target: migsnap no slower), plus the
# wall time of one schema capture. Installs sqldiff (Debian sqlite3-tools).
#
#   bash benches/schema_compare.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
M=$ROOT/target/release/migsnap
command -v sqldiff >/dev/null || { apt-get update >&2 && apt-get install -y sqlite3-tools >&2; }
command -v sqlite3 >/dev/null || apt-get install -y sqlite3 >&2
[[ -x $M ]] || cargo build --release --bin migsnap >&2
cargo build --release --example capture_once >&2
C=$ROOT/target/release/examples/capture_once
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two databases of 200 tables (8 columns, a CHECK, a UNIQUE, a foreign key
# to the previous table, two indexes); b changes 20 of them.
make_db() {
    local out=$1 changed=$2
    {
        echo "BEGIN;"
        for i in $(seq 1 200); do
            local fk=""
            ((i > 1)) && fk=", parent_id INTEGER REFERENCES t$((i - 1))(id) ON DELETE CASCADE"
            local extra=""
            ((changed && i % 10 == 0)) && extra=", added_$i TEXT DEFAULT 'x'"
            echo "CREATE TABLE t$i (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE,
                  created_at INTEGER DEFAULT (strftime('%s','now')), score REAL CHECK (score >= 0),
                  body JSON, flag INTEGER NOT NULL DEFAULT 0$fk$extra);"
            echo "CREATE INDEX t${i}_name ON t$i(name);"
            echo "CREATE INDEX t${i}_created ON t$i(created_at DESC) WHERE flag = 1;"
        done
        echo "COMMIT;"
    } | sqlite3 "$out"
}
make_db "$work/a.db" 0
make_db "$work/b.db" 1

runs=20
time_it() {
    local start end
    start=$(date +%s.%N)
    for _ in $(seq $runs); do "$@" >/dev/null || true; done
    end=$(date +%s.%N)
    echo "scale=2; ($end - $start) * 1000 / $runs" | bc
}
ms_migsnap=$(time_it "$M" diff "$work/a.db" "$work/b.db")
ms_sqldiff=$(time_it sqldiff --schema "$work/a.db" "$work/b.db")
ms_show=$(time_it "$M" diff "$work/a.db" "$work/a.db")
ms_once=$(time_it "$C" "$work/a.db")
echo "200-table schemas, mean of $runs runs (process wall time):"
echo "  migsnap diff a.db b.db         ${ms_migsnap} ms"
echo "  sqldiff --schema a.db b.db     ${ms_sqldiff} ms"
echo "  ratio migsnap / sqldiff        $(echo "scale=2; $ms_migsnap / $ms_sqldiff" | bc)"
echo "  migsnap diff a.db a.db (2 captures + semantic hashes, no changes)  ${ms_show} ms"
echo "  one capture + semantic hash, whole process (capture_once a.db)     ${ms_once} ms"
