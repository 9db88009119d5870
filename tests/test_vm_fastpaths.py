"""The VM's fast paths agree with its general paths.

The per-call path of the VM is written out flat, with shortcuts for the common
value shapes (ints that fit 64 bits, ASCII strings, flat dicts of scalars), and
the compiler inlines ``require`` with a constant message. None of that may change
what a call does: the same results, errors, write sets and events, and the same
step and memory charges down to the unit. These tests pin the charges of a set of
calls (measured before the shortcuts existed) and compare each shortcut with the
general code it stands in for, on generated values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from tally.vm import (
    VM,
    Limits,
    MemoryLimitExceeded,
    OutOfSteps,
    VMError,
)
from tally.vm.testing import Harness

SOURCE = """
class S(Contract):
    owner = Var(str)
    total = Var(int)
    items = Var(list)
    meta = Var(dict)
    note = Var(str, default=None)
    balances = Map(str, int)
    names = Map(int, str)
    blobs = Map(bytes, list)

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

    def bump(self, by: int) -> int:
        self.total += by
        return self.total

    def push(self, x: int) -> list:
        items = self.items
        items.append(x)
        self.items = items
        return self.items

    def put_meta(self, d: dict) -> dict:
        self.meta = d
        emit("Meta", d)
        return self.meta

    def name(self, k: int, v: str) -> str:
        self.names[k] = v
        emit("Name", [k, v])
        self.note = v
        return self.names.get(k)

    def blob(self, k: bytes, v: list) -> list:
        self.blobs[k] = v
        seen = k in self.blobs
        del self.blobs[k]
        return [seen, self.blobs[k], self.note]

    def big(self, x: int) -> int:
        self.balances["big"] = x * x
        self.balances["big"] -= 1
        return self.balances["big"]

    def many(self, n: int) -> int:
        for i in range(n):
            emit("E", {"i": i, "s": "\u00e9" * i, "b": b"x", "n": None, "t": True, 7: [i]})
        return n

    def echo(self, a: list, b: dict, c: str, d: int, e: bytes, f: bool) -> list:
        emit("Echo", {"a": a, "b": b})
        return [a, b, c, d, e, f]

    def fail(self, amount: int):
        require(amount < 0)

    def fail_msg(self, m: str):
        require(len(m) > 100, m)

    def fail_fmt(self, m: str):
        require(len(m) > 100, f"too short: {m}")

    def nested(self, other: str) -> list:
        a = call(other, "bump", 2)
        b = view_call(other, "peek")
        c = try_call(other, "fail", 1)
        return [a, b, c]

    @view
    def peek(self) -> int:
        return self.total
