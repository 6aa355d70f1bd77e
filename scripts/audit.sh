#!/usr/bin/env bash
# Checks the locked dependencies against the RustSec advisory database
# (`cargo deny check advisories`, configured in deny.toml, which
# acknowledges RUSTSEC-2025-0141 for bincode with its reason).
#
# It is not part of scripts/test.sh: the advisory database is a git
# repository on GitHub, and the test machines reach only package registries,
# so a check there could never run (see docs/design.md, "Dependencies and
# advisories"). Run this where GitHub is reachable, or pass --offline to use
# a database cargo-deny fetched earlier (~/.cargo/advisory-dbs).
#
# cargo-deny is taken from PATH, else built once from crates.io into
# .cache/cargo-tools (a release build of a few hundred crates: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

fetch=()
if [[ ${1:-} == --offline ]]; then
    fetch=(--disable-fetch)
elif ! timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    echo "audit: the RustSec advisory database (github.com/rustsec/advisory-db) is not reachable;" >&2
    echo "audit: run this where it is, or with --offline after one online run" >&2
    exit 2
fi

root="$PWD/.cache/cargo-tools"
export PATH="$PATH:$root/bin"
if ! command -v cargo-deny >/dev/null; then
    echo "== installing cargo-deny into $root"
    cargo install --locked cargo-deny --root "$root"
fi

echo "== cargo deny check advisories"
cargo deny check "${fetch[@]}" advisories
