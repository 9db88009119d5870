"""Contract token transfers per second, committed end to end on the embedded node, and
the same transfer logic as a plain Python function (the limit), side by side.

Pre-signs N ``contract.call`` transactions (Token.transfer) from many senders, submits
them in-process (Node.submit_many) and measures until the last one's block is durable.
In the same run it times the plain function (over a dict of ints, and over the VM's
canonical-CBOR storage format: the same work as the contract's reads and writes) and the
bare VM call, and commits the same number of native ``custody.transfer`` transactions
(a token transfer written as plain Python inside the executor) on a fresh node, and
prints the ratios.

    python bench/bench_contracts.py [--txs 10000] [--senders 200] [--suite intl]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.node import Node  # noqa: E402
from tally.vm.testing import Harness  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_custody  # noqa: E402
from bench_vm import PREFIX, cbor_transfer, plain_transfer  # noqa: E402  (bench_vm's limits)

from tally.vm import encode_value  # noqa: E402

CHAIN = "bench"
TOKEN = '''
class Token(Contract):
    owner = Var(str)
    balances = Map(str, int)

    def init(self, supply: int):
        self.owner = ctx.caller
        self.balances[ctx.caller] = supply

    def fund(self, accounts: list, amount: int):
        require(ctx.caller == self.owner, "only the owner funds")
        for account in accounts:
            self.balances[account] += amount

    def transfer(self, to: str, amount: int) -> bool:
        require(amount > 0, "amount must be positive")
        balance = self.balances[ctx.caller]
        require(balance >= amount, "insufficient balance")
        self.balances[ctx.caller] = balance - amount
        self.balances[to] += amount
        emit("Transfer", {"from": ctx.caller, "to": to, "amount": amount})
        return True
'''


def bench_plain(n: int, senders: list[str]) -> float:
    balances = {s: 10**9 for s in senders}
    events: list = []
    start = time.process_time()
    for i in range(n):
        plain_transfer(balances, events, senders[i % len(senders)],
                       senders[(i + 1) % len(senders)], 1)
    return (time.process_time() - start) / n


def bench_plain_cbor(n: int, senders: list[str]) -> float:
    state = {PREFIX + encode_value(s): encode_value(10**9) for s in senders}
    events: list = []
    start = time.process_time()
    for i in range(n):
        cbor_transfer(state, events, senders[i % len(senders)],
                      senders[(i + 1) % len(senders)], 1)
    return (time.process_time() - start) / n


def bench_native(suite_name: str, n: int, n_senders: int, data_dir: Path) -> float:
    """Native custody transfers committed per second, the same way (bench_custody)."""
    node, accounts = bench_custody.setup(suite_name, n_senders, data_dir)
    try:
        raws = bench_custody.presign(accounts, n)
        return len(raws) / bench_custody.run_inprocess(node, raws)
    finally:
        node.stop()


def bench_vm(n: int, senders: list[str]) -> float:
    h = Harness()
    h.deploy("token", TOKEN, 10**12, caller="owner")
    h.call("token", "fund", senders, 10**9, caller="owner")
    start = time.process_time()
    for i in range(n):
        h.call("token", "transfer", senders[(i + 1) % len(senders)], 1,
               caller=senders[i % len(senders)])
    return (time.process_time() - start) / n


def bench_chain(suite_name: str, n: int, n_senders: int, data_dir: Path) -> tuple[float, int]:
    suite = get_suite(suite_name)
    validator = generate("validator-0", suite_name)
    admin = generate("admin", suite_name)
    senders = [generate(f"s{i}", suite_name) for i in range(n_senders)]
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)],
                           {admin.address: ["admin"]}, 1_700_000_000_000)
    node = Node(data_dir, genesis, validator).start()
    try:
        setup = [
            txmod.sign(admin.key, chain=CHAIN, nonce=0, expiry=10**5, kind="gov.propose",
                       payload={"action": "contract.deploy", "name": "token", "source": TOKEN,
                                "args": [10**12]}),
            txmod.sign(admin.key, chain=CHAIN, nonce=1, expiry=10**5, kind="contract.call",
                       payload={"contract": "token", "method": "fund",
                                "args": [[s.address for s in senders], 10**9]}, tier=2),
        ]
        for r in node.submit_many(setup, wait=True):
            assert getattr(r, "ok", False), r
        raws = []
        per = n // n_senders
        for nonce in range(per):
            for i, s in enumerate(senders):
                to = senders[(i + 1) % n_senders].address
                raws.append(txmod.sign(s.key, chain=CHAIN, nonce=nonce, expiry=10**5,
                                       kind="contract.call", tier=2,
                                       payload={"contract": "token", "method": "transfer",
                                                "args": [to, 1]}))
        last = txmod.decode(raws[-1], max_size=1 << 20).id
        start = time.perf_counter()
        for i in range(0, len(raws), 2000):
            for r in node.submit_many(raws[i:i + 2000], wait=False):
                if not isinstance(r, str):
                    raise RuntimeError(f"refused: {r!r}")
        while node.reader.tx_row(last) is None:
            node.wait_for_height(node.ledger.height + 1, 0.01)
        elapsed = time.perf_counter() - start
        failed = sum(1 for h in range(1, node.ledger.height + 1)
                     for t in node.reader.block_transactions(h) if t.code != "OK")
        if failed:
            raise RuntimeError(f"{failed} transfers failed")
        return len(raws) / elapsed, len(raws)
    finally:
        node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--txs", type=int, default=10_000)
    ap.add_argument("--senders", type=int, default=200)
    args = ap.parse_args()
    names = [f"{i:040x}" for i in range(args.senders)]
    plain = bench_plain(200_000, names)
    plain_cbor = bench_plain_cbor(100_000, names)
    vm = bench_vm(20_000, names)
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    try:
        rate, n = bench_chain(args.suite, args.txs, args.senders, tmp / "node")
        native = bench_native(args.suite, args.txs, args.senders, tmp / "native")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"plain Python transfer, dict of ints:     {plain * 1e6:8.2f} µs CPU per call")
    print(f"plain Python transfer, CBOR storage:     {plain_cbor * 1e6:8.2f} µs CPU per call")
    print(f"VM contract call (no chain):             {vm * 1e6:8.2f} µs CPU per call "
          f"= {vm / plain_cbor:.1f}x the plain function over the same storage format, "
          f"{vm / plain:.1f}x over a dict of ints")
    print(f"committed end to end ({args.suite}): {rate:,.0f} contract transfers/s "
          f"({n} transfers, {args.senders} senders); target 3,000/s")
    print(f"native custody.transfer, same run:       {native:,.0f} transfers/s "
          f"= {native / rate:.2f}x the contract's rate")


if __name__ == "__main__":
    main()
