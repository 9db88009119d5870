"""Token transfers per second through the contract VM, beside the same logic as a
plain Python function (the limit).

    .venv/bin/python bench/bench_vm.py [--calls N] [--repeat R]

Three rows:

* ``plain dict``: the transfer as a Python function over a dict of ints; no
  metering, no sandbox, no encoding. The ceiling.
* ``plain + CBOR``: the same function over a dict of canonical-CBOR bytes with the
  VM's key layout, i.e. what any design pays for the storage format.
* ``VM``: ``VM.call`` on the deployed token contract (compiled once, cached),
  including argument checks, metering, the overlay, the sorted write set and
  applying it to a dict-backed store.

Best of ``R`` interleaved rounds of ``N`` calls each, timed in CPU seconds, so a\nbusy machine disturbs it less.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally.vm import VM, Context, DictStorage, decode_value, encode_value  # noqa: E402

TOKEN = """
class Token(Contract):
    owner = Var(str)
    balances = Map(str, int)

    def init(self, supply: int):
        self.owner = ctx.caller
        self.balances[ctx.caller] = supply

    def transfer(self, to: str, amount: int) -> bool:
        require(amount > 0, "amount must be positive")
        sender = ctx.caller
        balance = self.balances[sender]
        require(balance >= amount, "insufficient balance")
        self.balances[sender] = balance - amount
        self.balances[to] += amount
        emit("Transfer", {"from": sender, "to": to, "amount": amount})
        return True
"""

SENDER = "tally1alice000000000000000000000000000000"
RECEIVER = "tally1bob00000000000000000000000000000000"


class Failed(Exception):
    pass


def plain_transfer(state: dict[str, int], events: list, sender: str, to: str, amount: int) -> bool:
    if amount <= 0:
        raise Failed("amount must be positive")
    balance = state.get(sender, 0)
    if balance < amount:
        raise Failed("insufficient balance")
    state[sender] = balance - amount
    state[to] = state.get(to, 0) + amount
    events.append(("Transfer", {"from": sender, "to": to, "amount": amount}))
    return True


PREFIX = b"c/tok/balances/"


def cbor_transfer(
    state: dict[bytes, bytes], events: list, sender: str, to: str, amount: int
) -> bool:
    if amount <= 0:
        raise Failed("amount must be positive")
    k_from = PREFIX + encode_value(sender)
    k_to = PREFIX + encode_value(to)
    raw = state.get(k_from)
    balance = decode_value(raw) if raw else 0
    if balance < amount:
        raise Failed("insufficient balance")
    raw_to = state.get(k_to)
    state[k_from] = encode_value(balance - amount)
    state[k_to] = encode_value((decode_value(raw_to) if raw_to else 0) + amount)
    events.append(("Transfer", {"from": sender, "to": to, "amount": amount}))
    return True


def best(fns: list, calls: int, repeat: int) -> list[float]:
    """Best CPU seconds per call of each function over ``repeat`` rounds.

    Rounds interleave the functions and time CPU rather than wall clock, so a
    machine shared with other work skews the ratios as little as it can.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.process_time()
            fn(calls)
            times[i].append((time.process_time() - start) / calls)
    return [min(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    state = {SENDER: 10**15}

    def run_plain(n: int) -> None:
        events: list = []
        for _ in range(n):
            plain_transfer(state, events, SENDER, RECEIVER, 1)

    cstate = {PREFIX + encode_value(SENDER): encode_value(10**15)}

    def run_cbor(n: int) -> None:
        events: list = []
        for _ in range(n):
            cbor_transfer(cstate, events, SENDER, RECEIVER, 1)

    vm = VM()
    storage = DictStorage()
    storage.apply(
        vm.deploy(
            "tok", TOKEN, [10**15], storage=storage, ctx=Context(SENDER, 1, 0, b"deploy")
        ).write_set
    )
    ctx = Context(SENDER, 2, 1_000, b"\x00" * 32)
    call = vm.call
    apply = storage.apply

    def run_vm(n: int) -> None:
        for _ in range(n):
            apply(call("tok", "transfer", [RECEIVER, 1], storage=storage, ctx=ctx).write_set)

    steps = vm.call("tok", "transfer", [RECEIVER, 1], storage=storage, ctx=ctx).steps_used
    names = ["plain dict", "plain + CBOR", "VM"]
    rows = list(
        zip(names, best([run_plain, run_cbor, run_vm], args.calls, args.repeat), strict=True)
    )
    limit = rows[0][1]
    print(f"token transfer, best of {args.repeat} x {args.calls} calls ({steps} steps per VM call)")
    print(f"{'':14}{'calls/s':>12}{'us/call':>10}{'x plain':>9}")
    for name, sec in rows:
        print(f"{name:14}{1 / sec:>12,.0f}{sec * 1e6:>10.2f}{sec / limit:>9.1f}")
    assert decode_value(storage.get(PREFIX + encode_value(RECEIVER))) > 0


if __name__ == "__main__":
    main()
