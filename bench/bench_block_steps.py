"""The longest block contracts can make: a block of calls that each run the meter's worst
case (the costliest CPU per charged step in bench/bench_vm_attacks.py) until the
block's shared step budget (rules.BLOCK_STEPS, decision 0022) is spent.

Times `Ledger.execute` of one such block, beside a block of plain-loop calls, and prints
both against the target of issue 13: no block over 2 s on this machine.

    python bench/bench_block_steps.py [--calls 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.exec.rules import BLOCK_STEPS  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.ledger import open_ledger  # noqa: E402

CHAIN = "bench-block"
T0 = 1_700_000_000_000
#: The worst case of the corpus after the repricing (tests/support/vm_attacks.py,
#: "isinstance-long-list"), and a plain loop for the baseline.
SOURCE = '''
class Worst(Contract):
    def init(self):
        pass

    def worst(self):
        L = list(range(10000))
        while True:
            r = isinstance(L, [int] * 10000)

    def plain(self):
        for i in range(10 ** 12):
            pass
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=12)
    args = ap.parse_args()
    suite = get_suite("intl")
    validator, admin = generate("validator-0", "intl"), generate("admin", "intl")
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)],
                           {admin.address: ["admin"]}, T0)
    nonce = 0

    def sign(kind: str, payload: dict) -> txmod.Transaction:
        nonlocal nonce
        nonce += 1
        raw = txmod.sign(admin.key, chain=CHAIN, nonce=nonce - 1, expiry=1000, kind=kind,
                         payload=payload)
        return txmod.decode(raw, max_size=1 << 20)

    with tempfile.TemporaryDirectory() as tmp:
        ledger = open_ledger(Path(tmp), genesis, validator.key, validator.name)
        clock = iter(range(T0 + 1000, T0 + 10**9, 1000))
        block = ledger.execute([sign("gov.propose", {"action": "contract.deploy",
                                                     "name": "worst", "source": SOURCE})],
                               next(clock), is_verified=lambda _i: True)
        assert block.outcomes[0].ok, block.outcomes[0]
        ledger.commit(block)
        for method in ("plain", "worst"):
            txs = [sign("contract.call", {"contract": "worst", "method": method})
                   for _ in range(args.calls)]
            started = time.perf_counter()
            cpu = time.process_time()
            block = ledger.execute(txs, next(clock), is_verified=lambda _i: True)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            ledger.commit(block)
            codes = {}
            for o in block.outcomes:
                codes[o.code] = codes.get(o.code, 0) + 1
            print(f"{method:6s}: a block of {args.calls} calls ({BLOCK_STEPS:,} steps shared): "
                  f"{wall:.2f} s wall, {cpu:.2f} s CPU; outcomes {codes}; "
                  f"target <= 2 s: {'met' if wall <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
