"""Offline audit of a stored ledger: does the database still say what was signed?

Recomputes, from the raw rows alone and trusting no stored hash or index, and reports
each difference by name:

* **blocks**: each header decodes strictly, hashes to its block hash and links to the
  previous one; its checkpoint is signed by a quorum of the validators of its height,
  and every line of it (origin, size, root, height, time, state, block, validators,
  commercial, and from version 3 genesis) says what the header says;
* **transactions**: each one's id is the hash of its signed body, the block's
  transaction root is theirs, and the events each one claims are the events that name
  it; from protocol version 3 the receipts (code, message, events, result) hash to the
  header's ``receipts`` root, so a receipt edited in the store is caught (before
  version 3 nothing signed commits to them: the audit says so);
* **both logs**: every event leaf (custody and commercial) is re-hashed into a fresh
  log whose root and size must be the header's at every block; the columns stored
  beside a leaf (its transaction, asset, type, height; a contract event's contract and
  name) must be what the leaf says; every stored interior log node must be the one the
  fresh log computes;
* **state**: the trie rebuilt from every stored value must have the latest header's root,
  and every stored trie node must be one the rebuilt trie holds;
* **meta**: the node's own bookkeeping (height, last hash and time, log sizes, state
  root, genesis) must be what the latest block and the genesis say.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tally import codec
from tally.evidence.verify import (
    EvidenceError,
    ValidatorHistory,
    binds_genesis,
    genesis_validator_docs,
)
from tally.genesis import Genesis
from tally.ledger import log_origin, merkle_root
from tally.log.checkpoint import with_cosignatures
from tally.log.tree import DictNodeStore, MerkleLog
from tally.protocol.header import BlockHeader, HeaderError, receipt_leaf
from tally.state.store import connect
from tally.state.trie import DictTrieStore, StateTrie
from tally.tx import SIGNING_DOMAIN as TX_SIGNING_DOMAIN


@dataclass
class AuditReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Log:
    """A log rebuilt from its leaves, with the store of the interior nodes it wrote."""

    def __init__(self, hash_fn: Callable[[bytes], bytes]) -> None:
        self.nodes = DictNodeStore()
        self.log = MerkleLog(hash_fn, self.nodes)

    def differing_nodes(self, db: sqlite3.Connection, table: str) -> list[tuple[int, int]]:
        """Stored interior nodes (level 1 up) that differ from, or are missing in, the
        rebuilt log's; and rebuilt ones the table lacks."""
        stored = {(level, idx): h for level, idx, h in
                  db.execute(f"SELECT level, idx, hash FROM {table}")}  # noqa: S608 (fixed names)
        rebuilt = {k: v for k, v in self.nodes.nodes.items() if k[0] >= 1}
        return sorted(k for k in stored.keys() | rebuilt.keys() if stored.get(k) != rebuilt.get(k))


def _decoded(data: bytes) -> Any:
    """Stored CBOR, or None if the bytes are not CBOR (every check against it then fails
    and is reported by name, rather than the audit stopping)."""
    try:
        return codec.decode(data)
    except Exception:  # cbor2 raises several types on damaged bytes
        return None


def _decoded_map(data: bytes) -> dict:
    value = _decoded(data)
    return value if isinstance(value, dict) else {}


def audit_ledger(db_path: Path, genesis: Genesis) -> AuditReport:
    report = AuditReport()
    db = connect(Path(db_path), readonly=True)
    # A damaged text column must read as different text, not stop the audit.
    db.text_factory = lambda data: data.decode("utf-8", "replace")
    try:
        if _genesis_matches(db, genesis, report):
            latest = _audit_blocks(db, genesis, report)
            _audit_state(db, genesis, latest, report)
            _audit_meta(db, genesis, latest, report)
    except Exception as exc:  # a row of the wrong type or shape: damage, reported as such
        report.problems.append(f"the database is damaged beyond what the audit can read: "
                               f"{type(exc).__name__}: {exc}")
    finally:
        db.close()
    return report


