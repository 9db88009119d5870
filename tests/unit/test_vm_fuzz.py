"""Generated inputs: whatever source is deployed and whatever it computes, only
typed errors come out of the VM, never an internal exception. And the value
encoder agrees byte for byte with cbor2's canonical mode."""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.vm import VM, Context, DictStorage, VMError, compile_contract, decode_value, encode_value
from tally.vm.compiler import RUNTIME_NAMES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

VALID = """
class Token(Contract):
    owner = Var(str)
    balances = Map(str, int)

    def init(self):
        self.owner = ctx.caller

    def transfer(self, to: str, amount: int) -> bool:
        balance = self.balances[ctx.caller]
        require(balance >= amount, "insufficient balance")
        self.balances[ctx.caller] = balance - amount
        self.balances[to] += amount
        emit("Transfer", {"to": to, "amount": amount})
        return True
"""

TOKENS = [
    "class", "def", "C", "(", ")", ":", "self", "return", "x", "=", "+", "*", "**", "/", "//",
    "[", "]", "{", "}", ",", ".", "__class__", "__globals__", "lambda", "yield", "for", "in",
    "while", "True", "if", "else", "not", "import", "os", "1", "1.5", "'s'", "b'b'", "@view",
    "view", "Map", "Var", "(str, int)", "emit", "ctx", "caller", "require", "exec", "\n",
    "\n    ", "\n        ", "pass", "try", "except", "global", "async", "await", "f'{x}'",
    "10 ** 10", "range", "len", "call", "raise", "ContractError", "\\", "#", "'''", "é", "ｅ",
    "\x00", "\t", ";", "->", "is", "None", "del", "with", "match", "case",
]  # fmt: skip


def _run_everything(source: str) -> None:
    """Deploy and call every method without arguments; only VMError may escape."""
    try:
        compiled = compile_contract(source)
    except VMError:
        return
    vm = VM()
    storage = DictStorage()
    ctx = Context("fuzzer", 1, 1, b"t")
    try:
        result = vm.deploy("fz", source, [], storage=storage, ctx=ctx, steps=20_000)
    except VMError:
        return
    storage.apply(result.write_set)
    for name in compiled.methods:
        if name == "init":
            continue
        with contextlib.suppress(VMError):
            vm.call("fz", name, [], storage=storage, ctx=ctx, steps=20_000)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_only_typed_errors(tokens: list[str]) -> None:
    _run_everything(" ".join(tokens))


@FUZZ
@given(st.data())
def test_mutated_contract_only_typed_errors(data: st.DataObject) -> None:
    source = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(source)))
        j = data.draw(st.integers(i, min(len(source), i + 12)))
        insert = data.draw(st.sampled_from(["", *TOKENS, " ", "__", "_"]))
        source = source[:i] + insert + source[j:]
    _run_everything(source)


NAMES = ["x", "s", "b", "d", "lst", "self", "ctx", "emit", "str", "int", "len", "list", "dict",
         "range", "sorted", "sum", "max", "zip", "enumerate", "bytes", "require", "call",
         "__class__", "exec", "getattr", "type", "object"]  # fmt: skip
ATTRS = ["upper", "join", "split", "replace", "ljust", "zfill", "encode", "decode", "hex",
         "append", "extend", "keys", "items", "get", "pop", "sort", "count", "index",
         "bit_length", "to_bytes", "from_bytes", "fromhex", "caller", "height", "format",
         "gi_frame", "__class__", "__dict__", "mro", "send", "n", "f"]  # fmt: skip
LITERALS = ["0", "1", "-1", "7", "10 ** 9", "2 ** 70", "'abc'", "''", "b'xy'", "None", "True",
            "[]", "{}", "[1, 'a']", "{'k': 1}", "1.5", "3 / 2"]  # fmt: skip
BINOPS = ["+", "-", "*", "//", "%", "**", "<<", ">>", "|", "&", "^", "==", "<", "in", "not in",
          "is", "and", "or"]  # fmt: skip


def _expressions() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(NAMES + LITERALS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(BINOPS), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(ATTRS)).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, st.lists(inner, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}:]"),
            st.lists(inner, max_size=3).map(lambda t: f"[{', '.join(t)}]"),
            st.tuples(inner, inner).map(lambda t: f"{{{t[0]}: {t[1]}}}"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]} for x in {t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"sum({t[0]} for x in {t[1]})"),
            inner.map(lambda e: f"(lambda x: {e})(1)"),
            inner.map(lambda e: f"f'{{{e}}}'"),
            inner.map(lambda e: f"str({e})"),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        )

    return st.recursive(leaf, extend, max_leaves=8)


