"""The ledger: a node's committed chain, and the one path by which blocks are added.

A block goes through two steps, so that both engines share them:

* :meth:`Ledger.execute` runs the block's transactions with the executor and computes
  everything the block commits to (events as log leaves, log root, state root, header)
  without writing anything;
* :meth:`Ledger.commit` signs the log checkpoint and writes the block in one SQLite
  transaction.

The solo engine calls both at once; the CometBFT application calls ``execute`` in
FinalizeBlock and ``commit`` in Commit.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from tally import codec
from tally.bounded import BoundedCache
from tally.crypto import PrivateKey
from tally.exec.context import Event
from tally.exec.executor import Executor, TxOutcome, genesis_writes
from tally.exec.governance import VALIDATORS_KEY
from tally.exec.state import BlockState
from tally.genesis import Genesis
from tally.log.checkpoint import Checkpoint, NoteSigner, sign_note
from tally.log.merkle import empty_root, leaf_hash, node_hash
from tally.log.tree import MerkleLog
from tally.protocol.header import BlockHeader, receipt_leaf
from tally.protocol.versions import BOUND_TO_GENESIS
from tally.state.store import BlockRow, BlockWrite, Store
from tally.state.trie import StateTrie
from tally.tx import Transaction

#: Decoded state values the ledger keeps (LRU by insertion), and the bytes they may hold:
#: an entry is charged three times its encoded size (a decoded value is larger).
CACHE_ENTRIES = 500_000
CACHE_BYTES = 256 * 1024 * 1024


def log_origin(chain_id: str) -> str:
    """The checkpoint origin line of a chain's custody log."""
    return f"tally/{chain_id}/custody"


def encode_event_leaf(
    ev: Event, *, height: int, tx_id: bytes, index: int, time_ms: int, details_hash: bytes | None
) -> bytes:
    """The canonical bytes of one event: exactly what the log commits to (docs/formats.md).

    The map is built with its keys already in canonical order (RFC 8949 §4.2.1: shorter
    keys first, then bytewise) and holds only scalars, so plain encoding is canonical;
    a test checks it against cbor2's canonical mode. This is the hottest encoding of a
    block, and sorting it every time costs several times the encoding itself.
    """
    return cbor2.dumps(
        {
            "to": ev.to,
            "tx": tx_id,
            "data": ev.data,
            "from": ev.sender,
            "time": time_ms,
            "type": ev.type,
            "asset": ev.asset,
            "index": index,
            "height": height,
            "details": details_hash,
            "quantity": ev.quantity,
        }
    )


def commercial_origin(chain_id: str) -> str:
    """The origin of a chain's commercial (tier-2) log."""
    return f"tally/{chain_id}/commercial"


def encode_contract_leaf(ev: Any, *, height: int, tx_id: bytes, index: int, time_ms: int
                         ) -> bytes:
    """A contract event as a leaf of the commercial log (keys in canonical order)."""
    return cbor2.dumps({"tx": tx_id, "data": ev.data, "name": ev.name, "time": time_ms,
                        "index": index, "height": height, "contract": ev.contract})


