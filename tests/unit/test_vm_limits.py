"""Metering and limits: runaway contracts stop promptly with a typed error, every
write is reverted, and the host process stays healthy."""

from __future__ import annotations

import resource
import textwrap
import time

import pytest

from tally.vm import (
    InvalidValue,
    Limits,
    MemoryLimitExceeded,
    OutOfSteps,
    RecursionLimitExceeded,
    VMError,
)
from tally.vm.testing import Harness

PROMPT_SECONDS = 10.0  # of CPU: generous, as an attack stopped by the meter takes < 1 s
#: Where memory and steps run out together, either may fire first.
BUDGET = (MemoryLimitExceeded, OutOfSteps)


def method(body: str, prelude: str = "", params: str = "") -> str:
    return (
        prelude
        + "class C:\n    n = Var(int)\n    def f(self"
        + params
        + "):\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8)
    )


ATTACKS = [
    ("infinite-while", "while True:\n    pass", OutOfSteps),
    ("huge-range-loop", "for i in range(10 ** 12):\n    pass", OutOfSteps),
    ("infinite-list-comprehension", "return [x for x in range(10 ** 12)]", OutOfSteps),
    ("infinite-dict-comprehension", "return {x: x for x in range(10 ** 12)}", OutOfSteps),
    ("generator-into-sum", "return sum(x for x in range(10 ** 12))", OutOfSteps),
    ("any-over-generator", "return any(x < 0 for x in range(10 ** 12))", OutOfSteps),
    ("sum-range", "return sum(range(10 ** 12))", OutOfSteps),
    ("max-range", "return max(range(10 ** 12))", OutOfSteps),
    ("enumerate-into-list", "return list(enumerate(range(10 ** 12)))", BUDGET),
    ("deep-recursion", "def g(n):\n    return g(n + 1)\nreturn g(0)", RecursionLimitExceeded),
    ("method-recursion", "return self.f()", RecursionLimitExceeded),
    ("lambda-recursion", "g = lambda n: g(n + 1)\nreturn g(0)", RecursionLimitExceeded),
    ("str-repeat", "return 'a' * 10 ** 10", MemoryLimitExceeded),
    ("list-repeat", "return [0] * 10 ** 9", MemoryLimitExceeded),
    ("pow-tower", "return 2 ** 10 ** 10", MemoryLimitExceeded),
    ("pow-ten-tower", "return 10 ** 10 ** 10", MemoryLimitExceeded),
    ("shift", "return 1 << 10 ** 10", MemoryLimitExceeded),
    ("int-squaring", "x = 3\nwhile True:\n    x = x * x", MemoryLimitExceeded),
    ("str-doubling", "s = 'ab'\nwhile True:\n    s = s + s", MemoryLimitExceeded),
    ("str-doubling-augmented", "s = 'ab'\nwhile True:\n    s += s", MemoryLimitExceeded),
    ("list-extend-self", "x = [1]\nwhile True:\n    x.extend(x)", MemoryLimitExceeded),
    ("list-star-doubling", "x = [1]\nwhile True:\n    x = [*x, *x]", BUDGET),
    ("nested-list-growth", "x = [1]\nwhile True:\n    x = [x] * 1000", MemoryLimitExceeded),
    ("list-of-lists-growth", "x = []\nwhile True:\n    x.append(x[:] + x[:])", MemoryLimitExceeded),
    ("ljust", "return 'a'.ljust(10 ** 10)", MemoryLimitExceeded),
    ("center", "return 'a'.center(10 ** 9)", MemoryLimitExceeded),
    ("zfill", "return '1'.zfill(10 ** 9)", MemoryLimitExceeded),
    ("replace-empty", "return ('a' * 10000).replace('', 'x' * 10000)", MemoryLimitExceeded),
    ("join-growth", "s = 'x' * 1000\nwhile True:\n    s = s.join([s, s])", MemoryLimitExceeded),
    ("expandtabs", "return '\\t'.expandtabs(10 ** 9)", MemoryLimitExceeded),
    ("format-width", "return f'{1:>1000000000}'", MemoryLimitExceeded),
    ("bytes-n", "return bytes(10 ** 10)", MemoryLimitExceeded),
    ("to-bytes", "return (1).to_bytes(10 ** 9, 'big')", MemoryLimitExceeded),
    ("list-of-range", "return list(range(10 ** 10))", MemoryLimitExceeded),
    ("sorted-range", "return sorted(range(10 ** 9))", MemoryLimitExceeded),
    ("slice-copy-loop", "s = 'x' * 1000000\nwhile True:\n    t = s[1:]", MemoryLimitExceeded),
    ("int-from-long-str", "return int('9' * 4000)", MemoryLimitExceeded),
    (
        "dict-merge-growth",
        "d = {i: i for i in range(1000)}\nwhile True:\n    d = d | {k + len(d): 1 for k in d}",
        OutOfSteps,
    ),
    # Work on shared structure: a DAG of 2**60 leaves costs 60 steps to build.
    (
        "dag-compare",
        "a = [1]\nb = [1]\nfor i in range(60):\n    a = [a, a]\n    b = [b, b]\nreturn a == b",
        OutOfSteps,
    ),
    ("dag-str", "a = [1]\nfor i in range(60):\n    a = [a, a]\nreturn str(a)", OutOfSteps),
    (
        "dag-in",
        "a = [1]\nfor i in range(60):\n    a = [a, a]\nreturn a in [a[:], a[:]]",
        OutOfSteps,
    ),
    ("dag-store", "a = [1]\nfor i in range(60):\n    a = [a, a]\nself.n = 0\nreturn a",
     InvalidValue),
    ("in-range-non-int", "return 'x' in range(10 ** 18)", None),
]