def _genesis_matches(db: sqlite3.Connection, genesis: Genesis, report: AuditReport) -> bool:
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('genesis_hash', "
                           "'genesis')").fetchall())
    if meta.get("genesis_hash") != genesis.hash:
        report.problems.append("the database belongs to another genesis")
        return False
    if meta.get("genesis") != genesis.canonical_bytes():
        report.problems.append("meta: the stored genesis document is not the genesis")
    return True


def _audit_blocks(db: sqlite3.Connection, genesis: Genesis, report: AuditReport
                  ) -> tuple[int, bytes, BlockHeader] | None:
    """Every block, in order; returns the latest (height, hash, header) that decoded."""
    h = genesis.suite.hash
    history = ValidatorHistory(genesis_validator_docs(genesis.to_doc()), genesis.suite,
                               genesis.chain_id, genesis.hash, binds_genesis(genesis.to_doc()))
    history.updates = [
        (height, _decoded_map(details)) for height, details in db.execute(
            "SELECT height, details FROM events WHERE type = 'validator.update' ORDER BY idx")]
    cosignatures: dict[int, list[str]] = {}
    for height, line in db.execute("SELECT height, line FROM cosignatures ORDER BY signer"):
        cosignatures.setdefault(height, []).append(line)

    custody, commercial = _Log(h), _Log(h)
    # Signatures are checked a block's batch at a time beside the rest of the audit.
    verifier = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tally-audit")
    checks: list[tuple[str, list[tuple[bytes, Any]], Future[list[bool]]]] = []
    events = iter(db.execute("SELECT idx, height, tx_id, asset, leaf, details, type FROM events "
                             "ORDER BY idx").fetchall())
    events2 = iter(db.execute("SELECT idx, height, tx_id, contract, name, leaf FROM events2 "
                              "ORDER BY idx").fetchall())
    next_event, next_event2 = next(events, None), next(events2, None)
    event_txs: dict[int, bytes] = {}
    prev_hash = genesis.hash
    latest: tuple[int, bytes, BlockHeader] | None = None
    blocks = unbound_receipts = 0
    for height, block_hash, header_bytes, checkpoint, log_size in db.execute(
        "SELECT height, hash, header, checkpoint, log_size FROM blocks ORDER BY height"
    ).fetchall():
        blocks += 1
        where = f"block {height}"
        try:
            header = BlockHeader.decode(header_bytes)
        except HeaderError as exc:
            report.problems.append(f"{where}: {exc.message}")
            prev_hash = block_hash
            continue
        latest = (height, block_hash, header)
        if h(header_bytes) != block_hash:
            report.problems.append(f"{where}: header does not hash to the block hash")
        if header.prev != prev_hash or header.height != height:
            report.problems.append(f"{where}: broken link to the previous block")
        prev_hash = block_hash

        # The custody log: each leaf and the columns beside it (the stored nodes are
        # compared with the rebuilt log's once, at the end).
        leaves = []
        while next_event is not None and next_event[0] < log_size:
            idx, ev_height, tx_id, asset, leaf, details, ev_type = next_event
            if idx != custody.log.size + len(leaves):
                report.problems.append(f"event {idx}: missing or out-of-order entry")
            fields = _decoded_map(leaf)
            if details and fields.get("details") != h(details):
                report.problems.append(f"event {idx}: details do not match the leaf")
            if fields.get("tx") != tx_id:
                report.problems.append(f"event {idx}: leaf names another transaction")
            if (fields.get("asset"), fields.get("type"), fields.get("height")) != \
                    (asset, ev_type, ev_height) or ev_height != height:
                report.problems.append(f"event {idx}: its stored asset, type or height is not "
                                       "what its leaf says")
            event_txs[idx] = tx_id
            leaves.append(leaf)
            next_event = next(events, None)
        if leaves:
            custody.log.append_many(leaves)
        if custody.log.size != log_size or custody.log.root() != header.log_root:
            report.problems.append(f"{where}: log root recomputed from events differs")

        # The commercial log.
        while next_event2 is not None and next_event2[0] < header.commercial_size:
            idx, ev_height, tx_id, contract, name, leaf = next_event2
            if idx != commercial.log.size:
                report.problems.append(f"contract event {idx}: missing or out-of-order entry")
            fields = _decoded_map(leaf)
            if (fields.get("tx"), fields.get("contract"), fields.get("name"),
                    fields.get("height")) != (tx_id, contract, name, ev_height) \
                    or ev_height != height:
                report.problems.append(f"contract event {idx}: its stored columns are not what "
                                       "its leaf says")
            commercial.log.append(leaf)
            next_event2 = next(events2, None)
        if commercial.log.size != header.commercial_size or \
                commercial.log.root() != header.commercial_root:
            report.problems.append(f"{where}: commercial log root recomputed from its events "
                                   "differs")

        # Transactions and their receipts.
        signed, receipts_bound = _check_transactions(db, h, height, header, event_txs, report)
        unbound_receipts += not receipts_bound
        if signed:  # verified on another thread (the batch releases the GIL)
            checks.append((where, signed, verifier.submit(genesis.suite.verify_many,
                                                          [m for _, m in signed])))
            while len(checks) > 2:  # a few blocks in flight, not the whole chain's messages
                _report_signatures(checks.pop(0), report)

        # The checkpoint, line by line against the header.
        _check_checkpoint(history, with_cosignatures(checkpoint, cosignatures.get(height, [])),
                          genesis, height, block_hash, header, log_size, report)
    for check in checks:
        _report_signatures(check, report)
    verifier.shutdown()
    for leftover, what in ((next_event, "events"), (next_event2, "contract events")):
        if leftover is not None:
            report.problems.append(f"{what} exist beyond the last block's log")
    _check_stored_nodes(db, custody, commercial, report)
    report.lines.append(
        f"{blocks} blocks, {custody.log.size} events, {commercial.log.size} contract events: "
        "hash chain, transaction and receipt roots, both logs and their stored nodes, and "
        "checkpoint signatures and lines recomputed")
    if unbound_receipts:
        report.lines.append(f"{unbound_receipts} block(s) before protocol version 3 commit to "
                            "no receipts: their stored codes and messages cannot be checked")
    return latest


