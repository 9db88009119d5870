"""Exporting an evidence bundle: everything needed to prove one event, in one JSON file.

The bundle is self-contained: the event's leaf bytes, its index, an inclusion proof to
a checkpoint signed by the validators, the genesis document that fixes the validators'
keys, the signed transaction that caused the event, and optionally a consistency proof
to a later checkpoint (showing the event is still in the log as it grew). Its format
is documented in docs/evidence.md; :mod:`tally.evidence.verify` checks it offline.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from tally.errors import NotFound

if TYPE_CHECKING:
    from tally.node import Node

FORMAT = "tally-evidence/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_bundle(node: Node, event_index: int, *, consistency: bool = False) -> dict[str, Any]:
    """The evidence bundle of event ``event_index`` (its position in the custody log)."""
    store = node.store
    with store.snapshot():
        event = store.event(event_index)
        if event is None:
            raise NotFound(f"no committed event {event_index}")
        block = store.first_block_covering(event_index)
        latest = store.latest_block()
        if block is None or latest is None:
            raise NotFound(f"no checkpoint covers event {event_index} yet")
        log = node.log_view(latest.log_size)
        tx = store.tx(event.tx_id)
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
            "inclusion": {
                "tree_size": block.log_size,
                "proof": [b64(h) for h in log.inclusion_proof(event.index, block.log_size)],
            },
            "checkpoint": node.checkpoint_note(block.height),
            "transaction": b64(tx.raw) if tx is not None else None,
        }
        if consistency and latest.log_size > block.log_size:
            bundle["consistency"] = {
                "checkpoint": node.checkpoint_note(latest.height),
                "proof": [b64(h) for h in log.consistency_proof(block.log_size, latest.log_size)],
            }
    return bundle


def event_index_of_tx(node: Node, tx_id: str, position: int = 0) -> int:
    receipt = node.receipt(tx_id)
    if receipt.first_event is None or position >= receipt.event_count:
        raise NotFound(f"transaction {tx_id} has no event {position}")
    return receipt.first_event + position