def merkle_root(hash_fn: Any, leaves: list[bytes]) -> bytes:
    """RFC 9162 root (MTH, §2.1.1) of a list (a block's transaction ids or receipts).

    Computed level by level, pairing neighbours and carrying an odd last node up
    unchanged: for RFC 9162's left-balanced tree that is the same root as splitting at
    the largest power of two below n (tests/unit/test_ledger_merkle_root.py checks it
    against the naive recursive definition), without copying sublists at every level."""
    if not leaves:
        return empty_root(hash_fn)
    level = [leaf_hash(hash_fn, leaf) for leaf in leaves]
    while len(level) > 1:
        paired = [node_hash(hash_fn, level[i], level[i + 1])
                  for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(slots=True)
class PendingBlock:
    """An executed block whose results are computed but not yet written."""

    height: int
    time_ms: int
    header: BlockHeader
    hash: bytes
    outcomes: list[TxOutcome]
    leaves: list[bytes]
    details: list[bytes]
    event_assets: list[str | None]
    event_txs: list[bytes]
    event_types: list[str]
    first_event: int
    changes: dict[bytes, bytes | None]
    decoded: dict[bytes, Any]
    checkpoint: Checkpoint
    #: Validator-set changes this block made (details of its validator.update events).
    validator_updates: list[dict[str, Any]]
    #: The commercial log's new leaves, as events2 rows (without their index).
    leaves2: list[tuple] = field(default_factory=list)
    first_event2: int = 0


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    height: int
    hash: bytes
    header: BlockHeader
    checkpoint: str
    outcomes: list[TxOutcome]
    first_event: int


LEAF_TABLES = {"log_nodes": "events", "log2_nodes": "events2"}


_ABSENT: Any = object()


def receipt_rows(outcomes: list[TxOutcome], first_event: int
                 ) -> list[tuple[bytes, str, str, int | None, int, bytes | None]]:
    """Each transaction's receipt as the ``txs`` table stores it: (id, code, message,
    first event index or None, event count, result as canonical CBOR or None)."""
    rows = []
    event_index = first_event
    for outcome in outcomes:
        n = len(outcome.events)
        rows.append((outcome.tx.id, str(outcome.code), outcome.message,
                     event_index if n else None, n,
                     None if outcome.result is None else codec.encode_trusted(outcome.result)))
        event_index += n
    return rows


def receipt_leaves(outcomes: list[TxOutcome], first_event: int) -> list[bytes]:
    """The leaves of a version-3 header's ``receipts`` root."""
    return [receipt_leaf(*row) for row in receipt_rows(outcomes, first_event)]


def _entry_size(key: bytes, raw: bytes | None) -> int:
    return 3 * (len(key) + (len(raw) if raw is not None else 0)) + 128


class _LogNodes:
    """A log's node store: reads from SQLite, writes held until the block is written.

    Leaf hashes (level 0) are not stored: a leaf's hash is the hash of its event row,
    which the block writes anyway, so storing it again would only cost a row per event.
    """

    def __init__(self, store: Store, hash_fn: Any, table: str = "log_nodes") -> None:
        self.store = store
        self.hash_fn = hash_fn
        self.table = table
        self.events = LEAF_TABLES[table]
        self.pending: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes | None:
        found = self.pending.get((level, index))
        if found is not None:
            return found
        if level == 0:
            leaf = self.store.event_leaf(index, self.events)
            return None if leaf is None else leaf_hash(self.hash_fn, leaf)
        return self.store.log_node(level, index, self.table)

    def put_many(self, items: list[tuple[tuple[int, int], bytes]]) -> None:
        self.pending.update(items)

    def take(self) -> list[tuple[tuple[int, int], bytes]]:
        items = [item for item in self.pending.items() if item[0][0] > 0]
        self.pending = {}
        return items


class _TrieNodes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, path: bytes) -> bytes | None:
        return self.store.trie_node(path)


