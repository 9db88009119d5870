"""Determinism: the same blocks give the same state on every node.

The blocks a node committed are replayed on two fresh ledgers in separate processes
with different hash seeds; every block hash and state root must match the original.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.chain import Chain
from tests.support.replay import recorded_blocks, replay_under_seeds


def history(chain: Chain) -> None:
    chain.issue("BOND", 10_000, to="alice")
    chain.issue("RCV", 500, to="bob", asset_class="receivable")
    pledge = chain.ok("alice", "custody.pledge", {"asset": "BOND", "pledgee": chain.addr("lender"),
                                                  "quantity": 1000})
    freeze = chain.ok("custodian", "custody.freeze", {"asset": "BOND", "holder": chain.addr("alice"),
                                                      "quantity": 500, "reason": "order"})
    failed = chain.send("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                      "quantity": 99_999})
    assert failed.code == "INSUFFICIENT_UNITS"  # recorded in its block, replayed too
    chain.ok("alice", "custody.appoint_agent", {"agent": chain.addr("carol")})
    raws = [chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr(n),
                                                     "quantity": i + 1})
            for i, n in enumerate(["bob", "carol", "lender", "bob"] * 5)]
    raws += [chain.sign("bob", "asset.redeem", {"asset": "RCV", "quantity": 100})]
    for r in chain.node.submit_many(raws, wait=True):
        assert r.ok
    chain.ok("lender", "custody.enforce", {"pledge": pledge.tx})
    chain.ok("regulator", "custody.unfreeze", {"freeze": freeze.tx})
    chain.grant(chain.addr("bob"), "issuer")


def test_replays_on_fresh_nodes_under_different_hash_seeds(chain: Chain, tmp_path: Path) -> None:
    history(chain)
    blocks, expected = recorded_blocks(chain.node)
    for replayed in replay_under_seeds(chain.genesis, blocks, tmp_path):
        assert replayed == expected


def test_event_leaves_are_canonical_cbor() -> None:
    """The hot-path leaf encoder relies on its key order; it must equal canonical CBOR."""
    import cbor2

    from tally.exec.context import Event
    from tally.ledger import encode_event_leaf

    cases = [Event("custody.transfer", "BOND", "a" * 40, "b" * 40, 7),
             Event("document.attest", None, "c" * 40, None, 0, b"\x01" * 32, {"title": "t"}),
             Event("validator.update", quantity=2**40)]
    for ev in cases:
        leaf = encode_event_leaf(ev, height=2**33, tx_id=b"\x07" * 32, index=3,
                                 time_ms=1_767_225_600_000, details_hash=b"\x09" * 32)
        assert leaf == cbor2.dumps(cbor2.loads(leaf), canonical=True)
