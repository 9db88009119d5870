"""Exporting an evidence bundle: everything needed to prove one event, in one JSON file.

The bundle is self-contained: the event's leaf bytes, its index, an inclusion proof to
a checkpoint signed by a quorum of the validators, the genesis document that fixes the
first validators' keys, every validator-set change since (each proven the same way),
the signed transaction that caused the event, and optionally a consistency proof to a
later checkpoint (showing the event is still in the log as it grew). Its format is
documented in docs/evidence.md; :mod:`tally.evidence.verify` checks it offline.

Everything comes from a :class:`~tally.node.reader.ChainReader`, inside one read
snapshot; the validator updates and the search for quorum-signed checkpoints are the
reader's (:class:`~tally.node.reader.ValidatorProofs`), which state proofs share.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from tally.errors import NotFound
from tally.protocol.header import BlockHeader

if TYPE_CHECKING:
    from tally.node.reader import ChainReader

FORMAT = "tally-evidence/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_bundle(reader: ChainReader, event_index: int, *, consistency: bool = False
                  ) -> dict[str, Any]:
    """The evidence bundle of event ``event_index`` (its position in the custody log)."""
    with reader.snapshot():
        event = reader.event(event_index)
        if event is None:
            raise NotFound(f"no committed event {event_index}")
        ex = reader.validator_proofs()
        block, note = ex.first_quorum_checkpoint(event_index)
        tx = reader.tx_row(event.tx_id)
        later = ex.latest_quorum_checkpoint() if consistency else None
        if later is not None and later[0].log_size <= block.log_size:
            later = None
        newest = later[0].height if later else block.height
        genesis = reader.genesis
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "chain_id": genesis.chain_id,
            "suite": reader.suite.name,
            "genesis": b64(genesis.canonical_bytes()),
            "genesis_hash": genesis.hash.hex(),
            "event": {
                "index": event.index,
                "leaf": b64(event.leaf),
                "details": b64(event.details) if event.details else None,
            },
            "inclusion": ex.inclusion(event.index, block.log_size),
            "checkpoint": reader.witnessed_note(block.height, note),
            "transaction": b64(tx.raw) if tx is not None else None,
            "validator_updates": ex.validator_updates(newest),
        }
        if later is not None:
            bundle["consistency"] = {
                "checkpoint": reader.witnessed_note(later[0].height, later[1]),
                "proof": [b64(h) for h in ex.log.consistency_proof(block.log_size,
                                                                   later[0].log_size)],
            }
    return bundle


def export_commercial_bundle(reader: ChainReader, index: int, *, consistency: bool = False
                             ) -> dict[str, Any]:
    """The evidence of a contract event: its leaf in the commercial log, proven against the
    commercial root that a quorum-signed custody checkpoint names."""
    with reader.snapshot():
        row = reader.commercial_event(index)
        if row is None:
            raise NotFound(f"no committed contract event {index}")
        _, height, tx_id, _contract, _name, leaf = row
        ex = reader.validator_proofs()
        block, note = ex.first_quorum_checkpoint(index, reader.block_row(height))
        size = BlockHeader.decode(block.header).commercial_size
        log2 = reader.commercial_log_view(BlockHeader.decode(ex.latest.header).commercial_size)
        tx = reader.tx_row(tx_id)
        later = ex.latest_quorum_checkpoint() if consistency else None
        later_size = BlockHeader.decode(later[0].header).commercial_size if later else 0
        if later is not None and later_size <= size:
            later = None
        genesis = reader.genesis
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "log": "commercial",
            "chain_id": genesis.chain_id,
            "suite": reader.suite.name,
            "genesis": b64(genesis.canonical_bytes()),
            "genesis_hash": genesis.hash.hex(),
            "event": {"index": index, "leaf": b64(leaf), "details": None},
            "inclusion": ex.inclusion(index, size, log2),
            "checkpoint": reader.witnessed_note(block.height, note),
            "transaction": b64(tx.raw) if tx is not None else None,
            "validator_updates": ex.validator_updates(later[0].height if later else
                                                      block.height),
        }
        if later is not None:
            bundle["consistency"] = {
                "checkpoint": reader.witnessed_note(later[0].height, later[1]),
                "proof": [b64(h) for h in log2.consistency_proof(size, later_size)],
            }
    return bundle
