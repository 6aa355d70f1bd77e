#!/usr/bin/env bash
# Creates or refreshes .venv/, the Python environment of the integration
# tests: real Alembic and SQLAlchemy, and moto's S3 server for the remote
# tests, pinned in scripts/requirements-test.txt.
# It installs only when that file or the base Python changed; otherwise it
# only checks and returns. scripts/test.sh runs it before cargo.
#
# To run the Alembic tests with a plain `cargo test`:
#   bash scripts/test-venv.sh && export MIGSNAP_TEST_PYTHON="$PWD/.venv/bin/python"
#
# MIGSNAP_BOOTSTRAP_PYTHON names the Python to make the venv from (default
# python3; it must be 3.11 or newer). Needs only PyPI, through pip as
# configured on the machine. Where the venv module or pip is missing
# (Debian's python3 without python3-venv), it uses the system pip or, as
# root, installs python3-venv with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
req=scripts/requirements-test.txt
stamp=$venv/.migsnap-requirements.stamp
base=${MIGSNAP_BOOTSTRAP_PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

die() {
    echo "error: $*" >&2
    echo "hint: the Alembic integration tests need Python >= 3.11 and PyPI;" \
        "MIGSNAP_SKIP_ALEMBIC=1 bash scripts/test.sh skips them" >&2
    exit 1
}

as_root_apt() {
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
    echo "== apt-get install $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v "$base" >/dev/null; then
    if [[ $base == python3 ]] && as_root_apt python3 python3-venv; then
        :
    else
        die "$base not found"
    fi
fi
"$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$base is Python $("$base" -c 'import platform; print(platform.python_version())'), older than 3.11"

# One install at a time per work tree (two test runs may start together).
exec 9>"$venv.lock"
if command -v flock >/dev/null; then flock 9; fi

identity='import sys; print(sys.version); print(sys.base_prefix)'
base_id=$("$base" -c "$identity")
want=$({
    cat "$req"
    echo "$base_id"
} | sha256sum | cut -c1-64)

venv_ok() { [[ -x $venv/bin/python ]] && [[ $("$venv/bin/python" -c "$identity" 2>/dev/null) == "$base_id" ]]; }

if venv_ok && [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    echo "== test venv: up to date ($venv, from $req)"
    exit 0
fi

start=$SECONDS
rm -f "$stamp"
if ! venv_ok; then
    echo "== test venv: creating $venv with $base ($("$base" -c 'import platform; print(platform.python_version())'))"
    if ! "$base" -m venv --clear "$venv"; then
        # Debian's python3 keeps ensurepip in python3-venv: make the venv
        # without pip and install into it with the system pip if there is one,
        # else install python3-venv and try again.
        echo "== test venv: no ensurepip; trying without it" >&2
        if "$base" -m venv --clear --without-pip "$venv" && "$base" -m pip --version >/dev/null 2>&1; then
            :
        else
            minor=$("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            as_root_apt python3-venv "python$minor-venv" python3-pip ||
                die "'$base -m venv' failed; install python3-venv (Debian/Ubuntu) and run again"
            "$base" -m venv --clear "$venv" || die "'$base -m venv' failed even with python3-venv"
        fi
    fi
fi

if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    pip=("$venv/bin/python" -m pip)
else
    pip=("$base" -m pip --python "$venv/bin/python")
fi
echo "== test venv: installing $req"
"${pip[@]}" install --quiet --progress-bar off --no-input -r "$req" ||
    die "pip could not install $req into $venv"
"$venv/bin/python" -c 'import alembic, sqlalchemy, moto.server; print("== test venv: alembic", alembic.__version__, "SQLAlchemy", sqlalchemy.__version__, "moto", moto.__version__)' ||
    die "the packages of $req did not install into $venv"
echo "$want" >"$stamp"
echo "== test venv: ready in $((SECONDS - start)) s"