@FUZZ
@given(_expressions())
def test_generated_expressions_only_typed_errors(expr: str) -> None:
    body = f"""
    x = 3
    s = "abc"
    b = b"xy"
    d = {{"k": [1, 2]}}
    lst = [3, 1, 2]
    self.n = len(lst)
    return {expr}
    """
    source = "class C:\n    n = Var(int)\n    def f(self):\n" + textwrap.indent(
        textwrap.dedent(body), " " * 8
    )
    _run_everything(source)


def test_fuzz_vocabulary_avoids_runtime_name_typos() -> None:
    assert {"emit", "ctx", "call", "require"} <= RUNTIME_NAMES


storable = st.recursive(
    st.one_of(
        st.integers(min_value=-(2**200), max_value=2**200),
        st.text(max_size=30),
        st.binary(max_size=30),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.binary(max_size=4)),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(storable)
def test_encoding_is_cbor2_canonical(value: object) -> None:
    assert encode_value(value) == cbor2.dumps(value, canonical=True)
    assert decode_value(encode_value(value)) == value


# --------------------------------------------------------------------------------------
# Random contract programs (issue 13, part 4): statements and expressions over the
# allowed subset, with values chosen to reach the limits (huge ints, deep and wide
# nesting, non-ASCII text, DAGs). Every outcome is a typed VM error other than
# INTERNAL, with a message naming no VM internals, and the same whatever room the
# host's Python stack leaves.
# --------------------------------------------------------------------------------------

PROGRAM_LEAVES = [
    "x", "y", "L", "d", "s", "b", "0", "1", "-1", "255", "2 ** 64", "-(2 ** 64)", "2 ** 4000",
    "'a'", "''", "'\\U0001F600' * 3", "'\\x00\\n\\''", "'\\u00e9' * 40", "b'\\x00'", "None",
    "True", "[]", "{}", "[1, [2, [3]]]", "{'k': [1]}", "{5: 'v'}", "self.v", "len(L)",
]  # fmt: skip


def _program_expressions() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(PROGRAM_LEAVES)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        two = st.tuples(inner, inner)
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%", "==", "<", "in", "!="]),
                      inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"str({e})"),
            inner.map(lambda e: f"f'{{{e}!r}}'"),
            inner.map(lambda e: f"f'{{{e}!a:>20}}'"),
            inner.map(lambda e: f"len({e})"),
            inner.map(lambda e: f"[{e}] * 3"),
            inner.map(lambda e: f"sorted([{e}, {e}])"),
            two.map(lambda t: f"{{{t[0]}: {t[1]}}}"),
            two.map(lambda t: f"[{t[0]}, {t[1]}]"),
            two.map(lambda t: f"{t[0]}[{t[1]}]"),
            inner.map(lambda e: f"d.get({e})"),
            inner.map(lambda e: f"L.index({e})"),
            inner.map(lambda e: f"({e} - (-{e}))"),
            inner.map(lambda e: f"max([{e}, {e}])"),
            inner.map(lambda e: f"try_call(ctx.contract, 'g', {e})"),
        )

    return st.recursive(leaf, extend, max_leaves=6)