@pytest.mark.parametrize(("case", "body", "error"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_stopped_promptly(
    case: str, body: str, error: type[VMError] | tuple[type[VMError], ...] | None
) -> None:
    h = Harness()
    h.deploy("c", method(body))
    # CPU time of this thread, not wall time: what the attack made the node compute,
    # whatever else the machine is doing. A bound on work (a node stays healthy), not a
    # performance target.
    start = time.thread_time()
    if error is None:
        assert h.call("c", "f") is False
    else:
        with pytest.raises(error):
            h.call("c", "f")
    assert time.thread_time() - start < PROMPT_SECONDS


def test_budget_errors_revert_every_write() -> None:
    h = Harness()
    h.deploy("c", method("self.n = 41\nemit('E', {})\nwhile True:\n    pass"))
    before = dict(h.storage.data)
    with pytest.raises(OutOfSteps) as info:
        h.call("c", "f")
    assert info.value.code == "VM_OUT_OF_STEPS"
    assert h.storage.data == before
    assert [e.name for e in h.events] == []


def test_step_budget_is_the_callers_choice() -> None:
    h = Harness()
    h.deploy("c", method("for i in range(k):\n    pass\nreturn k", params=", k: int"))
    small = h.result("c", "f", 10)
    large = h.result("c", "f", 1000)
    assert small.steps_used < large.steps_used
    with pytest.raises(OutOfSteps):
        h.call("c", "f", 1000, steps=small.steps_used * 10)
    assert h.result("c", "f", 1000, steps=large.steps_used).return_value == 1000


def test_steps_are_deterministic() -> None:
    a, b = Harness(), Harness()
    src = method("x = {}\nfor i in range(50):\n    x[str(i)] = i * i\nreturn sorted(x.keys())")
    a.deploy("c", src)
    b.deploy("c", src)
    assert a.result("c", "f").steps_used == b.result("c", "f").steps_used


def test_recursion_cap_is_far_below_python_limit() -> None:
    h = Harness(vm=__import__("tally.vm", fromlist=["VM"]).VM(Limits(max_frames=50)))
    h.deploy("c", method("if d == 0:\n    return 0\nreturn self.f(d - 1) + 1", params=", d: int"))
    assert h.call("c", "f", 49) == 49
    with pytest.raises(RecursionLimitExceeded) as info:
        h.call("c", "f", 50)
    assert "nested contract frames" in info.value.message  # the VM's count, not Python's


def test_nested_call_depth_is_capped() -> None:
    h = Harness()
    src = (
        "class R:\n    def f(self, n: int) -> int:\n        return call(ctx.contract, 'f', n + 1)\n"
    )
    h.deploy("r", src)
    with pytest.raises(RecursionLimitExceeded, match="nested contract calls"):
        h.call("r", "f", 0)


def test_memory_budget_is_per_call() -> None:
    h = Harness()
    h.deploy("c", method("s = 'x' * 10 ** 6\nreturn len(s + s)"))
    for _ in range(50):  # 2 MB per call, far more than the budget in total
        assert h.call("c", "f") == 2 * 10**6


def test_host_stays_healthy_after_attacks() -> None:
    """Run every attack again in one VM, then check the process did not balloon
    and the VM still works."""
    h = Harness()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for i, (_, body, error) in enumerate(ATTACKS):
        h.deploy(f"c{i}", method(body))
        try:
            h.call(f"c{i}", "f")
        except VMError:
            pass
        else:
            assert error is None
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 400, f"peak RSS grew by {grown_mib:.0f} MiB"
    h.deploy("ok", method("self.n = 5\nreturn self.n"))
    assert h.call("ok", "f") == 5


def test_failed_calls_report_steps_used() -> None:
    h = Harness()
    h.deploy("c", method("for i in range(k):\n    pass\nrequire(False, 'no')", params=", k: int"))
    with pytest.raises(VMError) as small:
        h.call("c", "f", 10)
    with pytest.raises(VMError) as large:
        h.call("c", "f", 100)
    assert 0 < small.value.steps_used < large.value.steps_used
    with pytest.raises(OutOfSteps) as spent:
        h.call("c", "f", 10**9, steps=5000)
    assert spent.value.steps_used == 5000
