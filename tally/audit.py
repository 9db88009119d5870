"""Offline audit of a stored ledger: does the database still say what was signed?

Recomputes, from the raw rows alone and trusting no stored hash: every event leaf's
hash and the log root at every block; the block hash chain and each block's transaction
root; every checkpoint signature; and the state root from every stored value. Any byte
changed in the database shows up as a named problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tally import codec
from tally.evidence.verify import EvidenceError, ValidatorHistory, genesis_validator_docs
from tally.genesis import Genesis
from tally.ledger import log_origin, merkle_root
from tally.log.checkpoint import with_cosignatures
from tally.log.merkle import leaf_hash, node_hash
from tally.log.tree import DictNodeStore, MerkleLog
from tally.protocol.header import BlockHeader, HeaderError
from tally.state.store import connect
from tally.state.trie import DictTrieStore, StateTrie


@dataclass
class AuditReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def audit_ledger(db_path: Path, genesis: Genesis) -> AuditReport:
    report = AuditReport()
    suite = genesis.suite
    h = suite.hash
    db = connect(Path(db_path), readonly=True)
    history = ValidatorHistory(genesis_validator_docs(genesis.to_doc()), suite,
                               genesis.chain_id)
    history.updates = [
        (height, codec.decode(details)) for height, details in db.execute(
            "SELECT height, details FROM events WHERE type = 'validator.update' ORDER BY idx")]
    cosignatures: dict[int, list[str]] = {}
    for height, line in db.execute("SELECT height, line FROM cosignatures ORDER BY signer"):
        cosignatures.setdefault(height, []).append(line)

    stored_genesis = db.execute("SELECT value FROM meta WHERE key='genesis_hash'").fetchone()
    if stored_genesis is None or stored_genesis[0] != genesis.hash:
        report.problems.append("the database belongs to another genesis")
        return report

    log = MerkleLog(h, DictNodeStore())
    events = db.execute("SELECT idx, tx_id, leaf, details FROM events ORDER BY idx")
    event_iter = iter(events.fetchall())
    next_event = next(event_iter, None)
    prev_hash = genesis.hash
    previous_leaf: bytes | None = None
    blocks = 0
    for height, block_hash, header_bytes, checkpoint, log_size in db.execute(
        "SELECT height, hash, header, checkpoint, log_size FROM blocks ORDER BY height"
    ).fetchall():
        blocks += 1
        try:
            header = BlockHeader.decode(header_bytes)
        except HeaderError as exc:
            report.problems.append(f"block {height}: {exc.message}")
            prev_hash = block_hash
            continue
        if h(header_bytes) != block_hash:
            report.problems.append(f"block {height}: header does not hash to the block hash")
        if header.prev != prev_hash or header.height != height:
            report.problems.append(f"block {height}: broken link to the previous block")
        prev_hash = block_hash
        while next_event is not None and next_event[0] < log_size:
            idx, tx_id, leaf, details = next_event
            if idx != log.size:
                report.problems.append(f"event {idx}: missing or out-of-order entry")
            fields = codec.decode(leaf)
            if details and fields.get("details") != h(details):
                report.problems.append(f"event {idx}: details do not match the leaf")
            if fields.get("tx") != tx_id:
                report.problems.append(f"event {idx}: leaf names another transaction")
            # Leaf hashes are not stored, but their parents are: a pair of events must
            # still hash to the node the log wrote when the pair was complete.
            this_hash = leaf_hash(h, leaf)
            if idx % 2 == 1 and previous_leaf is not None:
                stored = db.execute("SELECT hash FROM log_nodes WHERE level=1 AND idx=?",
                                    (idx // 2,)).fetchone()
                if stored is None or stored[0] != node_hash(h, previous_leaf, this_hash):
                    report.problems.append(f"events {idx - 1}-{idx}: leaf bytes differ from the "
                                           "logged hashes")
            previous_leaf = this_hash
            log.append(leaf)
            next_event = next(event_iter, None)
        if log.size != log_size or log.root() != header.log_root:
            report.problems.append(f"block {height}: log root recomputed from events differs")
        txs = db.execute("SELECT id, raw FROM txs WHERE height=? ORDER BY position",
                         (height,)).fetchall()
        for tx_id, raw in txs:
            envelope = codec.decode(raw)
            if h(envelope[0]) != tx_id:
                report.problems.append(f"block {height}: transaction {tx_id.hex()} altered")
        if merkle_root(h, [t[0] for t in txs]) != header.txs:
            report.problems.append(f"block {height}: transaction root differs")
        try:
            cp, _ = history.check(with_cosignatures(checkpoint, cosignatures.get(height, [])))
            if (cp.origin != log_origin(genesis.chain_id) or cp.size != log_size
                    or cp.root != header.log_root):
                report.problems.append(f"block {height}: checkpoint does not match the header")
        except EvidenceError as exc:
            report.problems.append(f"block {height}: checkpoint not signed by a quorum: "
                                   f"{exc.message}")
    if next_event is not None:
        report.problems.append("events exist beyond the last block's log")
    report.lines.append(f"{blocks} blocks, {log.size} events: hash chain, transaction roots, "
                        "log roots and checkpoint signatures recomputed")

    trie = StateTrie(h, DictTrieStore())
    values = dict(db.execute("SELECT key, value FROM kv").fetchall())
    trie.update(values)
    expected = db.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
    if expected is not None and trie.root() != BlockHeader.decode(expected[0]).state:
        report.problems.append("state: the root recomputed from stored values differs "
                               "from the latest block's state root")
    report.lines.append(f"{len(values)} state entries: state root recomputed")
    db.close()
    return report
