"""Replays blocks on a fresh ledger and prints each block's hash and state root.

Run as a separate process by test_determinism.py, so that each replay has its own hash
seed: ``python tests/support/replay_worker.py GENESIS_JSON BLOCKS_JSON DATA_DIR``.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from tally.genesis import Genesis
from tally.ledger import open_ledger


def main() -> None:
    genesis = Genesis.read(Path(sys.argv[1]))
    blocks = json.loads(Path(sys.argv[2]).read_text())
    ledger = open_ledger(Path(sys.argv[3]), genesis)
    out = []
    for block in blocks:
        txs = [ledger.executor.decode(base64.b64decode(raw)) for raw in block["txs"]]
        committed = ledger.commit(ledger.execute(txs, block["time"]))
        out.append({"height": committed.height, "hash": committed.hash.hex(),
                    "state": committed.header.state.hex(),
                    "log_root": committed.header.log_root.hex(),
                    "version": committed.header.version})
    # A control that does depend on the hash seed, to prove the seeds took effect.
    control = ",".join({f"account-{i}" for i in range(32)})
    print(json.dumps({"blocks": out, "control": control}))


if __name__ == "__main__":
    main()