def _program_statements(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    nest_depth = st.sampled_from([3, 31, 32, 99, 100, 101, 500])
    return st.one_of(
        expr.map(lambda e: f"x = {e}"),
        expr.map(lambda e: f"y = {e}"),
        expr.map(lambda e: f"L.append({e})"),
        st.tuples(expr, expr).map(lambda t: f"d[{t[0]}] = {t[1]}"),
        expr.map(lambda e: f"s = f'{{{e}}}'"),
        expr.map(lambda e: f"self.v = {e}"),
        expr.map(lambda e: f"emit('E', {{'a': {e}}})"),
        expr.map(lambda e: f"for i in range(3):\n    x = {e}"),
        nest_depth.map(lambda n: f"for i in range({n}):\n    x = [x]"),
        nest_depth.map(lambda n: f"for i in range({n}):\n    d = {{'k': d}}"),
        st.just("for i in range(40):\n    L = [L, L]"),
        expr.map(lambda e: f"a, *rest = [{e}, {e}]"),
        st.just("x = 2 ** 4000\nfor i in range(3000):\n    x = x - (-x)"),
    )


@st.composite
def _programs(draw: st.DrawFn) -> str:
    expr = _program_expressions()
    statements = draw(st.lists(_program_statements(expr), min_size=1, max_size=6))
    body = "x = 1\ny = 'y'\nL = [1, 2]\nd = {'k': 1}\ns = ''\nb = b'b'\n"
    body += "\n".join(statements) + f"\nreturn {draw(expr)}\n"
    return (
        "class P:\n    v = Var()\n    def g(self, x) -> int:\n        return 1\n"
        "    def f(self):\n" + textwrap.indent(body, " " * 8)
    )


_INTERNAL_NAMES = ("<locals>", "make_guards", "b_str", "b_sorted", "guards.", "method()")


def _outcome_of(vm: VM, storage: DictStorage) -> tuple[Any, ...]:
    try:
        r = vm.call("p", "f", [], storage=storage, ctx=Context("fuzzer", 1, 1, b"t"),
                    steps=30_000)
    except VMError as e:
        assert e.code != "INTERNAL", e
        assert not any(n in e.message for n in _INTERNAL_NAMES), e.message
        return (e.code, e.message, e.steps_used)
    return ("OK", sorted(r.write_set.items()), r.return_value, r.steps_used)


def _with_headroom_left(frames: int, fn: Callable[[], Any]) -> Any:
    """``fn()`` called with only about ``frames`` levels left below the recursion limit."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]

    def down(k: int) -> Any:
        return fn() if k <= 0 else down(k - 1)

    return down(sys.getrecursionlimit() - depth - frames)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(_programs())
def test_random_programs_end_in_typed_errors_whatever_the_host_stack(source: str) -> None:
    try:
        compile_contract(source)
    except VMError as e:
        assert e.code != "INTERNAL"
        return
    storage = DictStorage()
    vm = VM()
    deployed = vm.deploy("p", source, [], storage=storage, ctx=Context("f", 1, 1, b"t"))
    storage.apply(deployed.write_set)
    roomy = _outcome_of(vm, storage)
    # the same call with little room left on the host's stack (the VM reruns it with
    # the room it needs): the same outcome
    cramped = _with_headroom_left(120, lambda: _outcome_of(VM(), storage))
    assert cramped == roomy


def test_error_messages_are_bounded_and_name_contract_things() -> None:
    """Pinned examples of what the fuzz above checks at random: a KeyError carrying a
    4,001-bit int, summarised (a 14,401-bit one, which CPython refuses to print, once
    escaped the VM as a ValueError; ints can no longer grow past 4,096 bits), a long key,
    and wrong arguments to guarded methods and builtins."""
    cases = {
        "x = 2 ** 4000\nreturn {}[x]": "KeyError: <int of 4001 bits>",
        "return {}['k' * 5000]": "KeyError: 'kkkkkkkkkk",
        "return 'a'.ljust()": "TypeError: ljust() missing 1 required positional argument",
        "return [1].copy(5)": "TypeError: copy() takes 1 positional argument",
        "return str(1, 2, 3, 4)": "TypeError: str() takes from 0 to 3 positional arguments",
        "return sorted()": "TypeError: sorted() missing 1 required positional argument",
    }  # fmt: skip
    for body, start in cases.items():
        source = "class C:\n    def f(self):\n" + textwrap.indent(body, " " * 8)
        vm, storage = VM(), DictStorage()
        storage.apply(vm.deploy("c", source, [], storage=storage,
                                ctx=Context("a", 1, 1, b"t")).write_set)
        try:
            vm.call("c", "f", [], storage=storage, ctx=Context("a", 1, 1, b"t"))
        except VMError as e:
            assert e.code == "VM_RUNTIME_ERROR", (body, e)
            assert e.message.startswith(start), (body, e.message)
            assert len(e.message) < 400
            assert not any(n in e.message for n in _INTERNAL_NAMES), e.message
        else:
            raise AssertionError(body)


def test_a_low_host_recursion_limit_is_raised_not_obeyed() -> None:
    """In process: a host whose recursion limit leaves the VM too little room gets
    the outcome a generous host gets, and its limit raised (never lowered)."""
    body = "x = []\nfor i in range(99):\n    x = [x]\ndef g(k):\n    if k == 0:\n"
    body += "        return len(str(x))\n    return g(k - 1)\nreturn g(90)"
    source = "class C:\n    def f(self):\n" + textwrap.indent(body, " " * 8)
    vm, storage = VM(), DictStorage()
    ctx = Context("a", 1, 1, b"t")
    storage.apply(vm.deploy("c", source, [], storage=storage, ctx=ctx).write_set)
    roomy = vm.call("c", "f", [], storage=storage, ctx=ctx)
    before = sys.getrecursionlimit()
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    sys.setrecursionlimit(depth + 60)
    try:
        cramped = vm.call("c", "f", [], storage=storage, ctx=ctx)
        raised = sys.getrecursionlimit()
    finally:
        sys.setrecursionlimit(before)
    assert (cramped.return_value, cramped.steps_used) == (roomy.return_value, roomy.steps_used)
    assert raised > depth + 60
