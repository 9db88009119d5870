"""`tally audit` over a large ledger: seconds for N custody events, and per million.

Builds a ledger of N custody transfers (one event each) straight through the ledger, in
blocks of --block transactions (building is not timed), then times `audit_ledger`, which
re-derives everything from the raw rows: both logs and every stored node, every header,
receipt root and checkpoint, every transaction signature, the state trie and its nodes.
The target (issue 14) is a 1,000,000-event ledger in 60 s; the run prints the measured
rate and what it gives for a million.

    python bench/bench_audit.py [--events 100000] [--block 5000] [--suite intl|gm]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.audit import audit_ledger  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.ledger import open_ledger  # noqa: E402

CHAIN = "bench-audit"
T0 = 1_700_000_000_000


def build(data_dir: Path, suite_name: str, events: int, block: int):
    suite = get_suite(suite_name)
    validator = generate("validator-0", suite_name)
    issuer = generate("issuer", suite_name)
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)],
                           {issuer.address: ["issuer"]}, T0)
    ledger = open_ledger(data_dir, genesis, validator.key, validator.name)
    holders = [generate(f"h{i}", suite_name).address for i in range(1000)]
    nonce = 0
    time_ms = T0

    def commit(raws: list[bytes]) -> None:
        nonlocal time_ms
        time_ms += 1000
        txs = [txmod.decode(r, max_size=1 << 20) for r in raws]
        block = ledger.execute(txs, time_ms, is_verified=lambda _id: True)
        failed = [o for o in block.outcomes if not o.ok]
        assert not failed, failed[0]
        ledger.commit(block)

    def sign(kind: str, payload: dict) -> bytes:
        nonlocal nonce
        nonce += 1
        return txmod.sign(issuer.key, chain=CHAIN, nonce=nonce - 1, expiry=50_000, kind=kind,
                          payload=payload)

    commit([sign("asset.issue", {"asset": "BOND", "class": "security", "name": "bond",
                                 "quantity": 10**15})])
    made = 1
    while made < events:
        n = min(block, events - made)
        commit([sign("custody.transfer", {"asset": "BOND", "to": holders[(made + i) % 1000],
                                          "quantity": 1}) for i in range(n)])
        made += n
    ledger.store.close()
    return genesis


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--block", type=int, default=5_000)
    ap.add_argument("--suite", default="intl")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        genesis = build(Path(tmp), args.suite, args.events, args.block)
        print(f"built {args.events:,} events ({args.suite}) in "
              f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        report = audit_ledger(Path(tmp) / "chain.sqlite", genesis)
        took = time.perf_counter() - started
        assert report.problems == [], report.problems
        per_million = took * 1_000_000 / args.events
        print(f"audit: {took:.2f} s for {args.events:,} events; "
              f"{per_million:.1f} s per 1,000,000 (target 60 s: "
              f"{'met' if per_million <= 60 else 'NOT met'})")
        for line in report.lines:
            print(f"  {line}")


if __name__ == "__main__":
    main()
