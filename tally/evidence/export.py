"""Exporting an evidence bundle: everything needed to prove one event, in one JSON file.

The bundle is self-contained: the event's leaf bytes, its index, an inclusion proof to
a checkpoint signed by a quorum of the validators, the genesis document that fixes the
first validators' keys, every validator-set change since (each proven the same way),
the signed transaction that caused the event, and optionally a consistency proof to a
later checkpoint (showing the event is still in the log as it grew). Its format is
documented in docs/evidence.md; :mod:`tally.evidence.verify` checks it offline.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from tally import codec
from tally.errors import Code, NotFound, TallyError
from tally.evidence.verify import (
    EvidenceError,
    ValidatorHistory,
    genesis_validator_docs,
)
from tally.protocol.header import BlockHeader
from tally.state.store import BlockRow

if TYPE_CHECKING:
    from tally.log.tree import MerkleLog
    from tally.node import Node

FORMAT = "tally-evidence/v1"
#: How many blocks past the first one covering an event to look for a quorum checkpoint.
SEARCH_WINDOW = 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Exporter:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.store = node.store
        latest = self.store.latest_block()
        if latest is None:
            raise NotFound("no block has been committed yet")
        self.latest = latest
        self.log: MerkleLog = node.log_view(latest.log_size)
        self.update_rows = self.store.validator_updates(latest.height)
        self.history = ValidatorHistory(genesis_validator_docs(node.genesis.to_doc()),
                                        node.suite, node.genesis.chain_id)
        self.history.updates = [(row.height, codec.decode(row.details))
                                for row in self.update_rows]

    def quorum_note(self, height: int) -> str | None:
        note = self.node.checkpoint_note(height)
        try:
            self.history.check(note)
        except EvidenceError:
            return None
        return note

    def first_quorum_checkpoint(self, log_index: int, first: BlockRow | None = None
                                ) -> tuple[BlockRow, str]:
        first = first or self.store.first_block_covering(log_index)
        if first is None:
            raise NotFound(f"no checkpoint covers event {log_index} yet")
        for height in range(first.height, min(first.height + SEARCH_WINDOW,
                                              self.latest.height) + 1):
            note = self.quorum_note(height)
            if note is not None:
                return self.store.block(height), note  # type: ignore[return-value]
        raise TallyError(f"no checkpoint covering event {log_index} has a quorum of "
                         "cosignatures yet; retry shortly", Code.UNAVAILABLE)

    def latest_quorum_checkpoint(self) -> tuple[BlockRow, str] | None:
        for height in range(self.latest.height, max(0, self.latest.height - SEARCH_WINDOW), -1):
            note = self.quorum_note(height)
            if note is not None:
                return self.store.block(height), note  # type: ignore[return-value]
        return None

    def inclusion(self, index: int, size: int, log: MerkleLog | None = None) -> dict[str, Any]:
        log = log or self.log
        return {"tree_size": size,
                "proof": [b64(h) for h in log.inclusion_proof(index, size)]}

    def validator_updates(self, up_to_height: int) -> list[dict[str, Any]]:
        out = []
        for row in self.update_rows:
            if row.height > up_to_height:
                break
            block, note = self.first_quorum_checkpoint(row.index)
            out.append({"index": row.index, "leaf": b64(row.leaf), "details": b64(row.details),
                        "inclusion": self.inclusion(row.index, block.log_size),
                        "checkpoint": note})
        return out


def export_bundle(node: Node, event_index: int, *, consistency: bool = False) -> dict[str, Any]:
    """The evidence bundle of event ``event_index`` (its position in the custody log)."""
    with node.store.snapshot():
        event = node.store.event(event_index)
        if event is None:
            raise NotFound(f"no committed event {event_index}")
        ex = Exporter(node)
        block, note = ex.first_quorum_checkpoint(event_index)
        tx = node.store.tx(event.tx_id)
        later = ex.latest_quorum_checkpoint() if consistency else None
        if later is not None and later[0].log_size <= block.log_size:
            later = None
        newest = later[0].height if later else block.height
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "chain_id": node.genesis.chain_id,
            "suite": node.suite.name,
            "genesis": b64(node.genesis.canonical_bytes()),
            "genesis_hash": node.genesis.hash.hex(),
            "event": {
                "index": event.index,
                "leaf": b64(event.leaf),
                "details": b64(event.details) if event.details else None,
            },
            "inclusion": ex.inclusion(event.index, block.log_size),
            "checkpoint": note,
            "transaction": b64(tx.raw) if tx is not None else None,
            "validator_updates": ex.validator_updates(newest),
        }
        if later is not None:
            bundle["consistency"] = {
                "checkpoint": later[1],
                "proof": [b64(h) for h in ex.log.consistency_proof(block.log_size,
                                                                   later[0].log_size)],
            }
    return bundle


def export_commercial_bundle(node: Node, index: int, *, consistency: bool = False
                             ) -> dict[str, Any]:
    """The evidence of a contract event: its leaf in the commercial log, proven against the
    commercial root that a quorum-signed custody checkpoint names."""
    with node.store.snapshot():
        row = node.store.event2(index)
        if row is None:
            raise NotFound(f"no committed contract event {index}")
        _, height, tx_id, _contract, _name, leaf = row
        ex = Exporter(node)
        block, note = ex.first_quorum_checkpoint(index, node.store.block(height))
        size = BlockHeader.decode(block.header).commercial_size
        log2 = node.log_view(BlockHeader.decode(ex.latest.header).commercial_size, "log2_nodes")
        tx = node.store.tx(tx_id)
        later = ex.latest_quorum_checkpoint() if consistency else None
        later_size = BlockHeader.decode(later[0].header).commercial_size if later else 0
        if later is not None and later_size <= size:
            later = None
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "log": "commercial",
            "chain_id": node.genesis.chain_id,
            "suite": node.suite.name,
            "genesis": b64(node.genesis.canonical_bytes()),
            "genesis_hash": node.genesis.hash.hex(),
            "event": {"index": index, "leaf": b64(leaf), "details": None},
            "inclusion": ex.inclusion(index, size, log2),
            "checkpoint": note,
            "transaction": b64(tx.raw) if tx is not None else None,
            "validator_updates": ex.validator_updates(later[0].height if later else
                                                      block.height),
        }
        if later is not None:
            bundle["consistency"] = {
                "checkpoint": later[1],
                "proof": [b64(h) for h in log2.consistency_proof(size, later_size)],
            }
    return bundle
