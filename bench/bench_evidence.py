"""Offline verification time of one evidence bundle, signature checks included.

Builds a small embedded chain per suite, exports the bundle of one transfer (with and
without a consistency proof) and times ``verify_bundle`` — the whole check a court's
verifier runs: genesis hash, checkpoint signatures and quorum, inclusion proof, details,
the transaction's signature, and the consistency proof.

    python bench/bench_evidence.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.evidence.export import export_bundle  # noqa: E402
from tally.evidence.verify import verify_bundle  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.node import Node  # noqa: E402


def measure(suite_name: str, rounds: int) -> dict[str, float]:
    suite = get_suite(suite_name)
    validator, issuer, bob = (generate(n, suite_name) for n in ("v", "issuer", "bob"))
    genesis = make_genesis("bench", suite, [("v", validator.key)],
                           {issuer.address: ["issuer"]}, 1_700_000_000_000)
    clock = itertools.count(1_700_000_001_000, 1000)
    node = Node(Path(tempfile.mkdtemp()), genesis, validator, clock_ms=lambda: next(clock))
    node.start()
    try:
        raws = [txmod.sign(issuer.key, chain="bench", nonce=0, expiry=10**5, kind="asset.issue",
                           payload={"asset": "B", "class": "security", "name": "b",
                                    "quantity": 10**6})]
        raws += [txmod.sign(issuer.key, chain="bench", nonce=i, expiry=10**5,
                            kind="custody.transfer",
                            payload={"asset": "B", "to": bob.address, "quantity": i})
                 for i in range(1, 200)]
        for raw in raws:
            node.submit_and_wait(raw)
        out = {}
        for label, consistency in (("bundle", False), ("bundle + consistency", True)):
            text = json.dumps(export_bundle(node.reader, 100, consistency=consistency))
            pinned = genesis.hash.hex()
            verify_bundle(text, genesis_hash=pinned)
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                verify_bundle(text, genesis_hash=pinned)
                times.append(time.perf_counter() - start)
            out[label] = statistics.median(times) * 1000
        return out
    finally:
        node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    print("| suite | what | verify, median ms | target |")
    print("|---|---|---:|---:|")
    for suite in ("intl", "gm"):
        for label, ms in measure(suite, args.rounds).items():
            print(f"| {suite} | {label} | {ms:.2f} | 5.00 |")


if __name__ == "__main__":
    main()
