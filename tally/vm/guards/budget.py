"""The budget primitives every guard charges through: steps, frames, memory, nesting.

`make_budget` binds them to one meter; each guard family takes the `Budget` and
copies the functions it calls into its own locals, so the guards it builds reach
them through their closure, as fast as before the families were split.

Invariants (docs/decisions/0506-vm-memory-and-nesting-accounting.md):

* Every walk over a contract value here is iterative, level by level, counts each
  node as often as it is reached (a DAG costs what its expansion costs), and stops
  as soon as the count passes what is left of the budget it is charged to, so the
  walk itself is bounded by the budget.
* A value nested deeper than ``Limits.max_nesting`` is refused (``VM_RECURSION_LIMIT``)
  by the walk that precedes any operation that would recurse over it in C (repr,
  comparison, ``in``, sorting, copying): CPython's recursion limit, which differs
  between hosts, is never what stops contract code.
* Sizes charged to the memory budget are computed before the allocation, from the
  value alone: strings by a bound of their UTF-8 size (``len`` if ASCII, else
  ``4 * len``), text made by formatting by the length of the text it will make,
  copies by `footprint`'s model of CPython's object sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import Forbidden, MemoryLimitExceeded, OutOfSteps, RecursionLimitExceeded
from ..limits import Limits
from .runtime import _CONTAINERS, _SIZED, Meter, size_of, text_bytes


class Budget(NamedTuple):
    """The primitives of one meter (see `make_budget`)."""

    step: Callable[[int], None]
    tick: Callable[[int], bool]
    entered: Callable[[], None]
    lambda_enter: Callable[[int], None]
    lambda_exit: Callable[[None, Any], Any]
    alloc: Callable[[int], None]
    check_int: Callable[[Any], Any]
    deep: Callable[[Any], int]
    materialize: Callable[[Any], list[Any]]
    sized: Callable[[Any], Any]
    walkable: Callable[[Any], Any]
    spread: Callable[[Any], Any]
    #: ``text(value, conversion, extra)``: charge for the text that formatting
    #: ``value`` makes (see `make_budget`).
    text: Callable[[Any, int, int], None]
    #: ``footprint(value)``: charge for a copy of ``value`` (see `make_budget`).
    footprint: Callable[[Any], None]


#: Bytes charged per object a copy or a decoded value makes, modelled on CPython
#: 3.11's sizes (object header and GC header included; see `footprint`).
LIST_BYTES = 72  # + 8 per slot
DICT_BYTES = 240  # + 56 per entry beyond the first 5 (a fresh dict has 8 slots)
STR_BYTES = 56  # + UTF-8 bound of the text
BYTES_BYTES = 40  # + length
INT_BYTES = 32  # + bits / 8


def make_budget(m: Meter, limits: Limits) -> Budget:
    """Charge steps (``step``, ``tick``), frames (``entered``, the lambda pair) and
    memory (``alloc``), and bound integers (``check_int``), all on meter ``m``; and
    the helpers that charge for walking a value (``deep``, ``materialize``, ``sized``,
    ``walkable``, ``spread``)."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    max_frames = limits.max_frames
    max_nesting = limits.max_nesting

    def too_deep() -> RecursionLimitExceeded:
        return RecursionLimitExceeded(f"value nested deeper than {max_nesting} lists or dicts")

    def out_of_memory() -> MemoryLimitExceeded:
        return MemoryLimitExceeded(f"memory budget of {limits.max_memory} bytes exhausted")

    def out_of_steps() -> OutOfSteps:
        return OutOfSteps(f"step budget of {m.budget} exhausted")

    def step(n: int) -> None:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()

    def tick(n: int) -> bool:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()
        return True

    # A function entry charges its weight and counts a frame; its exit uncounts the
    # frame. The compiler writes both out on the meter `_m` in each function (and
    # read_only += 1 / -= 1 around a view's body) and calls `_entered` only when a
    # check fails; a lambda calls `_lamenter` and `_lamexit`.

    def entered() -> None:
        """Raise the error of a function entry whose check failed."""
        if m.steps < 0:
            raise out_of_steps()
        raise RecursionLimitExceeded(f"more than {max_frames} nested contract frames")

    def lambda_enter(n: int) -> None:
        m.steps -= n
        m.frames += 1
        if m.steps < 0 or m.frames > max_frames:
            entered()

    def lambda_exit(_: None, value: Any) -> Any:
        m.frames -= 1
        return value

    def alloc(nbytes: int) -> None:
        m.memory -= nbytes
        if m.memory < 0:
            raise out_of_memory()
        if nbytes >= 64:
            step(nbytes >> 6)

    def check_int(r: Any) -> Any:
        if type(r) is int and not -int_lim < r < int_lim:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return r

    def deep(x: Any) -> int:
        """Nodes in a nested value, counted without recursion and cut off once the
        count passes the steps left: the caller is about to charge it anyway.
        Refuses a value nested deeper than ``max_nesting`` (it is walked level by
        level, so a level past the cap is seen before the count could stop it)."""
        limit = m.steps + 1
        count = 0
        level = [x]
        depth = 0
        while level:
            nxt: list[Any] = []
            push = nxt.extend
            for v in level:
                t = type(v)
                count += 1
                if t is list or t is tuple:
                    count += len(v)
                    push([c for c in v if type(c) in _CONTAINERS])
                elif t is dict:
                    count += len(v)
                    push([c for c in v.values() if type(c) in _CONTAINERS])
                elif t is str or t is bytes:
                    count += len(v) >> 6
                if count > limit:
                    return count
            if nxt:
                depth += 1
                if depth >= max_nesting:
                    raise too_deep()
            level = nxt
        return count

    def text(x: Any, conversion: int, extra: int) -> None:
        """Charge for the text ``str(x)`` (conversion 115), ``repr(x)`` (114) or
        ``ascii(x)`` (97) will be, plus ``extra`` characters (a format width),
        before it is made: one step per node reached (with multiplicity) and the
        text's bytes to the memory budget (a bound of its length, times 4 unless
        it is all ASCII). The walk stops as soon as either budget is passed, so a
        DAG whose text would be 2**60 characters is refused after a few steps.
        Refuses nesting past ``max_nesting`` before CPython would recurse."""
        step_limit = m.steps + 1
        mem_limit = m.memory + 1
        count = 0
        chars = extra
        ascii_only = True
        escape_all = conversion == 97
        t = type(x)
        if t is str and conversion != 114 and conversion != 97:  # the text is x itself
            alloc(text_bytes(x) + extra)
            return
        level = [x]
        depth = 0
        while level:
            nxt: list[Any] = []
            push = nxt.extend
            for v in level:
                t = type(v)
                count += 1
                if t is int:
                    bits = v.bit_length()
                    chars += (bits * 1233 >> 12) + 2  # decimal digits, sign
                    if bits > 512:
                        count += (bits * bits) >> 16  # int -> decimal text is quadratic
                elif t is str:
                    n = len(v)
                    count += n >> 6
                    if v.isascii():
                        if v.isprintable():
                            chars += n + 2 + v.count("\\") + v.count("'")
                        else:
                            chars += 4 * n + 2
                    elif escape_all or not v.isprintable():
                        chars += 10 * n + 2
                    else:
                        chars += n + 2 + v.count("\\") + v.count("'")
                        ascii_only = False
                elif t is list or t is tuple:
                    n = len(v)
                    count += n
                    chars += 2 * n + 2
                    push(v)
                elif t is dict:
                    n = len(v)
                    count += 2 * n
                    chars += 4 * n + 2
                    push(v)
                    push(v.values())
                elif t is bytes:
                    n = len(v)
                    count += n >> 6
                    chars += (n + 3) if v.isalnum() else (4 * n + 3)
                elif t is bool or v is None:
                    chars += 5
                else:
                    raise Forbidden(f"cannot format a {t.__name__}")
                if count > step_limit:
                    step(count)  # raises
                if chars > mem_limit:
                    raise out_of_memory()
            if nxt:
                depth += 1
                if depth >= max_nesting:
                    raise too_deep()
            level = nxt
        step(count)
        alloc(chars if ascii_only else 4 * chars)

    def footprint(x: Any) -> None:
        """Charge for a copy of ``x`` (a value crossing a boundary, or one decoded
        from storage): a step per node reached and per 64 bytes of text, and the
        bytes CPython takes for the copy (the `LIST_BYTES`... model above, which is
        at least the real size of each object), walking level by level and
        stopping as soon as either budget is passed. Refuses nesting past
        ``max_nesting``."""
        step_limit = m.steps + 1
        mem_limit = m.memory + 1
        count = 0
        nbytes = 0
        level = [x]
        depth = 0
        while level:
            nxt: list[Any] = []
            push = nxt.extend
            for v in level:
                t = type(v)
                count += 1
                if t is list or t is tuple:
                    n = len(v)
                    count += n
                    nbytes += LIST_BYTES + 8 * n
                    push(v)
                elif t is dict:
                    n = len(v)
                    count += 2 * n
                    nbytes += DICT_BYTES + 56 * max(n - 5, 0)
                    push(v)
                    push(v.values())
                elif t is str:
                    count += len(v) >> 6
                    nbytes += STR_BYTES + text_bytes(v)
                elif t is bytes:
                    count += len(v) >> 6
                    nbytes += BYTES_BYTES + len(v)
                elif t is int:
                    if not -6 < v < 257:  # CPython shares the small ints
                        nbytes += INT_BYTES + (v.bit_length() >> 3)
                if count > step_limit:
                    step(count)  # raises
                if nbytes > mem_limit:
                    raise out_of_memory()
            if nxt:
                depth += 1
                if depth >= max_nesting:
                    raise too_deep()
            level = nxt
        step(count)
        alloc(nbytes)

    def materialize(it: Any) -> list[Any]:
        """A list of ``it``'s items, charged per item: the only way a lazy iterable
        reaches a builtin that would otherwise loop over it in C, unmetered."""
        t = type(it)
        if t in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return list(it)
        out: list[Any] = []
        append = out.append
        for item in it:
            m.steps -= 1
            m.memory -= 64
            if m.steps < 0:
                raise out_of_steps()
            if m.memory < 0:
                raise out_of_memory()
            append(item)
        return out

    def sized(it: Any) -> Any:
        """``it`` itself if it has a length (charged for a copy), else a list of it."""
        if type(it) in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return it
        return materialize(it)

    def walkable(it: Any) -> Any:
        """``it`` for a builtin that only walks it once (no copy): charged per item."""
        if type(it) in _SIZED:
            step(len(it))
            return it
        return materialize(it)

    def spread(x: Any) -> Any:
        """``x`` for an unpacking that copies it (``*x``, ``**x``, ``a, *b = x``,
        and a starred target in a ``for`` or a comprehension, item by item):
        charged for the copy (8 bytes a slot, 48 a dict entry, plus the new
        container's own object) before it is made."""
        if type(x) is dict:
            alloc(DICT_BYTES + size_of(x))
            return x
        alloc(LIST_BYTES)
        return sized(x)

    return Budget(
        step, tick, entered, lambda_enter, lambda_exit, alloc, check_int, deep,
        materialize, sized, walkable, spread, text, footprint,
    )  # fmt: skip