class Ledger:
    def __init__(self, store: Store, genesis: Genesis, signer: PrivateKey | None = None,
                 signer_name: str | None = None) -> None:
        self.store = store
        self.genesis = genesis
        self.suite = genesis.suite
        self.executor = Executor(genesis)
        self.origin = log_origin(genesis.chain_id)
        self._signers = [NoteSigner(signer_name, signer)] if signer and signer_name else []
        self._cache: BoundedCache[bytes, Any] = BoundedCache(CACHE_ENTRIES, CACHE_BYTES)
        self._log_nodes = _LogNodes(store, genesis.suite.hash)
        stored = store.meta("genesis_hash")
        if stored is None:
            self._init_genesis()
        elif stored != genesis.hash:
            raise ValueError(
                "this data directory belongs to another chain: its genesis hash is "
                f"{stored.hex()}, the given genesis hashes to {genesis.hash.hex()}"
            )
        self.height = int(store.meta("height") or b"0")
        self.last_hash = store.meta("last_hash") or genesis.hash
        self.last_time_ms = int(store.meta("last_time_ms") or str(genesis.time_ms).encode())
        self.log = MerkleLog(self.suite.hash, self._log_nodes, size=int(store.meta("log_size") or b"0"))
        self._log2_nodes = _LogNodes(store, self.suite.hash, "log2_nodes")
        self.log2 = MerkleLog(self.suite.hash, self._log2_nodes,
                              size=int(store.meta("log2_size") or b"0"))
        self.trie = StateTrie(self.suite.hash, _TrieNodes(store))
        self.executor.sync(self.read)

    # --- genesis ----------------------------------------------------------------------

    def _init_genesis(self) -> None:
        changes = {k: codec.encode(v) for k, v in genesis_writes(self.genesis).items()}
        trie = StateTrie(self.suite.hash, _TrieNodes(self.store))
        trie.update(changes)
        root = trie.root()
        self.store.write_state(
            kv=changes,
            trie_nodes=trie.take_dirty(),
            meta={"genesis_hash": self.genesis.hash, "genesis": self.genesis.canonical_bytes(),
                  "height": b"0", "log_size": b"0", "state_root": root},
        )

    # --- state reads (engine thread) --------------------------------------------------

    def read(self, key: bytes) -> Any | None:
        cache = self._cache
        value = cache.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        raw = self.store.get(key)
        value = None if raw is None else codec.decode(raw)
        cache.put(key, value, _entry_size(key, raw))
        return value

    @property
    def state_root(self) -> bytes:
        return self.trie.root()

    # --- the block path ---------------------------------------------------------------

    def execute(self, txs: list[Transaction], time_ms: int, *,
                is_verified: Any = lambda tx_id: False) -> PendingBlock:
        height = self.height + 1
        time_ms = max(time_ms, self.last_time_ms)  # engine time never runs backwards
        state = BlockState(self.read)
        executed = self.executor.execute_block(
            state, height=height, time_ms=time_ms, txs=txs, is_verified=is_verified
        )
        outcomes = executed.txs
        hash_fn = self.suite.hash
        leaves: list[bytes] = []
        details: list[bytes] = []
        assets: list[str | None] = []
        event_txs: list[bytes] = []
        event_types: list[str] = []
        for outcome in outcomes:
            for index, ev in enumerate(outcome.events):
                details_bytes = codec.encode_trusted(ev.details) if ev.details else b""
                leaves.append(encode_event_leaf(
                    ev, height=height, tx_id=outcome.tx.id, index=index, time_ms=time_ms,
                    details_hash=hash_fn(details_bytes) if details_bytes else None,
                ))
                details.append(details_bytes)
                assets.append(ev.asset)
                event_txs.append(outcome.tx.id)
                event_types.append(ev.type)
        first_event = self.log.append_many(leaves) if leaves else self.log.size
        rows2: list[tuple] = []
        for outcome in outcomes:
            for index, cev in enumerate(outcome.contract_events):
                rows2.append((height, outcome.tx.id, cev.contract, cev.name,
                              encode_contract_leaf(cev, height=height, tx_id=outcome.tx.id,
                                                   index=index, time_ms=time_ms)))
        first_event2 = self.log2.append_many([r[4] for r in rows2]) if rows2 else self.log2.size
        changes = state.changes()
        self.trie.update(changes)
        state_root = self.trie.root()
        bound = executed.version >= BOUND_TO_GENESIS
        receipts = merkle_root(hash_fn, receipt_leaves(outcomes, first_event)) if bound else None
        header = BlockHeader(
            chain=self.genesis.chain_id,
            height=height,
            prev=self.last_hash,
            time=time_ms,
            txs=merkle_root(hash_fn, [o.tx.id for o in outcomes]),
            tx_count=len(outcomes),
            log_size=self.log.size,
            log_root=self.log.root(),
            state=state_root,
            commercial_size=self.log2.size,
            commercial_root=self.log2.root(),
            version=executed.version,
            receipts=receipts,
        )
        block_hash = header.hash(hash_fn)
        validators_hash = hash_fn(codec.encode_trusted(state.get(VALIDATORS_KEY) or []))
        checkpoint = Checkpoint(
            origin=self.origin,
            size=self.log.size,
            root=header.log_root,
            extensions=(
                f"height {height}",
                f"time {time_ms}",
                f"state {base64.b64encode(state_root).decode()}",
                f"block {base64.b64encode(block_hash).decode()}",
                f"validators {base64.b64encode(validators_hash).decode()}",
                f"commercial {self.log2.size} "
                f"{base64.b64encode(header.commercial_root).decode()}",
                *((f"genesis {base64.b64encode(self.genesis.hash).decode()}",) if bound else ()),
            ),
        )
        updates = [ev.details for o in outcomes if o.ok for ev in o.events
                   if ev.type == "validator.update"]
        return PendingBlock(height, time_ms, header, block_hash, outcomes, leaves, details, assets,
                            event_txs, event_types, first_event, changes,
                            state.decoded_changes(), checkpoint, updates, rows2, first_event2)

    def discard(self) -> None:
        """Forget an executed block that will not be committed (another proposal won the
        round): the log and the trie return to the last committed block."""
        self._log_nodes.pending = {}
        self.log = MerkleLog(self.suite.hash, self._log_nodes,
                             size=int(self.store.meta("log_size") or b"0"))
        self._log2_nodes.pending = {}
        self.log2 = MerkleLog(self.suite.hash, self._log2_nodes,
                              size=int(self.store.meta("log2_size") or b"0"))
        self.trie.discard()

    def sign_checkpoint(self, body: str) -> str:
        """This node's signature line on a checkpoint body ('' if it is not a validator)."""
        if not self._signers:
            return ""
        return sign_note(body, self._signers)[len(body) + 1:]

    def commit(self, block: PendingBlock,
               cosignatures: list[tuple[int, str, str]] | None = None) -> CommittedBlock:
        """Write the block durably. ``cosignatures`` are (height, signer, line) rows of
        validators' signatures on checkpoints, already verified, stored in the same
        SQLite transaction."""
        note = sign_note(block.checkpoint.body(), self._signers) if self._signers else \
            block.checkpoint.body()
        height = block.height
        tx_rows = [(tx_id, height, position, outcome.tx.raw, code, message, first, n, result)
                   for position, (outcome, (tx_id, code, message, first, n, result))
                   in enumerate(zip(block.outcomes, receipt_rows(block.outcomes,
                                                                 block.first_event),
                                    strict=True))]
        event_rows = []
        first = block.first_event
        for offset, leaf in enumerate(block.leaves):
            event_rows.append((first + offset, height, block.event_txs[offset],
                               block.event_assets[offset], leaf, block.details[offset],
                               block.event_types[offset]))
        self.store.write_block(BlockWrite(
            block=BlockRow(block.height, block.hash, block.header.encode(), note,
                           block.header.log_size),
            txs=tx_rows,
            events=event_rows,
            kv=block.changes,
            trie_nodes=self.trie.take_dirty(),
            log_nodes=self._log_nodes.take(),
            events2=[(block.first_event2 + i, *row) for i, row in enumerate(block.leaves2)],
            log2_nodes=self._log2_nodes.take(),
            cosignatures=cosignatures or [],
            meta={
                "log2_size": str(block.header.commercial_size).encode(),
                "height": str(block.height).encode(),
                "last_hash": block.hash,
                "last_time_ms": str(block.time_ms).encode(),
                "log_size": str(block.header.log_size).encode(),
                "state_root": block.header.state,
            },
        ))
        self.height = block.height
        self.last_hash = block.hash
        self.last_time_ms = block.time_ms
        cache, changes = self._cache, block.changes
        for key, value in block.decoded.items():
            cache.put(key, value, _entry_size(key, changes.get(key)))
        self.executor.sync(self.read)
        return CommittedBlock(block.height, block.hash, block.header, note, block.outcomes,
                              block.first_event)


def open_ledger(data_dir: Path, genesis: Genesis, signer: PrivateKey | None = None,
                signer_name: str | None = None) -> Ledger:
    return Ledger(Store(Path(data_dir) / "chain.sqlite"), genesis, signer, signer_name)
