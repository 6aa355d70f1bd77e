#!/usr/bin/env bash
# The one command that runs every test, from a fresh clone: formatting,
# lints, then the unit and integration tests of both crates.
# CI runs exactly this (see .ci/run).
#
# The integration tests drive real Alembic projects, so this first makes or
# refreshes .venv/ (pinned Alembic and SQLAlchemy from PyPI, see
# scripts/test-venv.sh) and hands its Python to the tests in
# MIGSNAP_TEST_PYTHON. MIGSNAP_SKIP_ALEMBIC=1 skips both.
# It also fetches the upstream Alembic histories (hash-pinned wheels,
# scripts/upstream-histories.sh) into .cache/upstream/ and hands them to the
# tests in MIGSNAP_TEST_UPSTREAM; MIGSNAP_SKIP_UPSTREAM=1 skips only those.
# The dependency advisory check is scripts/audit.sh, not run here: its
# database is on GitHub, which the test machines cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
if [[ ${MIGSNAP_SKIP_ALEMBIC:-} == 1 ]]; then
    echo "== test venv: skipped (MIGSNAP_SKIP_ALEMBIC=1): the Alembic tests will be skipped"
else
    bash scripts/test-venv.sh
    export MIGSNAP_TEST_PYTHON="$PWD/.venv/bin/python"
    if [[ ${MIGSNAP_SKIP_UPSTREAM:-} == 1 ]]; then
        echo "== upstream histories: skipped (MIGSNAP_SKIP_UPSTREAM=1): their tests will be skipped"
    else
        bash scripts/upstream-histories.sh
        export MIGSNAP_TEST_UPSTREAM="$PWD/.cache/upstream"
    fi
fi
# The wheel test installs the wheel of the binary (built with the dev
# profile: the packaging is what is tested, and it reuses what cargo test
# compiles) into a fresh venv, with the pinned test requirements from a
# local wheelhouse (downloaded here, once per requirements file). The
# pre-commit test installs migsnap's hooks offline from the same wheelhouse
# (pip's build of the hook repository takes maturin from it).
if [[ ${MIGSNAP_SKIP_ALEMBIC:-} != 1 ]]; then
    echo "== wheel: scripts/build-wheel.sh (dev profile) and the test wheelhouse"
    MIGSNAP_WHEEL_PROFILE=dev bash scripts/build-wheel.sh
    MIGSNAP_TEST_WHEEL=$(ls "$PWD"/target/wheels/migsnap-*.whl)
    wheelhouse=.cache/wheelhouse
    want=$(sha256sum <scripts/requirements-test.txt | cut -c1-64)
    if [[ $(cat "$wheelhouse/.stamp" 2>/dev/null) != "$want" ]]; then
        rm -rf "$wheelhouse"
        .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: \
            -r scripts/requirements-test.txt -d "$wheelhouse"
        echo "$want" >"$wheelhouse/.stamp"
    fi
    export MIGSNAP_TEST_WHEEL MIGSNAP_TEST_WHEELHOUSE="$PWD/$wheelhouse"
fi
# The man page test renders every page with man-db's `man -l`.
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "== apt-get install man-db groff-base (for the man page test)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db groff-base >/dev/null
    else
        echo "== man or groff missing and not root: the man page test will fail; install man-db" >&2
    fi
fi
# The report test renders the HTML report in Debian's headless Chromium
# (it skips the browser half, and says so, where /usr/bin/chromium is
# missing).
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "== apt-get install chromium (for the report test)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "== chromium missing and not root: the report test will skip its browser half; install chromium" >&2
    fi
fi
echo "== layers: no module imports a layer above it"
python3 scripts/check-layers.py
python3 scripts/long-functions.py
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc (broken or private intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== cargo test"
cargo test --workspace --locked
