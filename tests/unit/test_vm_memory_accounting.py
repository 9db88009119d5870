"""The VM accounts memory itself: each memory attack (tests/support/vm_attacks_memory.py)
ends with its typed error, and the process's peak while it ran, measured by
tracemalloc, stays within twice what the VM charged to the memory budget, plus what
the step budget bounds (objects of a constant size made by a display in a loop, at
most `BYTES_PER_STEP` a step; see
docs/decisions/0506-vm-memory-and-nesting-accounting.md).

Also: strings count their UTF-8 bytes, formatted text is charged before it is
built, and storage reads and boundary copies are charged by size."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tally.vm import DEFAULT_LIMITS, VM, Limits, VMError
from tally.vm.compiler import compile_contract
from tally.vm.testing import Harness
from tests.support.vm_attacks_memory import (
    MEMORY_CASES,
    STARRED_COMPREHENSION,
    AttackCase,
    contract,
    run_setup,
)

#: Bytes of constant-size objects (a list or dict display, an int) a loop can keep
#: per step without a memory charge: measured at 11 at most (a five-entry dict
#: display appended in a loop); comprehension items are charged (``_kept``).
BYTES_PER_STEP = 16
#: tracemalloc's own noise and the VM's fixed per-call objects.
SLACK = 1 << 20
PROMPT_SECONDS = 10.0
#: Either budget refusing a request before it is built keeps the peak down: under the
#: CPU charges of decision 0505 several attacks are refused for their steps first.
REFUSED = ("VM_MEMORY_LIMIT", "VM_OUT_OF_STEPS")


def _run(case: AttackCase, limits: Limits = DEFAULT_LIMITS) -> tuple[str, int, int, int]:
    """``(code, peak, charged, steps)`` of one attack: its outcome, the traced peak
    above what was allocated before the call, the bytes the VM charged (capped at
    the budget: a refused request is charged in full without being made), steps."""
    h = Harness(VM(limits))
    h.deploy("c", case.source)
    run_setup(h, case)
    meter = h.vm._rt.meter
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        start = time.thread_time()
        try:
            result = h.result("c", case.method, *case.args)
            code, steps = "OK", result.steps_used
        except VMError as e:
            code, steps = e.code, e.steps_used or 0
        elapsed = time.thread_time() - start
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert elapsed < PROMPT_SECONDS * 3  # tracemalloc slows allocation down
    charged = min(limits.max_memory, limits.max_memory - meter.memory)
    return code, peak, charged, steps


@pytest.mark.parametrize("case", MEMORY_CASES, ids=[c.name for c in MEMORY_CASES])
def test_memory_attack_peak_within_twice_the_charge(case: AttackCase) -> None:
    code, peak, charged, steps = _run(case)
    assert code in case.expect
    bound = 2 * charged + BYTES_PER_STEP * steps + SLACK
    assert peak <= bound, f"peak {peak >> 20} MiB, charged {charged >> 20} MiB, {steps} steps"
    # and the headline: never past twice the budget plus what the steps bound
    assert peak <= 2 * DEFAULT_LIMITS.max_memory + BYTES_PER_STEP * DEFAULT_LIMITS.max_steps


def test_starred_comprehension_target_is_charged() -> None:
    """``[b for a, *b in [L] * 200]`` copies L per item: the compiler routes each item
    through a guard that charges the copy (``_unpackeach``)."""
    code = compile_contract(STARRED_COMPREHENSION.source).code
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    assert names & {"_spread", "_unpackeach"}
    code_, peak, charged, steps = _run(STARRED_COMPREHENSION)
    assert code_ in REFUSED
    assert peak <= 2 * charged + BYTES_PER_STEP * steps + SLACK


def _charged(body: str, *args: object, setup: tuple[str, ...] = (), extra: str = "") -> int:
    h = Harness()
    h.deploy("c", contract(body, ", a" if args else "", extra))
    run_setup(h, AttackCase("", "", "", (), (), setup))
    meter = h.vm._rt.meter
    h.call("c", "f", *args)
    return DEFAULT_LIMITS.max_memory - meter.memory


def test_strings_are_charged_by_utf8_bound() -> None:
    ascii_cost = _charged("s = 'a' * 10000\nreturn len(s)")
    wide_cost = _charged("s = '\\U0001F600' * 10000\nreturn len(s)")
    assert ascii_cost >= 10000
    assert wide_cost >= 40000


def test_formatting_charges_the_text_before_building_it() -> None:
    # 250 references to one dict whose key is 1 MB: the text would be 250 MB
    h = Harness()
    h.deploy("c", contract("k = 'x' * 10 ** 6\nreturn len(f'{[{k: 0}] * 250}')"))
    tracemalloc.start()
    try:
        with pytest.raises(VMError) as info:
            h.call("c", "f")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code in REFUSED
    assert peak < 8 << 20
    # and a text that fits is charged at least its length
    assert _charged("k = 'x' * 1000\nreturn len(str([{k: 0}] * 250))") >= 250 * 1000


def test_values_past_the_value_cap_count_bytes_not_characters() -> None:
    h = Harness()
    h.deploy("c", contract("return '\\U0001F600' * 20000"))  # 80,000 bytes
    with pytest.raises(VMError) as info:
        h.call("c", "f")
    assert info.value.code == "VM_INVALID_VALUE"
    h.deploy("d", contract("return '\\u00e9' * 20000"))  # 40,000 bytes: fits
    assert len(h.call("d", "f")) == 20000


def test_storage_reads_are_charged_by_size() -> None:
    store = "def put_l(self, n: int):\n    self.l = list(range(n))\n"
    small = _charged("x = self.l\nreturn 0", setup=("put_l:10",), extra=store)
    large = _charged("x = self.l\nreturn 0", setup=("put_l:4000",), extra=store)
    assert large - small >= 8 * 3990  # at least a slot an item
    h = Harness()
    h.deploy("c", contract("t = 0\nfor i in range(k):\n    t += len(self.l)\nreturn t",
                           params=", k: int", extra=store))
    h.call("c", "put_l", 4000)
    one = h.result("c", "f", 1).steps_used
    ten = h.result("c", "f", 10).steps_used
    assert ten - one >= 9 * 4000  # a step an item, on every read


def test_boundary_copies_are_charged_per_item() -> None:
    callee = "def g(self, x: list) -> int:\n    return 1\n"
    h = Harness()
    h.deploy("c", contract("L = [0] * k\nreturn try_call(ctx.contract, 'g', L)",
                           params=", k: int", extra=callee))
    small = h.result("c", "f", 10).steps_used
    large = h.result("c", "f", 10000).steps_used
    assert large - small >= 9990
    # a list too long to be storable is refused at once, and try_call catches it
    assert h.call("c", "f", 10**6)[1]["code"] == "VM_INVALID_VALUE"