def _check_transactions(db: sqlite3.Connection, h: Any, height: int, header: BlockHeader,
                        event_txs: dict[int, bytes], report: AuditReport
                        ) -> tuple[list[tuple[bytes, Any]], bool]:
    """A block's stored transactions and receipts against its header: the signed
    messages to verify, and whether the header commits to receipts (version 3 on)."""
    where = f"block {height}"
    rows = db.execute("SELECT position, id, raw, code, message, first_event, event_count, "
                      "result FROM txs WHERE height=? ORDER BY position", (height,)).fetchall()
    if [r[0] for r in rows] != list(range(len(rows))):
        report.problems.append(f"{where}: transaction positions are not 0, 1, 2, ...")
    txs = [r[1:] for r in rows]
    signed = []
    for tx_id, raw, _code, _message, first, count, _result in txs:
        envelope = _decoded(raw)
        body = _decoded(envelope[0]) if isinstance(envelope, list) and len(envelope) == 2 \
            and isinstance(envelope[0], bytes) else None
        if not isinstance(body, dict) or not isinstance(body.get("signer"), bytes):
            report.problems.append(f"{where}: transaction {tx_id.hex()} is not a "
                                   "well-formed transaction")
            continue
        if h(envelope[0]) != tx_id:
            report.problems.append(f"{where}: transaction {tx_id.hex()} altered")
        signed.append((tx_id, (body["signer"], TX_SIGNING_DOMAIN + envelope[0],
                               envelope[1])))
        claimed = range(first, first + count) if first is not None else range(0)
        if count and any(event_txs.get(i) != tx_id for i in claimed):
            report.problems.append(f"{where}: transaction {tx_id.hex()} claims events "
                                   "that do not name it")
    if merkle_root(h, [t[0] for t in txs]) != header.txs or len(txs) != header.tx_count:
        report.problems.append(f"{where}: transaction root differs")
    if header.receipts is None:
        return signed, False
    if merkle_root(h, [receipt_leaf(row[0], *row[2:]) for row in txs]) != header.receipts:
        report.problems.append(f"{where}: a receipt (code, message, events or result) "
                               "differs from what the header commits to")
    return signed, True


