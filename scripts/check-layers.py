#!/usr/bin/env python3
"""Checks that no module of the migsnap crate imports a layer above it.

Run: python3 scripts/check-layers.py   (exit 0: the layering holds)

The layers are listed bottom-up below, as in the module map at the top of
docs/design.md. A module may use modules of its own layer and of the layers
below; a `crate::X` path to a higher layer, outside `#[cfg(test)]` code, is
an error. The store crate (`migsnap_store`) sits below all of them and
cannot see them at all: Cargo enforces that.
"""

import pathlib
import re
import sys

# `src/snapshots/` and `src/migrations/` group the modules of their layers;
# a module there is named by its own name.
GROUPS = ("snapshots", "migrations")

LAYERS = [
    # Plain data every layer reads: findings, configuration, durations, times.
    {"finding", "config", "duration", "timestamp"},
    # The dialect-neutral schema model.
    {"schema"},
    # Reading and writing SQLite files, and the demo's scenario database.
    {"sqlite", "raw_pages", "page_batches", "pages", "page_sums", "demo"},
    # The repository: the store, tracked databases, trust in project files.
    {"repo", "trust"},
    # Snapshots of databases.
    {"snapshot", "tag", "refs", "revspec", "restore", "log", "retention", "datadiff", "usage"},
    # Remotes: copies of the snapshot history elsewhere (push, fetch, clone).
    {"remotes"},
    # Migration histories, and the reference chain built from them.
    {"history"},
    {"replay"},
    # Workflows against the history.
    {"drift", "bisect", "repair", "stamp", "roundtrip", "guard", "lint", "side", "workspace", "record", "fix", "adopt", "models", "report", "check"},
    # Verdicts over every area's findings.
    {"policy"},
    # The command line, and the engine tests' fixtures (test-only code that
    # may use every layer).
    {"cli", "fixtures"},
]


def layer_of(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        if module in layer:
            return index
    raise SystemExit(f"check-layers: module '{module}' is in no layer; add it to LAYERS")


def main() -> int:
    src = pathlib.Path(__file__).resolve().parent.parent / "src"
    errors = []
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] in ("lib.rs", "main.rs"):
            continue
        parts = rel.parts[1:] if rel.parts[0] in GROUPS else rel.parts
        if parts[0] == "mod.rs":
            continue
        module = parts[0].removesuffix(".rs")
        own = layer_of(module)
        text = path.read_text()
        cut = text.find("#[cfg(test)]")
        if cut >= 0:
            text = text[:cut]
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("//"):
                continue
            for used in re.findall(r"crate::(?:(?:snapshots|migrations)::)?([a-z_]+)", line):
                if used in GROUPS or used == module:
                    continue
                if layer_of(used) > own:
                    errors.append(f"src/{rel}:{number}: {module} imports {used}, a layer above it")
    for error in errors:
        print(error)
    if errors:
        print(f"check-layers: {len(errors)} upward import(s)")
        return 1
    print(f"check-layers: {len(LAYERS)} layers, no upward imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
