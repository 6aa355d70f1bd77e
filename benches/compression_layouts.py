#!/usr/bin/env python3
"""How well different pack layouts compress a database file, relative to
`zstd -3` of the whole file. Reproduces the table in docs/design.md.

    python3 -m venv /tmp/z && /tmp/z/bin/pip install zstandard
    /tmp/z/bin/python benches/compression_layouts.py bench-data/chat-64M-s42-wal.db
"""
import subprocess
import sys

import zstandard as zstd

PAGE = 4096


def main(path: str) -> None:
    data = open(path, "rb").read()
    whole = len(subprocess.run(["zstd", "-3", "-c", path], capture_output=True, check=True).stdout)
    pages = [data[i : i + PAGE] for i in range(0, len(data), PAGE)]
    step = max(1, len(pages) // 2000)
    evenly = pages[::step]

    def dictionary(size: int, samples: int) -> zstd.ZstdCompressionDict:
        return zstd.train_dictionary(size, evenly[:: max(1, len(evenly) // samples)][:samples])

    layouts = [
        ("one page per frame, level 3", 1, None),
        ("16-page frames, level 3", 16, None),
        ("32-page frames, level 3", 32, None),
        ("one page per frame + 112 KiB dictionary", 1, dictionary(112 * 1024, 2000)),
        ("16-page frames + 64 KiB dictionary (1000 samples)", 16, dictionary(64 * 1024, 1000)),
        ("32-page frames + 64 KiB dictionary (1000 samples)", 32, dictionary(64 * 1024, 1000)),
    ]
    print(f"zstd -3 of the whole file: {whole} bytes")
    for name, group, dict_data in layouts:
        kwargs = {"level": 3}
        if dict_data is not None:
            kwargs["dict_data"] = dict_data
        compressor = zstd.ZstdCompressor(**kwargs)
        size = 0
        for start in range(0, len(data), PAGE * group):
            chunk = data[start : start + PAGE * group]
            size += min(len(compressor.compress(chunk)), len(chunk))
        print(f"| {name} | {size / whole:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
