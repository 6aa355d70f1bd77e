#!/usr/bin/env bash
# Fetches the upstream Alembic histories of tests/it/upstream.rs: the wheels
# pinned by sha256 in scripts/upstream-requirements.txt, downloaded with
# `pip download --no-deps --require-hashes --only-binary :all:` (no
# dependency, no build, no code run), and only their migrations unpacked:
#
#   .cache/upstream/wheels/            the wheels as downloaded (kept: pip
#                                      reuses a file whose hash matches; not
#                                      also in pip's own cache)
#   .cache/upstream/open-webui/        open_webui/migrations/...
#   .cache/upstream/conda-store-server/  conda_store_server/_internal/alembic/...
#
# Does nothing when the pins and this script are unchanged since the last
# unpack. scripts/test.sh runs it and exports MIGSNAP_TEST_UPSTREAM (the
# directory above) to the tests. By hand:
#   bash scripts/upstream-histories.sh && export MIGSNAP_TEST_UPSTREAM=$PWD/.cache/upstream
#
# Needs PyPI through pip as configured on the machine (PIP_INDEX_URL and
# friends are honoured); pip comes from .venv (scripts/test-venv.sh) or
# python3.
set -euo pipefail
cd "$(dirname "$0")/.."

req=scripts/upstream-requirements.txt
cache=.cache/upstream
wheels=$cache/wheels
stamp=$cache/.stamp
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# name | wheel file | folder inside the wheel to unpack. The name is the
# directory under $cache that tests/it/upstream.rs expects.
histories=(
    "open-webui|open_webui-0.12.4-py3-none-any.whl|open_webui/migrations/"
    "conda-store-server|conda_store_server-2025.2.2-py3-none-any.whl|conda_store_server/_internal/alembic/"
)

die() {
    echo "error: $*" >&2
    echo "hint: the upstream-history tests need PyPI once (then .cache/upstream/ is reused);" \
        "MIGSNAP_SKIP_UPSTREAM=1 bash scripts/test.sh skips them" >&2
    exit 1
}

mkdir -p "$cache"
# One fetch at a time per work tree (two test runs may start together).
exec 9>"$cache/.lock"
if command -v flock >/dev/null; then flock 9; fi

want=$(cat "$req" "$0" | sha256sum | cut -c1-64)
unpacked() {
    local h
    for h in "${histories[@]}"; do
        IFS='|' read -r name _ prefix <<<"$h"
        [[ -d $cache/$name/$prefix ]] || return 1
    done
}
if unpacked && [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    echo "== upstream histories: up to date ($cache, from $req)"
    exit 0
fi

start=$SECONDS
rm -f "$stamp"
python=python3
if [[ -x .venv/bin/python ]] && .venv/bin/python -m pip --version >/dev/null 2>&1; then
    python=.venv/bin/python
fi
"$python" -m pip --version >/dev/null 2>&1 || die "no pip: run scripts/test-venv.sh first, or install python3-pip"

echo "== upstream histories: pip download (pinned by sha256, $req)"
"$python" -m pip download --quiet --progress-bar off --no-cache-dir --no-deps --require-hashes \
    --only-binary :all: --dest "$wheels" -r "$req" ||
    die "pip could not download the wheels of $req (a changed hash is refused)"

for h in "${histories[@]}"; do
    IFS='|' read -r name wheel prefix <<<"$h"
    [[ -f $wheels/$wheel ]] || die "$wheels/$wheel missing after the download: update the table in $0 to match $req"
    rm -rf "$cache/$name.tmp"
    # Only the migrations folder; names are checked to stay inside it.
    "$python" - "$wheels/$wheel" "$prefix" "$cache/$name.tmp" <<'PY' || die "cannot unpack $wheel"
import os, sys, zipfile
wheel, prefix, dest = sys.argv[1:]
count = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        path = os.path.abspath(os.path.join(dest, name))
        if not path.startswith(os.path.abspath(dest) + os.sep):
            sys.exit(f"{wheel}: {name} leaves the folder")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as out:
            out.write(src.read())
        count += 1
if count == 0:
    sys.exit(f"{wheel} has nothing under {prefix}")
print(f"== upstream histories: {os.path.basename(wheel)}: {count} files of {prefix}")
PY
    rm -rf "${cache:?}/$name"
    mv "$cache/$name.tmp" "$cache/$name"
done
echo "$want" >"$stamp"
echo "== upstream histories: ready in $((SECONDS - start)) s ($(du -sh "$wheels" | cut -f1) of wheels in $wheels)"
