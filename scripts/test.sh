#!/usr/bin/env bash
# The one command that runs every test, from a fresh clone: formatting,
# lints, then the unit and integration tests of both crates.
# CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
