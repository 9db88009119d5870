"""The node's durable store: one SQLite database per node.

SQLite (see docs/decisions/0001-sqlite-store.md) holds everything a node knows: state
values, the state trie's nodes, the event log's nodes, blocks, transactions and events.
A block is written in one SQLite transaction, and a block is acknowledged only after
that transaction is durable (WAL, synchronous=FULL), so a crash loses no acknowledged
block and never leaves half of one.

One connection writes (the engine's thread). Readers (the API) open their own
connections; WAL lets them read the last committed block while the next is written.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: ``txs`` is a rowid table (rows appended in commit order) with a unique index on the
#: random id, not a table keyed by the id: its rows are large (the raw transaction), and
#: inserting them at random places rewrote a page per transaction, a cost that grew with
#: the chain (bench/bench_tx_table.py; docs/network-performance.md). Stores made before
#: keep the old layout, which reads and writes the same.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trie (path BLOB PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL, header BLOB NOT NULL,
    checkpoint TEXT NOT NULL, log_size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_by_log_size ON blocks (log_size);
CREATE TABLE IF NOT EXISTS txs (
    id BLOB NOT NULL UNIQUE, height INTEGER NOT NULL, position INTEGER NOT NULL,
    raw BLOB NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
    first_event INTEGER, event_count INTEGER NOT NULL, result BLOB);
CREATE INDEX IF NOT EXISTS txs_by_height ON txs (height, position);
CREATE TABLE IF NOT EXISTS events (
    idx INTEGER PRIMARY KEY, height INTEGER NOT NULL, tx_id BLOB NOT NULL,
    asset TEXT, leaf BLOB NOT NULL, details BLOB NOT NULL, type TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_asset ON events (asset, idx) WHERE asset IS NOT NULL;
CREATE INDEX IF NOT EXISTS validator_updates ON events (idx) WHERE type = 'validator.update';
CREATE TABLE IF NOT EXISTS log2_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events2 (
    idx INTEGER PRIMARY KEY, height INTEGER NOT NULL, tx_id BLOB NOT NULL,
    contract TEXT NOT NULL, name TEXT NOT NULL, leaf BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events2_by_contract ON events2 (contract, idx);
CREATE TABLE IF NOT EXISTS cosignatures (
    height INTEGER NOT NULL, signer TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (height, signer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS witness_cosignatures (
    height INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (height, witness)) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class BlockRow:
    height: int
    hash: bytes
    header: bytes
    checkpoint: str
    log_size: int


@dataclass(frozen=True, slots=True)
class TxRow:
    id: bytes
    height: int
    position: int
    raw: bytes
    code: str
    message: str
    first_event: int | None
    event_count: int
    result: bytes | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    index: int
    height: int
    tx_id: bytes
    asset: str | None
    leaf: bytes
    details: bytes
    type: str


@dataclass(slots=True)
class BlockWrite:
    """Everything one block changes, written atomically by :meth:`Store.write_block`."""

    block: BlockRow
    #: Rows in column order (see TxRow and EventRow): built as tuples on the hot path.
    txs: list[tuple]
    events: list[tuple]
    kv: dict[bytes, bytes | None]
    trie_nodes: list[tuple[bytes, bytes | None]]
    log_nodes: list[tuple[tuple[int, int], bytes]]
    meta: dict[str, bytes]
    #: The commercial (tier-2) log: its events, as rows of events2, and its nodes.
    events2: list[tuple] = field(default_factory=list)
    log2_nodes: list[tuple[tuple[int, int], bytes]] = field(default_factory=list)
    #: Validators' signature lines on checkpoints (this block's or earlier ones), as
    #: (height, signer, line): written with the block, no transaction of their own.
    cosignatures: list[tuple[int, str, str]] = field(default_factory=list)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
    return conn


class StoreLocked(RuntimeError):
    """Another process already writes this database."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One writer per database: a second node process on the same data would fail on
        # its first block and leave a half-alive node behind, so refuse it at once.
        self._lock_file = open(self.path.with_suffix(".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreLocked(f"{self.path} is in use by another Tally process") from None
        self._db = connect(self.path)
        self._db.executescript(SCHEMA)
        self._readers = threading.local()

    def close(self) -> None:
        self._db.close()
        self._lock_file.close()

    # --- reads on the writer's connection (engine thread) ---------------------------------

    def meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def get(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def trie_node(self, path: bytes) -> bytes | None:
        row = self._db.execute("SELECT node FROM trie WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def committed_tx_ids(self, tx_ids: list[bytes]) -> set[bytes]:
        """Which of these transaction ids some committed block already holds."""
        found: set[bytes] = set()
        for start in range(0, len(tx_ids), 500):  # SQLite's host-parameter limit
            chunk = tx_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._db.execute(
                f"SELECT id FROM txs WHERE id IN ({marks})", chunk))
        return found

    def event_leaf(self, index: int, table: str = "events") -> bytes | None:
        row = self._db.execute(f"SELECT leaf FROM {_event_table(table)} WHERE idx=?",
                               (index,)).fetchone()
        return row[0] if row else None

    def read_event_leaf(self, index: int, table: str = "events") -> bytes | None:
        row = self.reader().execute(f"SELECT leaf FROM {_event_table(table)} WHERE idx=?",
                                    (index,)).fetchone()
        return row[0] if row else None

    def log_node(self, level: int, index: int, table: str = "log_nodes") -> bytes | None:
        row = self._db.execute(
            f"SELECT hash FROM {_log_table(table)} WHERE level=? AND idx=?", (level, index)
        ).fetchone()
        return row[0] if row else None

    # --- the one write path ---------------------------------------------------------------

    def write_block(self, w: BlockWrite) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            b = w.block
            db.execute(
                "INSERT INTO blocks VALUES (?,?,?,?,?)",
                (b.height, b.hash, b.header, b.checkpoint, b.log_size),
            )
            db.executemany("INSERT INTO txs VALUES (?,?,?,?,?,?,?,?,?)", w.txs)
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", w.events)
            if w.events2:
                db.executemany("INSERT INTO events2 VALUES (?,?,?,?,?,?)", w.events2)
            if w.log2_nodes:
                db.executemany("INSERT OR REPLACE INTO log2_nodes VALUES (?,?,?)",
                               [(level, idx, h) for (level, idx), h in w.log2_nodes])
            _apply_upserts(db, "kv", "key", "value", w.kv.items())
            _apply_upserts(db, "trie", "path", "node", w.trie_nodes)
            db.executemany(
                "INSERT OR REPLACE INTO log_nodes VALUES (?,?,?)",
                [(level, idx, h) for (level, idx), h in w.log_nodes],
            )
            if w.cosignatures:
                db.executemany("INSERT OR IGNORE INTO cosignatures VALUES (?,?,?)",
                               w.cosignatures)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", list(w.meta.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def write_meta(self, key: str, value: bytes) -> None:
        """One metadata entry, outside any block (e.g. a divergence this node detected)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def write_state(self, *, kv: Mapping[bytes, bytes | None],
                    trie_nodes: list[tuple[bytes, bytes | None]], meta: dict[str, bytes]) -> None:
        """Write state outside any block (genesis), atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            _apply_upserts(db, "kv", "key", "value", kv.items())
            _apply_upserts(db, "trie", "path", "node", trie_nodes)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", list(meta.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def reader(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._readers.conn = conn
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees the same committed block."""
        conn = self.reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def read_trie_node(self, path: bytes) -> bytes | None:
        row = self.reader().execute("SELECT node FROM trie WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def read_log_node(self, level: int, index: int, table: str = "log_nodes") -> bytes | None:
        row = self.reader().execute(
            f"SELECT hash FROM {_log_table(table)} WHERE level=? AND idx=?", (level, index)
        ).fetchone()
        return row[0] if row else None

    def event2(self, index: int) -> tuple | None:
        return self.reader().execute("SELECT * FROM events2 WHERE idx=?", (index,)).fetchone()

    def events2_after(self, after: int, limit: int = 1000, contract: str | None = None
                      ) -> list[tuple]:
        if contract is None:
            return self.reader().execute(
                "SELECT * FROM events2 WHERE idx > ? ORDER BY idx LIMIT ?", (after, limit)
            ).fetchall()
        return self.reader().execute(
            "SELECT * FROM events2 WHERE contract = ? AND idx > ? ORDER BY idx LIMIT ?",
            (contract, after, limit)).fetchall()

    def read_meta(self, key: str) -> bytes | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def read_value(self, key: bytes) -> bytes | None:
        row = self.reader().execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def read_prefix(self, prefix: bytes, limit: int = 1000) -> list[tuple[bytes, bytes]]:
        upper = prefix[:-1] + bytes([prefix[-1] + 1])
        return self.reader().execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
            (prefix, upper, limit),
        ).fetchall()

    def block(self, height: int) -> BlockRow | None:
        row = self.reader().execute("SELECT * FROM blocks WHERE height=?", (height,)).fetchone()
        return BlockRow(*row) if row else None

    def first_block_covering(self, log_index: int) -> BlockRow | None:
        """The first block whose checkpoint covers event ``log_index``."""
        row = self.reader().execute(
            "SELECT * FROM blocks WHERE log_size > ? ORDER BY log_size, height LIMIT 1",
            (log_index,),
        ).fetchone()
        return BlockRow(*row) if row else None

    def latest_block(self) -> BlockRow | None:
        row = self.reader().execute("SELECT * FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return BlockRow(*row) if row else None

    def tx(self, tx_id: bytes) -> TxRow | None:
        row = self.reader().execute("SELECT * FROM txs WHERE id=?", (tx_id,)).fetchone()
        return TxRow(*row) if row else None

    def block_txs(self, height: int) -> list[TxRow]:
        rows = self.reader().execute(
            "SELECT * FROM txs WHERE height=? ORDER BY position", (height,)
        ).fetchall()
        return [TxRow(*r) for r in rows]

    def event(self, index: int) -> EventRow | None:
        row = self.reader().execute("SELECT * FROM events WHERE idx=?", (index,)).fetchone()
        return EventRow(*row) if row else None

    def events_of_tx(self, tx_id: bytes) -> list[EventRow]:
        row = self.tx(tx_id)
        if row is None or row.first_event is None:
            return []
        rows = self.reader().execute(
            "SELECT * FROM events WHERE idx >= ? AND idx < ? ORDER BY idx",
            (row.first_event, row.first_event + row.event_count),
        ).fetchall()
        return [EventRow(*r) for r in rows]

    def events_of_asset(self, asset: str, after: int = -1, limit: int = 1000) -> list[EventRow]:
        rows = self.reader().execute(
            "SELECT * FROM events WHERE asset=? AND idx > ? ORDER BY idx LIMIT ?",
            (asset, after, limit),
        ).fetchall()
        return [EventRow(*r) for r in rows]

    def events_after(self, after: int, limit: int = 1000) -> list[EventRow]:
        rows = self.reader().execute(
            "SELECT * FROM events WHERE idx > ? ORDER BY idx LIMIT ?", (after, limit)
        ).fetchall()
        return [EventRow(*r) for r in rows]

    def validator_updates(self, up_to_height: int) -> list[EventRow]:
        rows = self.reader().execute(
            "SELECT * FROM events WHERE type = 'validator.update' AND height <= ? ORDER BY idx",
            (up_to_height,),
        ).fetchall()
        return [EventRow(*r) for r in rows]

    def cosignatures(self, height: int) -> dict[str, str]:
        rows = self.reader().execute(
            "SELECT signer, line FROM cosignatures WHERE height=?", (height,)
        ).fetchall()
        return dict(rows)

    # --- witness cosignatures: this node's own record, not part of any block -------------

    def add_witness_cosignature(self, height: int, witness: str, line: str) -> None:
        """Keep a witness's cosignature of block ``height``'s checkpoint. Written on a
        connection of its own (the witness feeder's thread), never the engine's."""
        conn = getattr(self._readers, "witness_writer", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA busy_timeout=5000")
            self._readers.witness_writer = conn
        with conn:
            conn.execute("INSERT OR REPLACE INTO witness_cosignatures VALUES (?,?,?)",
                         (height, witness, line))

    def witness_cosignatures(self, height: int) -> dict[str, str]:
        rows = self.reader().execute(
            "SELECT witness, line FROM witness_cosignatures WHERE height=?", (height,)
        ).fetchall()
        return dict(rows)


def _event_table(table: str) -> str:
    if table not in ("events", "events2"):
        raise ValueError(table)
    return table


def _log_table(table: str) -> str:
    if table not in ("log_nodes", "log2_nodes"):
        raise ValueError(table)
    return table


def _apply_upserts(
    db: sqlite3.Connection, table: str, key_col: str, value_col: str,
    items: Iterable[tuple[bytes, bytes | None]],
) -> None:
    upserts, deletes = [], []
    for key, value in items:
        if value is None:
            deletes.append((key,))
        else:
            upserts.append((key, value))
    if upserts:
        db.executemany(f"INSERT OR REPLACE INTO {table} ({key_col}, {value_col}) VALUES (?,?)", upserts)
    if deletes:
        db.executemany(f"DELETE FROM {table} WHERE {key_col}=?", deletes)
