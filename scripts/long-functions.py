#!/usr/bin/env python3
"""List Rust functions longer than N lines (default 120) in src/ and store/src/.

Usage: scripts/long-functions.py [-n LINES] [PATH ...]

Relies on rustfmt layout (the project runs `cargo fmt`): a function starts at a
line whose code begins with `fn` (after visibility/qualifiers) and ends at the
first later line that is a lone `}` at the same indentation. Length counts the
lines from the `fn` line to that `}` inclusive, doc comments and attributes
excluded. Exit status is 1 when some function is over the limit, so CI can use it.
"""
import argparse
import os
import re
import sys

FN = re.compile(
    r"^(?P<indent>\s*)(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+\"[^\"]*\")\s+)*fn\s+(?P<name>\w+)"
)
IMPL = re.compile(r"^(?P<indent>\s*)impl\b(?:<[^{]*?>)?\s+(?:(?P<trait>[\w:<>, ']+?)\s+for\s+)?(?P<ty>[\w:]+)")
MOD = re.compile(r"^(?P<indent>\s*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<name>\w+)\s*\{")


def functions(path):
    """Yield (qualified name, start line, length) for every function body in `path`."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    scopes = []  # (indent, name) of enclosing impl / mod blocks
    for i, line in enumerate(lines):
        while scopes and line.strip() == "}" and len(line) - 1 == len(scopes[-1][0]):
            scopes.pop()
            break
        m = MOD.match(line)
        if m:
            scopes.append((m.group("indent"), m.group("name")))
            continue
        m = IMPL.match(line)
        if m and not line.rstrip().endswith(";"):
            scopes.append((m.group("indent"), m.group("ty")))
            continue
        m = FN.match(line)
        if not m:
            continue
        indent = m.group("indent")
        end = None
        for j in range(i, len(lines)):
            code = lines[j].split("//")[0].rstrip()
            if code.endswith(";"):
                break  # a declaration without a body (trait method)
            if code.endswith("{"):
                end = next((k for k in range(j + 1, len(lines)) if lines[k].rstrip() == indent + "}"), None)
                break
        if end is None:
            continue
        name = "::".join([s[1] for s in scopes] + [m.group("name")])
        yield name, i + 1, end - i + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--max", type=int, default=120, help="report functions longer than this")
    ap.add_argument("paths", nargs="*", default=["src", "store/src"])
    args = ap.parse_args()
    found = []
    for root in args.paths:
        for dirpath, _, files in os.walk(root):
            for fname in files:
                if fname.endswith(".rs"):
                    path = os.path.join(dirpath, fname)
                    for name, line, length in functions(path):
                        if length > args.max:
                            found.append((length, f"{path}:{line}", name))
    for length, where, name in sorted(found, reverse=True):
        print(f"{length:5}  {where:40}  {name}")
    sys.stdout.flush()
    print(f"{len(found)} function(s) longer than {args.max} lines", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
