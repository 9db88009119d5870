"""Replaying a node's committed blocks on fresh ledgers in other processes.

The determinism tests record what a node committed (each block's time and raw
transactions, and the hashes and roots it reached), replay the blocks on fresh ledgers in
separate processes (tests/support/replay_worker.py) under different hash seeds, and compare.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tally.genesis import Genesis
from tally.node import Node
from tally.protocol.header import BlockHeader


def recorded_blocks(node: Node) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the blocks to replay, the facts each reached on this node)."""
    reader = node.reader
    blocks, facts = [], []
    for h in range(1, reader.height() + 1):
        row = reader.block_row(h)
        assert row is not None
        header = BlockHeader.decode(row.header)
        blocks.append({"time": header.time, "txs": [base64.b64encode(t.raw).decode()
                                                    for t in reader.block_transactions(h)]})
        facts.append({"height": h, "hash": row.hash.hex(), "state": header.state.hex(),
                      "log_root": header.log_root.hex(), "version": header.version})
    return blocks, facts


def replay_under_seeds(genesis: Genesis, blocks: list[dict[str, Any]], workdir: Path,
                       seeds: tuple[str, ...] = ("0", "12345")) -> list[list[dict[str, Any]]]:
    """Each seed's replay: the facts of every block, from a fresh ledger in its own process."""
    genesis_path = workdir / "genesis.json"
    genesis.write(genesis_path)
    blocks_path = workdir / "blocks.json"
    blocks_path.write_text(json.dumps(blocks))
    worker = Path(__file__).with_name("replay_worker.py")
    results = []
    for seed in seeds:
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, str(worker), str(genesis_path), str(blocks_path),
                              str(workdir / f"replay-{seed}")], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout))
    assert len({r["control"] for r in results}) == len(seeds), (
        "the seeds did not change set order; the test proves nothing")
    return [r["blocks"] for r in results]
