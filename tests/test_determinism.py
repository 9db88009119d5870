"""Determinism: the same blocks give the same state on every node.

The blocks a node committed are replayed on two fresh ledgers in separate processes
with different hash seeds; every block hash and state root must match the original.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tally.protocol.header import BlockHeader
from tests.conftest import Chain


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
    chain.ok("admin", "role.grant", {"account": chain.addr("bob"), "role": "issuer"})


def test_replays_on_fresh_nodes_under_different_hash_seeds(chain: Chain, tmp_path: Path) -> None:
    history(chain)
    reader = chain.node.reader
    height = chain.node.ledger.height
    blocks, expected = [], []
    for h in range(1, height + 1):
        row = reader.block_row(h)
        header = BlockHeader.decode(row.header)
        blocks.append({"time": header.time,
                       "txs": [base64.b64encode(t.raw).decode() for t in reader.block_transactions(h)]})
        expected.append({"height": h, "hash": row.hash.hex(), "state": header.state.hex(),
                         "log_root": header.log_root.hex()})
    genesis_path = tmp_path / "genesis.json"
    chain.genesis.write(genesis_path)
    blocks_path = tmp_path / "blocks.json"
    blocks_path.write_text(json.dumps(blocks))
    worker = Path(__file__).with_name("replay_worker.py")
    results = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, str(worker), str(genesis_path), str(blocks_path),
                              str(tmp_path / f"replay-{seed}")], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout))
    assert results[0]["control"] != results[1]["control"], (
        "the seeds did not change set order; the test proves nothing")
    assert results[0]["blocks"] == expected
    assert results[1]["blocks"] == expected


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
