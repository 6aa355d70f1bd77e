#!/usr/bin/env bash
# Builds the PyPI wheel of the `migsnap` binary for this machine into
# target/wheels/ (pyproject.toml says what goes in it):
#
#   bash scripts/build-wheel.sh && pip install target/wheels/migsnap-*.whl
#
# maturin comes from PyPI, pinned, into a throwaway venv (.cache/maturin-venv,
# gitignored, reused while the pin is unchanged); the Rust toolchain is the
# one on PATH. The build is a release build (a few minutes from scratch,
# seconds when nothing changed); CARGO_TARGET_DIR is honoured as by cargo.
# MIGSNAP_WHEEL_PROFILE names another Cargo profile: scripts/test.sh builds
# its wheel with `dev`, reusing what `cargo test` compiled (the packaging is
# the same; only the binary inside is unoptimised).
# Older wheels of other versions are removed first, so target/wheels/ holds
# one wheel. MIGSNAP_BOOTSTRAP_PYTHON names the Python that makes the venv
# (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

maturin_pin=maturin==1.16.0
venv=.cache/maturin-venv
base=${MIGSNAP_BOOTSTRAP_PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if [[ ! -x $venv/bin/maturin || $(cat "$venv/.pin" 2>/dev/null) != "$maturin_pin" ]]; then
    echo "== build-wheel: installing $maturin_pin into $venv"
    mkdir -p .cache
    "$base" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --progress-bar off "$maturin_pin"
    echo "$maturin_pin" >"$venv/.pin"
fi

rm -f target/wheels/migsnap-*.whl
start=$SECONDS
# maturin and cargo talk on stderr; shown only when the build fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
profile=${MIGSNAP_WHEEL_PROFILE:-release}
if ! "$venv/bin/maturin" build --profile "$profile" --quiet --out target/wheels >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: maturin could not build the wheel" >&2
    exit 1
fi
wheel=$(ls target/wheels/migsnap-*.whl)
echo "== build-wheel: $wheel ($((SECONDS - start)) s)"
