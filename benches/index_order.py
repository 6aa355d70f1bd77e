#!/usr/bin/env python3
"""What the order of the store's id-index inserts costs, without migsnap.

Inserts N random 32-byte ids into a table shaped like the store's
`objects` index (WITHOUT ROWID, 16 MiB page cache), with a 40 KB pack row
every 32 ids as a snapshot writes them, in one transaction: once in random
order, then sorted in runs of RUN ids (all at once when RUN is 0). Prints
the process CPU and wall time of each. docs/benchmarks.md ("Run 30")
quotes it:

    N=1048576 RUN=262144 python3 benches/index_order.py
"""
import os
import sqlite3
import tempfile
import time

N = int(os.environ.get("N", "262144"))
RUN = int(os.environ.get("RUN", "0"))
PACK_IDS = 32


def run(order):
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "index.db"))
        conn.execute("PRAGMA cache_size = -16384")
        conn.execute(
            "CREATE TABLE objects(id BLOB PRIMARY KEY, kind INT, pack INT,"
            " offset INT, raw_len INT) WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE packs(seq INTEGER PRIMARY KEY, data BLOB)")
        rows = [
            (os.urandom(32), 1, i // PACK_IDS, (i % PACK_IDS) * 4098, 4098)
            for i in range(N)
        ]
        blob = os.urandom(40000)
        insert = "INSERT OR IGNORE INTO objects VALUES (?, ?, ?, ?, ?)"
        cpu, wall = time.process_time(), time.time()
        conn.execute("BEGIN")
        if order == "random":
            for k in range(0, N, PACK_IDS):
                conn.execute("INSERT INTO packs(data) VALUES (?)", (blob,))
                conn.executemany(insert, rows[k : k + PACK_IDS])
        else:
            # The pack rows first, then the held-back ids a run at a time.
            for _ in range(0, N, PACK_IDS):
                conn.execute("INSERT INTO packs(data) VALUES (?)", (blob,))
            step = RUN or N
            for k in range(0, N, step):
                conn.executemany(insert, sorted(rows[k : k + step]))
        conn.execute("COMMIT")
        conn.close()
        print(
            f"{N} ids, {order}{f' in runs of {RUN}' if order == 'sorted' and RUN else ''}:"
            f" cpu {time.process_time() - cpu:.2f} s, wall {time.time() - wall:.2f} s"
        )


for order in ("random", "sorted"):
    run(order)
