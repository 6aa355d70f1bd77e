#!/usr/bin/env bash
# Runs the cargo-fuzz targets (object decoding, revision files, alembic.ini,
# schema SQL), each for SECONDS (default 600), two at a time, then
# minimises each corpus in fuzz/corpus/ so the repository keeps it small.
# Crashes land in fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The machine has one stable toolchain; RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass the -Z sanitizer flags it needs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(decode_object revision_file alembic_ini schema_sql)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd "$ROOT"
for target in "${TARGETS[@]}"; do
    cargo fuzz build -O "$target"
done
run() {
    local target=$1
    cargo fuzz run -O "$target" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        >"fuzz/$target.log" 2>&1 && echo "$target: no crash" || echo "$target: FAILED, see fuzz/$target.log"
}
# Two at a time: the machine has two cores.
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
    run "${TARGETS[i]}" &
    [[ $((i + 1)) -lt ${#TARGETS[@]} ]] && run "${TARGETS[i + 1]}" &
    wait
done
for target in "${TARGETS[@]}"; do
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "fuzz/$target.log" | tail -3 | sed "s/^/$target: /"
    cargo fuzz cmin -O "$target" >/dev/null 2>&1
    echo "$target: corpus $(ls "fuzz/corpus/$target" | wc -l) files"
done