"""

ALICE = "tally1alice000000000000000000000000000000"
BOB = "tally1bob00000000000000000000000000000000"

#: (method, args, caller) run in order on one store, each after the ones before it.
SCENARIOS: list[tuple[str, list[Any], str]] = [
    ("transfer", [BOB, 7], ALICE),
    ("transfer", [BOB, 5], ALICE),
    ("transfer", [ALICE, 3], BOB),
    ("transfer", [BOB, 10**30], ALICE),
    ("transfer", [BOB, 0], ALICE),
    ("bump", [5], ALICE),
    ("bump", [2**70], ALICE),
    ("push", [1], ALICE),
    ("push", [-(2**65)], ALICE),
    ("put_meta", [{"a": 1, "b": "x", "c": None, "d": True, "e": b"\x00"}], ALICE),
    ("put_meta", [{"n\u00e9": [1, {"x": 2}], 5: "five", b"k": -1}], ALICE),
    ("name", [3, "three"], ALICE),
    ("name", [-(2**64), "\u2603 snow"], ALICE),
    ("blob", [b"key", [1, "two", b"3", None, [4]]], ALICE),
    ("big", [2**40], ALICE),
    ("big", [2**2000], ALICE),
    ("many", [3], ALICE),
    ("echo", [[1, 2], {"k": "v"}, "plain", 2**64, b"raw", False], ALICE),
    ("echo", [[], {}, "\u00fc", -1, b"", True], ALICE),
    ("fail", [1], ALICE),
    ("fail_msg", ["short"], ALICE),
    ("fail_fmt", ["short"], ALICE),
    ("nested", ["s2"], ALICE),
]


def _store() -> Harness:
    h = Harness()
    h.deploy("s", SOURCE, 10**18, caller=ALICE)
    h.deploy("s2", SOURCE, 1, caller=ALICE)
    return h


def _outcome(vm: VM, h: Harness, method: str, args: list[Any], caller: str, **kw: Any) -> Any:
    """What a call did, in a comparable form; commits it if it succeeded."""
    try:
        r = vm.call("s", method, args, storage=h.storage, ctx=h.ctx(caller), **kw)
    except VMError as e:
        return ("error", e.code, e.message, e.steps_used)
    h.storage.apply(r.write_set)
    events = [(e.contract, e.name, e.data) for e in r.events]
    digest = hashlib.sha256(
        cbor2.dumps([list(r.write_set.items()), events, r.return_value], canonical=True)
    ).hexdigest()[:16]
    return ("ok", digest, r.steps_used)


def _fits(h: Harness, method: str, args: list[Any], caller: str, memory: int) -> bool:
    vm = VM(Limits(max_memory=memory))
    try:
        vm.call("s", method, args, storage=h.storage, ctx=h.ctx(caller))
    except (MemoryLimitExceeded, OutOfSteps):
        return False
    except VMError:
        return True  # fails the same way with any budget
    return True


def _least_memory(h: Harness, method: str, args: list[Any], caller: str) -> int:
    lo, hi = 0, 1 << 20
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(h, method, args, caller, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def measure() -> list[tuple[Any, ...]]:
    """Each scenario's outcome, the least step budget that gives the same outcome,
    and the least memory budget under which it does not run out."""
    h = _store()
    vm = VM()
    out = []
    for method, args, caller in SCENARIOS:
        memory = _least_memory(h, method, args, caller)
        probe = Harness()
        probe.storage.data = dict(h.storage.data)
        outcome = _outcome(vm, probe, method, args, caller)
        used = outcome[-1]
        # one step less than the call used runs out of steps, exactly at the budget
        short = Harness()
        short.storage.data = dict(h.storage.data)
        ran_out = _outcome(vm, short, method, args, caller, steps=used - 1)
        assert ran_out[:2] == ("error", "VM_OUT_OF_STEPS"), (method, ran_out)
        exact = Harness()
        exact.storage.data = dict(h.storage.data)
        assert _outcome(vm, exact, method, args, caller, steps=used) == outcome
        _outcome(vm, h, method, args, caller)
        out.append((method, outcome, memory))
    return out


#: Measured on the VM before any of the fast paths (commit 5b5c6bb).
EXPECTED: list[tuple[Any, ...]] = [
    ("transfer", ("ok", "0d031804f6af3fd2", 153), 314),
    ("transfer", ("ok", "6f61d4808ab5a40c", 153), 314),
    ("transfer", ("ok", "ff27b9758e114f34", 153), 314),
    ("transfer", ("error", "CONTRACT_ERROR", "insufficient balance", 88), 0),
    ("transfer", ("error", "CONTRACT_ERROR", "amount must be positive", 83), 0),
    ("bump", ("ok", "15362d91bbd33ed9", 43), 74),
    ("bump", ("ok", "680756ee4f7576be", 43), 84),
    ("push", ("ok", "2fe63a249c75278d", 57), 75),
    ("push", ("ok", "c32ea36562dc90da", 57), 86),
    ("put_meta", ("ok", "0b9aa6ab97f9a294", 64), 154),
    ("put_meta", ("ok", "a501e08b3540cc8c", 64), 156),
    ("name", ("ok", "8a2e9f247b865a7c", 99), 223),
    ("name", ("ok", "ac4bf7df0e26660a", 99), 237),
    ("blob", ("ok", "38f0852b2f97f4b5", 98), 167),
    ("big", ("ok", "78674f9e9afe6f78", 82), 187),
    ("big", ("ok", "1e1caf071886fcf6", 157), 2180),
    ("many", ("ok", "a81a29e3255b5fbd", 156), 195),
    ("echo", ("ok", "bb262830c368dacf", 47), 64),
    ("echo", ("ok", "40e10ce6820675cb", 47), 64),
    ("fail", ("error", "CONTRACT_ERROR", "requirement failed", 9), 0),
    ("fail_msg", ("error", "CONTRACT_ERROR", "short", 14), 0),
    ("fail_fmt", ("error", "CONTRACT_ERROR", "too short: short", 17), 5),
    ("nested", ("ok", "d7768e73405c9546", 400), 75),
]


def test_charges_and_outcomes_are_pinned() -> None:
    assert measure() == EXPECTED