def _check_checkpoint(history: ValidatorHistory, note: str, genesis: Genesis, height: int,
                      block_hash: bytes, header: BlockHeader, log_size: int,
                      report: AuditReport) -> None:
    """A block's checkpoint: signed by a quorum, and every line what the header says."""
    where = f"block {height}"
    try:
        cp, _ = history.check(note)
    except (EvidenceError, ValueError) as exc:
        report.problems.append(f"{where}: checkpoint not signed by a quorum: "
                               f"{getattr(exc, 'message', exc)}")
        return
    lines = dict(e.partition(" ")[::2] for e in cp.extensions)
    b64 = base64.b64encode
    expected = {"height": str(height), "time": str(header.time),
                "state": b64(header.state).decode(), "block": b64(block_hash).decode(),
                "commercial": f"{header.commercial_size} "
                              f"{b64(header.commercial_root).decode()}"}
    if (cp.origin != log_origin(genesis.chain_id) or cp.size != log_size
            or cp.size != header.log_size or cp.root != header.log_root
            or any(lines.get(k) != v for k, v in expected.items())):
        report.problems.append(f"{where}: checkpoint does not match the header")


def _check_stored_nodes(db: sqlite3.Connection, custody: _Log, commercial: _Log,
                        report: AuditReport) -> None:
    """Both logs' stored nodes against the logs rebuilt from their events."""
    for table, log in (("log_nodes", custody), ("log2_nodes", commercial)):
        differing = log.differing_nodes(db, table)
        # A pair of events whose hashes no longer make the node stored for them is named
        # first: it says where to look.
        report.problems[:0] = [
            f"events {2 * idx}-{2 * idx + 1}: leaf bytes differ from the logged hashes"
            for level, idx in differing[:10] if level == 1 and table == "log_nodes"]
        if differing:
            level, idx = differing[0]
            report.problems.append(f"{table}: {len(differing)} stored node(s) differ from the "
                                   f"log recomputed from its events, first (level {level}, "
                                   f"index {idx})")


def _report_signatures(check: tuple[str, list[tuple[bytes, Any]], Future[list[bool]]],
                       report: AuditReport) -> None:
    where, signed, verdicts = check
    for (tx_id, _), valid in zip(signed, verdicts.result(), strict=True):
        if not valid:
            report.problems.append(f"{where}: transaction {tx_id.hex()}'s signature does "
                                   "not verify")


def _audit_state(db: sqlite3.Connection, genesis: Genesis,
                 latest: tuple[int, bytes, BlockHeader] | None, report: AuditReport) -> None:
    store = DictTrieStore()
    trie = StateTrie(genesis.suite.hash, store)
    values = dict(db.execute("SELECT key, value FROM kv").fetchall())
    trie.update(values)
    store.write(trie.take_dirty())
    if latest is not None and trie.root() != latest[2].state:
        report.problems.append("state: the root recomputed from stored values differs "
                               "from the latest block's state root")
    stored = dict(db.execute("SELECT path, node FROM trie").fetchall())
    differing = [p for p in stored.keys() | store.records.keys()
                 if stored.get(p) != store.records.get(p)]
    if differing:
        report.problems.append(f"state: {len(differing)} stored trie node(s) differ from the "
                               "trie recomputed from stored values")
    report.lines.append(f"{len(values)} state entries: state root and trie nodes recomputed")


def _audit_meta(db: sqlite3.Connection, genesis: Genesis,
                latest: tuple[int, bytes, BlockHeader] | None, report: AuditReport) -> None:
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if latest is None:
        return
    height, block_hash, header = latest
    expected = {"height": str(height).encode(), "last_hash": block_hash,
                "last_time_ms": str(header.time).encode(),
                "log_size": str(header.log_size).encode(),
                "log2_size": str(header.commercial_size).encode(),
                "state_root": header.state}
    wrong = sorted(k for k, v in expected.items() if meta.get(k) != v)
    if wrong:
        report.problems.append(f"meta: {', '.join(wrong)} differ from the latest block")
