"""Committing transaction rows as the chain grows: the store's ``txs`` layout against the
layout it replaced (a table keyed by the random transaction id), side by side.

    python bench/bench_tx_table.py [--sizes 20000 300000] [--block 2000]

For each size, both layouts are filled to that many transactions and then take ten
blocks of ``--block`` rows each, in SQLite's WAL mode with ``synchronous=FULL`` as the
node runs it; the figure is the time per row of those ten commits.
Rows are shaped like a custody transfer's (a 32-byte id, ~300 bytes of raw transaction).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from tally.state.store import SCHEMA, connect

#: The ``txs`` table as it was before 1a2776a (2026-11-23): keyed by the id, rows in id order.
OLD_TXS = """CREATE TABLE txs (
    id BLOB PRIMARY KEY, height INTEGER NOT NULL, position INTEGER NOT NULL,
    raw BLOB NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
    first_event INTEGER, event_count INTEGER NOT NULL, result BLOB) WITHOUT ROWID;
CREATE INDEX txs_by_height ON txs (height, position);"""


def current_txs() -> str:
    table = re.search(r"CREATE TABLE IF NOT EXISTS txs \(.*?\);", SCHEMA, re.S)
    index = re.search(r"CREATE INDEX IF NOT EXISTS txs_by_height.*?;", SCHEMA)
    assert table and index, "the store's schema no longer has a txs table"
    return table.group(0) + "\n" + index.group(0)


def rows(height: int, count: int) -> list[tuple]:
    return [(os.urandom(32), height, p, os.urandom(300), "OK", "", p, 1, None)
            for p in range(count)]


def measure(schema: str, size: int, block: int, directory: Path) -> float:
    path = directory / f"txs-{abs(hash(schema))}-{size}.sqlite"
    db = connect(path)
    db.executescript(schema)
    insert = "INSERT INTO txs VALUES (?,?,?,?,?,?,?,?,?)"
    filled = size // block
    for height in range(filled):  # fill, not timed
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows(height, block))
        db.execute("COMMIT")
    elapsed = 0.0
    for height in range(filled, filled + 10):
        batch = rows(height, block)
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, batch)
        db.execute("COMMIT")
        elapsed += time.perf_counter() - start
    db.close()
    return elapsed / (10 * block) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 300_000])
    ap.add_argument("--block", type=int, default=2000)
    args = ap.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}, blocks of {args.block} rows, WAL, synchronous=FULL")
    print("| transactions already stored | keyed by id (old): µs/row | rowid + unique id (now): "
          "µs/row | old / now |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            old = measure(OLD_TXS, size, args.block, Path(tmp))
            new = measure(current_txs(), size, args.block, Path(tmp))
            print(f"| {size:,} | {old:.1f} | {new:.1f} | {old / new:.1f}× |")


if __name__ == "__main__":
    main()
