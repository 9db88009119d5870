"""The sandbox-and-meter corpus: contracts that attack the VM's meter or its sandbox,
each with the typed outcome it must have.

A case is an `AttackCase`: a contract source, the method to call and its
arguments, and the outcome (``"OK"`` or a `tally.errors.Code` value, e.g.
``"VM_OUT_OF_STEPS"``; ``"CONTRACT_REJECTED"`` when the source must not deploy).
Most resource cases repeat their worst-case operation until the step budget runs
out, so the CPU time of one run divided by the steps it was charged is what the
operation costs per step: tests/unit/test_vm_meter_attacks.py bounds it, and
bench/bench_vm_attacks.py prints it beside a plain loop's.

`CORPUS` is a plain list; other corpora (memory accounting, divergence) add their
own lists of the same type and `run_case` runs any of them.

Kinds: ``baseline`` (the plain loop every ratio is against), ``cpu`` (work that grows
with operand size, one case per operation at its worst-case size, and the findings
of issue 13), ``keys`` (dict keys crafted to collide), ``escape`` (sandbox escape
attempts; the sandbox corpus in tests/unit/test_vm_sandbox.py has more).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tally.vm import VM, VMError
from tally.vm.testing import Harness

OK = "OK"
OUT_OF_STEPS = "VM_OUT_OF_STEPS"
MEMORY_LIMIT = "VM_MEMORY_LIMIT"
RUNTIME_ERROR = "VM_RUNTIME_ERROR"
FORBIDDEN = "VM_FORBIDDEN"
REJECTED = "CONTRACT_REJECTED"
#: A loop that allocates as it goes stops on whichever budget runs out first.
BUDGET = (OUT_OF_STEPS, MEMORY_LIMIT)


@dataclass(frozen=True)
class AttackCase:
    """One contract run and the outcome it must have (one code, or any of several
    where two budgets can run out at the same point)."""

    name: str
    source: str
    method: str = "f"
    args: tuple[Any, ...] = ()
    expect: str | tuple[str, ...] = OUT_OF_STEPS
    kind: str = "cpu"

    def accepts(self, code: str) -> bool:
        return code == self.expect if isinstance(self.expect, str) else code in self.expect


@dataclass(frozen=True)
class Outcome:
    """What one run did: its code (``"OK"`` or the error's), the steps and memory it
    was charged, and the CPU seconds of this thread it took (the call only)."""

    code: str
    steps: int
    memory: int
    cpu_s: float
    message: str = ""


def run_case(case: AttackCase, steps: int | None = None, vm: VM | None = None) -> Outcome:
    """Deploy ``case`` on a fresh harness and call it once with ``steps`` (the
    default budget if None)."""
    h = Harness(vm)
    try:
        h.deploy("c", case.source)
    except VMError as e:
        return Outcome(e.code, 0, 0, 0.0, e.message)
    meter = h.vm._rt.meter  # the charges of a failed call are not in a result
    start = time.thread_time()
    try:
        result = h.result("c", case.method, *case.args, steps=steps)
    except VMError as e:
        cpu = time.thread_time() - start
        memory = h.vm.limits.max_memory - max(meter.memory, 0)
        return Outcome(e.code, e.steps_used or 0, memory, cpu, e.message)
    cpu = time.thread_time() - start
    memory = h.vm.limits.max_memory - meter.memory
    return Outcome(OK, result.steps_used, memory, cpu)


def method(body: str, params: str = "") -> str:
    """A contract whose entry point ``f`` runs ``body``."""
    body = textwrap.dedent(body).strip("\n")
    return f"class C:\n    def f(self{params}):\n" + textwrap.indent(body, " " * 8) + "\n"


def repeat(setup: str, op: str) -> str:
    """``setup``, then ``r = op`` until the step budget runs out."""
    return method(textwrap.dedent(setup).strip("\n") + f"\nwhile True:\n    r = {op}\n")


def _cpu(name: str, setup: str, op: str, expect: str | tuple[str, ...] = BUDGET) -> AttackCase:
    return AttackCase(name, repeat(setup, op), expect=expect)


#: a: 4096 bits, h: 2048 bits, m: the largest 4096-bit modulus shape (ints stay below 2**4096)
BIG = "a = (1 << 4095) | 12345\nh = (1 << 2047) | 999\nm = (1 << 4095) - 159 + (1 << 4095)\n"
TEXT = "s = 'a' * 1000000\nt = 'a' * 1000000\nu = '\\u4e2d' * 250000\nbb = b'a' * 1000000\n"
LIST = "L = list(range(10000))\nS = ['x' * 1000 + str(i) for i in range(1000)]\n"

CORPUS: list[AttackCase] = [
    AttackCase("plain-loop", method("for i in range(10 ** 12):\n    pass"), kind="baseline"),
    # -- big integers ------------------------------------------------------------------
    _cpu("int-pow-mod-4096", BIG, "pow(a, a, m)"),
    # -- values sharing their parts: 2**40 nodes reachable from 41 lists ----------------
    AttackCase("index-of-shared-dag", method(
        "a = [1]\nfor i in range(40):\n    a = [a, a]\nreturn [1].index(a)")),
    AttackCase("isinstance-nested-types", method(
        "t = int\nfor i in range(5000):\n    t = [t]\nreturn isinstance(1, t)"), expect="OK"),
    AttackCase("isinstance-shared-types", method(
        "t = [str]\nfor i in range(40):\n    t = [t, t]\nreturn isinstance(1, t)")),
    AttackCase("in-of-shared-dag", method(
        "a = [1]\nfor i in range(40):\n    a = [a, a]\nreturn a in [[1], 2]")),
    _cpu("int-pow-mod-2048", BIG, "pow(h, h, (1 << 2048) - 159)"),
    _cpu("int-pow-mod-1024", BIG, "pow(h >> 1024, h >> 1024, (1 << 1024) - 105)"),
    _cpu("int-pow-mod-small-modulus", BIG, "pow(a, a, (1 << 61) - 1)"),
    _cpu("int-pow-mod-inverse", BIG, "pow(h, -1, m)"),
    _cpu("int-pow", BIG, "3 ** 2580"),
    _cpu("int-mul-2048x2048", BIG, "h * h"),
    _cpu("int-mul-4095x1", BIG, "a * 1"),
    _cpu("int-floordiv-by-64-bits", BIG, "a // 18446744073709551557"),
    _cpu("int-floordiv-by-20-bits", BIG, "a // 1000003"),
    _cpu("int-floordiv-by-2048-bits", BIG, "a // h"),
    _cpu("int-mod-by-64-bits", BIG, "a % 18446744073709551557"),
    _cpu("int-divmod", BIG, "divmod(a, 18446744073709551557)"),
    _cpu("int-sub", BIG, "a - h"),
    _cpu("int-add", BIG, "a + h"),
    _cpu("int-and-xor-or", BIG, "(a & m) ^ (a | h)"),
    _cpu("int-shift", BIG, "(h << 2000) >> 1000"),
    _cpu("int-compare", BIG + "a2 = a + 0", "a == a2"),
    _cpu("int-neg-abs", BIG, "abs(-a)"),
    _cpu("int-sum", BIG + "L = [a >> 12] * 1000", "sum(L)"),
    _cpu("int-to-str", BIG, "str(a)"),
    _cpu("int-fstring", BIG, "f'{a}'"),
    _cpu("int-fstring-hex", BIG, "f'{a:x}'"),
    _cpu("int-hex-bin", BIG, "hex(a) + bin(a)"),
    _cpu("int-from-str", BIG + "d = str(a)", "int(d)"),
    _cpu("int-to-bytes", BIG, "a.to_bytes(512, 'big')"),
    _cpu("int-from-bytes", BIG + "d = a.to_bytes(512, 'big')", "int.from_bytes(d, 'big')"),
    AttackCase("int-sub-grows-past-cap", method("x = 3\nwhile True:\n    x = x - -x"),
               expect=MEMORY_LIMIT),  # fmt: skip
    AttackCase("int-isub-grows-past-cap", method("x = 3\nwhile True:\n    x -= -x"),
               expect=MEMORY_LIMIT),  # fmt: skip
    AttackCase("int-sum-past-cap", method(BIG + "return sum([a] * 1000)"), expect=MEMORY_LIMIT),
    AttackCase("int-augitem-sub-past-cap",
               method("d = {1: 3}\nwhile True:\n    d[1] -= -d[1]"), expect=MEMORY_LIMIT),  # fmt: skip
    AttackCase("int-from-long-str", method("return int('9' * 4300)"), expect=MEMORY_LIMIT),
    # -- str and bytes -----------------------------------------------------------------
    _cpu("str-eq-equal-1.5MB", "x = 'x' * 1500000\ny = 'x' * 1500000", "x == y"),
    _cpu("str-lt-equal-1.5MB", "x = 'x' * 1500000\ny = 'x' * 1500000", "x < y"),
    _cpu("bytes-eq-equal-1.5MB", "x = b'x' * 1500000\ny = b'x' * 1500000", "x == y"),
    _cpu("str-find-worst", TEXT, "s.find('a' * 49 + 'b' + 'a')"),
    _cpu("str-count-worst", TEXT, "s.count('aab')"),
    _cpu("str-index-worst", TEXT + "s2 = s + 'aab'", "s2.index('aab')"),
    _cpu("str-rfind-worst", TEXT, "s.rfind('baa')"),
    _cpu("str-in-worst", TEXT, "'a' * 49 + 'b' + 'a' in s"),
    _cpu("bytes-find-worst", TEXT, "bb.find(b'aab')"),
    _cpu("str-replace-worst", TEXT, "s.replace('aab', 'x')"),
    _cpu("str-replace-all", TEXT, "s.replace('a', 'bc')"),
    _cpu("str-split-worst", TEXT, "s.split('aab')"),
    _cpu("str-split-all", TEXT, "s.split('a')"),
    _cpu("str-partition-worst", TEXT, "s.partition('aab')"),
    _cpu("str-startswith", TEXT, "s.startswith(t)"),
    _cpu("str-join", "parts = ['ab'] * 100000", "','.join(parts)"),
    _cpu("str-upper-non-ascii", TEXT, "u.upper()"),
    _cpu("str-upper-ascii", TEXT, "s.upper()"),
    _cpu("str-title", TEXT, "s.title()"),
    _cpu("str-isalpha-non-ascii", TEXT, "u.isalpha()"),
    _cpu("str-isdigit-non-ascii", TEXT, "u.isdigit()"),
    _cpu("str-isidentifier-non-ascii", TEXT, "u.isidentifier()"),
    _cpu("str-isprintable-non-ascii", TEXT, "u.isprintable()"),
    _cpu("str-strip", TEXT, "s.strip('a')"),
    _cpu("str-encode-non-ascii", TEXT, "u.encode()"),
    _cpu("bytes-decode", TEXT + "e = u.encode()", "e.decode()"),
    _cpu("bytes-hex", TEXT, "bb.hex()"),
    _cpu("bytes-fromhex", TEXT + "x = bb[:200000].hex()", "bytes.fromhex(x)"),
    _cpu("str-splitlines", "s = 'a\\n' * 200000", "s.splitlines()"),
    _cpu("str-expandtabs", "s = '\\t' * 10000", "s.expandtabs(8)"),
    _cpu("str-zfill", TEXT, "'1'.zfill(100000)"),
    _cpu("str-concat", TEXT, "s + t"),
    _cpu("str-repeat", "", "'ab' * 500000"),
    _cpu("str-slice", TEXT, "s[1:]"),
    _cpu("str-slice-step", TEXT, "s[::3]"),
    _cpu("str-of-str", TEXT, "str(s)"),
    _cpu("str-fstring-text", TEXT, "f'{s}{t}'"),
    _cpu("str-fstring-repr", TEXT, "f'{u!r}'"),
    _cpu("str-casefold-non-ascii", TEXT, "u.casefold()"),
    _cpu("str-center", "", "'a'.center(900)"),
    # -- dict keys: hashing and collisions ---------------------------------------------
    _cpu("dict-get-long-equal-key", "x = 'k' * 1500000\ny = 'k' * 1500000\nd = {x: 1}", "d[y]"),
    _cpu("dict-in-long-equal-key", "x = 'k' * 1500000\ny = 'k' * 1500000\nd = {x: 1}", "y in d"),
    _cpu("dict-method-get-long-key", "x = 'k' * 1500000\ny = 'k' * 1500000\nd = {x: 1}",
         "d.get(y)"),  # fmt: skip
    _cpu("dict-bytes-key", "x = b'k' * 1500000\ny = b'k' * 1500000\nd = {x: 1}", "d[y]"),
    _cpu("dict-store-long-key", "x = 'k' * 1500000\ny = 'k' * 1500000\nd = {x: 1}",
         "d.setdefault(y, 2)"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-comprehension",
               method("M = 2 ** 61 - 1\nreturn len({k * M + 7: 1 for k in range(20000)})"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-store",
               method("M = 2 ** 61 - 1\nd = {}\nfor k in range(20000):\n    d[k * M + 7] = 1"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-display",
               method("M = 2 ** 61 - 1\nreturn {M: 1, 2 * M: 2}"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-dict",
               method("M = 2 ** 61 - 1\nreturn dict([[k * M, 1] for k in range(5000)])"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-zip",
               method("M = 2 ** 61 - 1\nreturn dict(zip([k * M for k in range(5000)], "
                      "range(5000)))"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-fromkeys",
               method("M = 2 ** 61 - 1\nreturn dict.fromkeys([k * M for k in range(5000)])"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-update",
               method("M = 2 ** 61 - 1\nd = {}\nd.update([[k * M, 1] for k in range(5000)])"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-setdefault",
               method("M = 2 ** 61 - 1\nd = {}\nfor k in range(20000):\n    d.setdefault(k * M, 1)"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-ior",
               method("M = 2 ** 61 - 1\nd = {}\nd |= [[k * M, 1] for k in range(5000)]"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-colliding-int-keys-augitem",
               method("M = 2 ** 61 - 1\nd = {}\nfor k in range(20000):\n    d.setdefault(k, 0)\n"
                      "    d[k * M + 2 ** 62] += 1"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-negative-big-int-key", method("d = {}\nd[-(2 ** 61)] = 1"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-largest-int-key", method("d = {}\nd[2 ** 61 - 2] = 1\nd[-(2 ** 61 - 2)] = 2\n"
                                              "return d[2 ** 61 - 2]"),
               expect=OK, kind="keys"),  # fmt: skip
    AttackCase("dict-tuple-key", method("d = {}\nd[divmod(7, 2)] = 1"), expect=RUNTIME_ERROR,
               kind="keys"),  # fmt: skip
    AttackCase("dict-partition-tuple-key", method("return {'a,b'.partition(','): 1}"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    AttackCase("dict-range-key", method("return dict.fromkeys([range(2 ** 70)])"),
               expect=RUNTIME_ERROR, kind="keys"),  # fmt: skip
    # keys in range that share their low bits: distinct hashes, bounded probing
    AttackCase("dict-int-keys-sharing-low-bits",
               method("while True:\n    d = {k << 40: 1 for k in range(100000)}"), kind="keys"),
    AttackCase("dict-int-keys-sharing-45-low-bits",
               method("while True:\n    d = {k << 45: 1 for k in range(20000)}"), kind="keys"),
    AttackCase("dict-int-keys-sharing-low-bits-store",
               method("d = {}\nk = 0\nwhile True:\n    d[k << 45] = 1\n    k += 1"),
               expect=(OUT_OF_STEPS, MEMORY_LIMIT), kind="keys"),  # fmt: skip
    AttackCase("dict-int-keys-minus-one-minus-two",
               method("while True:\n    d = {-1: 1, -2: 2}\n    r = d[-1] + d[-2]"), kind="keys"),
    # -- containers: copies, unpacking, comparisons, sorting ---------------------------
    _cpu("starred-comprehension-target", LIST, "[b for a, *b in [L] * 200]"),
    _cpu("starred-for-target", LIST, "[1 for x in [0] for a, *b in [L] * 50]"),
    AttackCase("starred-for-loop", method(LIST + "while True:\n    for a, *b in [L] * 50:\n"
                                          "        pass")),  # fmt: skip
    _cpu("starred-nested-assign", LIST + "P = [L, 1]", "[1 for (a, *b), c in [P] * 50]"),
    _cpu("starred-short-rows", "R = [[1, 2]] * 10000", "[b for a, *b in R]"),
    AttackCase("starred-for-short-rows",
               method("R = [[1, 2]] * 10000\nwhile True:\n    for a, *b in R:\n        pass")),  # fmt: skip
    _cpu("str-lt-non-ascii", "x = '\u4e2d' * 250000 + 'a'\ny = '\u4e2d' * 250000 + 'b'", "x < y"),
    _cpu("str-lt-mixed-kinds", "x = 'a' * 250000 + '\u4e2d'\ny = 'a' * 250000 + '\U0001f600'",
         "x < y"),  # fmt: skip
    AttackCase("starred-assign", method(LIST + "while True:\n    a, *b = L")),
    AttackCase("starred-nested-assign-statement",
               method(LIST + "P = [L, 1]\nwhile True:\n    (a, *b), c = P")),  # fmt: skip
    _cpu("list-repeat", LIST, "L * 10"),
    _cpu("list-concat", LIST, "L + L"),
    _cpu("list-copy-slice", LIST, "L[:]"),
    _cpu("list-spread", LIST, "[*L, *L]"),
    _cpu("list-in-big-strs", LIST + "x = 'x' * 1000 + 'y'", "x in S"),
    _cpu("list-in-big-ints", BIG + "L = [a] * 10000\nb2 = a - 1", "b2 in L"),
    _cpu("list-index-big-strs", LIST + "x = 'x' * 1000 + '999'", "S.index(x)"),
    _cpu("list-count-big-strs", LIST, "S.count(S[0])"),
    _cpu("list-eq-nested", LIST + "A = [L, L, L]\nB = [L[:], L[:], L[:]]", "A == B"),
    _cpu("list-lt-big-strs", LIST + "T = S[:]", "S < T"),
    _cpu("list-eq-equal-long-strs", "A = ['x' * 1500000]\nB = ['x' * 1500000]", "A == B"),
    _cpu("list-eq-many-equal-strs", LIST + "T = ['x' * 1000 + str(i) for i in range(1000)]",
         "S == T"),  # fmt: skip
    _cpu("dict-eq-long-str-values", "A = {1: 'x' * 1500000}\nB = {1: 'x' * 1500000}", "A == B"),
    _cpu("list-in-nested-long-strs", "A = ['x' * 100000]\nB = [['x' * 100000]] * 100",
         "A in B"),  # fmt: skip
    _cpu("sorted-nested-long-strs", "N = [['x' * 10000 + str(i)] for i in range(100)]",
         "sorted(N)"),  # fmt: skip
    _cpu("bytes-of-list", LIST, "bytes([i & 255 for i in L])"),
    _cpu("bytes-decode-replace", "e = b'\\xff' * 1000000", "e.decode('utf-8', 'replace')"),
    _cpu("str-encode-ascii-replace", TEXT, "u.encode('ascii', 'replace')"),
    _cpu("int-from-hex-str", BIG + "d = hex(a)", "int(d, 16)"),
    _cpu("int-from-str-base0", BIG + "d = str(a)", "int(d, 0)"),
    _cpu("sorted-long-strings", LIST, "sorted(S)"),
    _cpu("sorted-long-strings-reverse", LIST, "sorted(S, reverse=True)"),
    _cpu("sorted-key-long-strings", LIST, "sorted(L[:1000], key=lambda i: S[i])"),
    _cpu("sorted-big-ints", BIG + "L = [a - i for i in range(1000)]", "sorted(L)"),
    _cpu("sorted-small-ints", LIST, "sorted(L)"),
    _cpu("sorted-nested", LIST + "N = [[i, [i]] for i in range(1000)]", "sorted(N)"),
    _cpu("list-sort-key", LIST, "S[:].sort(key=len)"),
    _cpu("min-long-strings", LIST, "min(S)"),
    _cpu("max-key-long-strings", LIST, "max(L[:1000], key=lambda i: S[i])"),
    _cpu("max-big-ints", BIG + "L = [a - i for i in range(1000)]", "max(L)"),
    _cpu("dict-items", "d = {i: i for i in range(10000)}", "d.items()"),
    _cpu("dict-copy", "d = {i: i for i in range(10000)}", "d.copy()"),
    _cpu("dict-merge", "d = {i: i for i in range(10000)}", "d | d"),
    _cpu("dict-from-pairs", "P = [[i, i] for i in range(10000)]", "dict(P)"),
    _cpu("dict-comprehension", "", "{i: i for i in range(1000)}"),
    _cpu("list-comprehension", "", "[i for i in range(1000)]"),
    _cpu("enumerate-zip", LIST, "list(zip(L, enumerate(L)))"),
    _cpu("list-of-str", TEXT, "list(s[:100000])"),
    _cpu("reversed-list", LIST, "list(reversed(L))"),
    _cpu("any-all", LIST, "any([0] * 10000) or all(L)"),
    _cpu("list-insert-front", LIST, "L.insert(0, 1)"),
    _cpu("list-pop-front", "L = list(range(10000)) * 100", "L.pop(0)"),
    _cpu("str-of-nested-list", LIST, "str([L, L])"),
    _cpu("fstring-nested", LIST, "f'{[S, L]}'"),
    _cpu("str-of-big-ints-in-list", BIG + "L = [a] * 100", "str(L)"),
    _cpu("fstring-big-int-dict-keys", BIG + "D = {i: a for i in range(100)}", "f'{D}'"),
    _cpu("isinstance-list", LIST, "isinstance(L, [int, str, bytes, bool, list, dict])"),
    _cpu("isinstance-long-list", LIST, "isinstance(L, [int] * 10000)"),
    _cpu("str-strip-whitespace", "s = ' ' * 1000000", "s.strip()"),
    _cpu("bytes-strip", "s = b'a' * 1000000", "s.strip(b'a')"),
    # -- sandbox escapes -----------------------------------------------------------------
    # tests/unit/test_vm_sandbox.py holds the sandbox corpus (dunders, __subclasses__ via a
    # literal, gi_frame, '{0.__class__}'.format and format_map, __traceback__,
    # __builtins__, getattr, partial and generator internals, %-formatting...); these are
    # the variants it does not have, reached through the guards this corpus exercises.
    AttackCase("escape-type-subclasses", method("return type(1).__subclasses__()"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-fstring-dunder", method("x = 1\nreturn f'{x.__class__}'"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-fstring-nested-spec-dunder", method("x = 1\nreturn f'{x:{x.__doc__}}'"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-aliased-int-attribute", method("x = 1\nreturn x.real"), expect=FORBIDDEN,
               kind="escape"),  # fmt: skip
    AttackCase("escape-method-of-method", method("f = 'a'.upper\nreturn f.args"),
               expect=FORBIDDEN, kind="escape"),  # fmt: skip
    AttackCase("escape-fstring-repr-function", method("return f'{self.f!r}'"),
               expect=FORBIDDEN, kind="escape"),  # fmt: skip
    AttackCase("escape-format-function-in-list", method("return str([1, self.f])"),
               expect=FORBIDDEN, kind="escape"),  # fmt: skip
    AttackCase("escape-unpack-iterator-internals",
               method("for a, *b in [[1, 2]]:\n    return b.__class__"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-zip-generator-frame", method("z = zip([1], [2])\nreturn z.gi_frame"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-zip-generator-aliased",
               method("z = zip((x for x in [1]), [2])\nreturn z.send(None)"),
               expect=FORBIDDEN, kind="escape"),  # fmt: skip
    AttackCase("escape-sort-key-builtin", method("return sorted([1, 2], key=getattr)"),
               expect=REJECTED, kind="escape"),  # fmt: skip
    AttackCase("escape-dict-key-object", method("d = {}\nd[self] = 1\nreturn d"),
               expect="VM_INVALID_VALUE", kind="escape"),  # fmt: skip
]


#: Every text method once more, on 1 MB of ASCII str, 250,000 CJK characters and 1 MB of
#: bytes, with arguments at their worst (a needle that matches almost everywhere).
_TEXT_SWEEP = {
    "count": "({x}'aab')", "endswith": "({x}'a' * 500000)", "find": "({x}'aab')",
    "index": "({x}'a')", "isalnum": "()", "isalpha": "()", "isascii": "()", "isdigit": "()",
    "islower": "()", "isspace": "()", "istitle": "()", "isupper": "()", "rfind": "({x}'baa')",
    "rindex": "({x}'a')", "startswith": "({x}'a' * 500000)", "strip": "({x}'a')",
    "lstrip": "({x}'a')", "rstrip": "({x}'a')", "removeprefix": "({x}'a' * 500000)",
    "removesuffix": "({x}'a' * 500000)", "lower": "()", "upper": "()", "capitalize": "()",
    "title": "()", "swapcase": "()", "split": "({x}'aab')", "rsplit": "({x}'aab')",
    "ljust": "(1100000)", "rjust": "(1100000)", "center": "(1100000)", "zfill": "(1100000)",
    "partition": "({x}'aab')", "rpartition": "({x}'baa')", "splitlines": "()",
    "replace": "({x}'aab', {x}'x')", "expandtabs": "()", "join": "([{x}'ab'] * 100000)",
}  # fmt: skip
_STR_ONLY = {
    "casefold": "()", "isdecimal": "()", "isidentifier": "()", "isnumeric": "()",
    "isprintable": "()", "encode": "()",
}  # fmt: skip
for _name, _args in _TEXT_SWEEP.items():
    CORPUS.append(_cpu(f"sweep-str-{_name}", TEXT, f"s.{_name}{_args.format(x='')}"))
    CORPUS.append(_cpu(f"sweep-bytes-{_name}", TEXT, f"bb.{_name}{_args.format(x='b')}"))
    if "{x}" not in _args:
        CORPUS.append(_cpu(f"sweep-cjk-{_name}", TEXT, f"u.{_name}{_args.format(x='')}"))
for _name, _args in _STR_ONLY.items():
    CORPUS.append(_cpu(f"sweep-cjk-{_name}", TEXT, f"u.{_name}{_args}"))
CORPUS += [
    _cpu("sweep-bytes-decode", TEXT, "bb.decode()"),
    _cpu("sweep-bytes-hex", TEXT, "bb.hex(':', 2)"),
    _cpu("sweep-int-bit-length-count", BIG, "a.bit_length() + a.bit_count()"),
    _cpu("sweep-chr-ord-bool-oct", BIG, "[chr(ord('x')), bool(a), oct(a)]"),
    _cpu("sweep-list-append-pop", "L = []", "[L.append(1), L.pop()]"),
    _cpu("sweep-list-extend-clear", LIST + "M = []", "[M.extend(L), M.clear()]"),
    _cpu("sweep-list-remove", LIST + "M = L[:]", "[M.append(9999), M.remove(9999)]"),
    _cpu("sweep-list-reverse", LIST, "L.reverse()"),
    _cpu("sweep-dict-keys-values", "d = {i: i for i in range(10000)}", "[d.keys(), d.values()]"),
    _cpu("sweep-dict-popitem-clear", "d = {}", "[d.update([[1, 2]]), d.popitem(), d.clear()]"),
    _cpu("sweep-range-attributes", "R = range(1, 10 ** 12, 3)",
         "[R.start, R.stop, R.step, R.count(4), R.index(4), 7 in R]"),  # fmt: skip
    _cpu("sweep-tuple-methods", LIST + "t = ('a' * 100000).partition('b')", "[t.count(''), t.index('')]"),
]


def cases(kinds: Sequence[str] | None = None) -> list[AttackCase]:
    """The corpus, or its cases of the given kinds."""
    return [c for c in CORPUS if kinds is None or c.kind in kinds]
