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

from ..errors import (
    Forbidden,
    InvalidValue,
    MemoryLimitExceeded,
    OutOfSteps,
    RecursionLimitExceeded,
)
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
    deep: Callable[..., int]
    materialize: Callable[[Any], list[Any]]
    sized: Callable[[Any], Any]
    walkable: Callable[[Any], Any]
    spread: Callable[[Any], Any]
    #: ``text(value, conversion, extra)``: charge for the text that formatting
    #: ``value`` makes (see `make_budget`).
    text: Callable[[Any, int, int], None]
    #: ``footprint(value)``: charge for a copy of ``value`` (see `make_budget`).
    footprint: Callable[..., None]
    #: ``kept(x)``: charge for an item a list or dict comprehension keeps; ``x``.
    kept: Callable[[Any], Any]


#: Bytes charged per object a copy or a decoded value makes, modelled on CPython
#: 3.11's sizes (object header and GC header included; see `footprint`).
LIST_BYTES = 72  # + 8 per slot
DICT_BYTES = 240  # + 56 per entry beyond the first 5 (a fresh dict has 8 slots)
STR_BYTES = 56  # + UTF-8 bound of the text
BYTES_BYTES = 40  # + length
INT_BYTES = 32  # + bits / 8


def make_budget(m: Meter, limits: Limits) -> Budget:
    """Charge steps (``step``, ``tick``), frames (``entered``, the lambda pair) and
    memory (``alloc``), and bound integers (``check_int``), all on meter ``m``
    (`_charges`); the walks that charge for a whole value before it is made (``deep``,
    ``text``, ``footprint``: `_walks`); and the helpers that charge for copying or
    iterating one (``materialize``, ``sized``, ``walkable``, ``spread``, ``kept``:
    `_copies`)."""
    c = _charges(m, limits)
    deep, text, footprint = _walks(m, limits, c.step, c.alloc, c.out_of_memory)
    materialize, sized, walkable, spread, kept = _copies(m, c.step, c.alloc,
                                                         c.out_of_steps, c.out_of_memory)
    return Budget(
        c.step, c.tick, c.entered, c.lambda_enter, c.lambda_exit, c.alloc, c.check_int, deep,
        materialize, sized, walkable, spread, text, footprint, kept,
    )  # fmt: skip


class _Charges(NamedTuple):
    step: Callable[[int], None]
    tick: Callable[[int], bool]
    entered: Callable[[], None]
    lambda_enter: Callable[[int], None]
    lambda_exit: Callable[[None, Any], Any]
    alloc: Callable[[int], None]
    check_int: Callable[[Any], Any]
    out_of_steps: Callable[[], OutOfSteps]
    out_of_memory: Callable[[], MemoryLimitExceeded]


def _charges(m: Meter, limits: Limits) -> _Charges:
    """The charges of single operations on meter ``m``: steps, frames, memory, and
    the integer cap."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    max_frames = limits.max_frames

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

    return _Charges(step, tick, entered, lambda_enter, lambda_exit, alloc, check_int,
                    out_of_steps, out_of_memory)


def _walks(m: Meter, limits: Limits, step: Callable[[int], None],
           alloc: Callable[[int], None], out_of_memory: Callable[[], MemoryLimitExceeded],
           ) -> tuple[Callable[..., int], Callable[[Any, int, int], None], Callable[..., None]]:
    """``deep``, ``text`` and ``footprint``: iterative walks of a whole value, level by
    level, that charge for it before anything is made and refuse nesting past
    ``max_nesting``."""
    return (_deep_walk(m, limits), _text_walk(m, limits, step, alloc, out_of_memory),
            _footprint_walk(m, limits, step, alloc, out_of_memory))


def _too_deep(max_nesting: int) -> RecursionLimitExceeded:
    return RecursionLimitExceeded(f"value nested deeper than {max_nesting} lists or dicts")


def _scalar_bytes(v: Any) -> int:
    t = type(v)
    if t is str:
        return STR_BYTES + text_bytes(v)
    if t is bytes:
        return BYTES_BYTES + len(v)
    if t is int and not -6 < v < 257:
        return INT_BYTES + (v.bit_length() >> 3)
    return 0

def _scalar_text(v: Any, escape_all: bool) -> tuple[int, int, bool]:
    """``(characters, steps, ascii)`` of ``repr(v)`` for a scalar (``ascii(v)``
    if ``escape_all``): a bound, exact for the common cases."""
    t = type(v)
    if t is int:
        bits = v.bit_length()
        # decimal digits and sign; int -> decimal text is quadratic
        return (bits * 1233 >> 12) + 2, ((bits * bits) >> 16 if bits > 512 else 0), True
    if t is str:
        n = len(v)
        if v.isascii():
            if v.isprintable():
                return n + 2 + v.count("\\") + v.count("'"), n >> 6, True
            return 4 * n + 2, n >> 6, True
        if escape_all or not v.isprintable():
            return 10 * n + 2, n >> 6, True
        return n + 2 + v.count("\\") + v.count("'"), n >> 6, False
    if t is bytes:
        n = len(v)
        return ((n + 3) if v.isalnum() else (4 * n + 3)), n >> 6, True
    if t is bool or v is None:
        return 5, 0, True
    raise Forbidden(f"cannot format a {t.__name__}")

def _deep_walk(m: Meter, limits: Limits) -> Callable[..., int]:
    max_nesting = limits.max_nesting

    def deep(x: Any, per_node: int = 1) -> int:
        """Nodes in a nested value, counted without recursion and cut off once the
        count, at ``per_node`` steps a node, passes the steps left: the caller is about
        to charge it anyway, and a walk past that point would be unpaid work.
        Refuses a value nested deeper than ``max_nesting`` (it is walked level by
        level, so a level past the cap is seen before the count could stop it)."""
        limit = m.steps // per_node + 1
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
                if depth >= max_nesting:  # nxt is the (depth + 1)th level of containers
                    raise _too_deep(max_nesting)
            level = nxt
        return count

    return deep


def _text_walk(m: Meter, limits: Limits, step: Callable[[int], None],
               alloc: Callable[[int], None],
               out_of_memory: Callable[[], MemoryLimitExceeded]) -> Callable[[Any, int, int], None]:
    max_nesting = limits.max_nesting
    scalar_text = _scalar_text  # a closure cell: read per scalar of the walk

    def text(x: Any, conversion: int, extra: int) -> None:
        """Charge for the text ``str(x)`` (conversion 115 or none), ``repr(x)``
        (114) or ``ascii(x)`` (97) will be, plus ``extra`` characters (a format
        width), before it is made: one step per node reached (with multiplicity)
        and the text's bytes to the memory budget (a bound of its length, times 4
        unless it is all ASCII). The walk stops as soon as either budget is
        passed, so a DAG whose text would be 2**60 characters is refused after a
        few steps. Refuses nesting past ``max_nesting`` before CPython's repr
        would recurse."""
        t = type(x)
        if t is str and conversion != 114 and conversion != 97:  # the text is x itself
            alloc(text_bytes(x) + extra)
            return
        escape_all = conversion == 97
        if t is not list and t is not tuple and t is not dict:
            chars, count, ascii_only = scalar_text(x, escape_all)
            step(count)
            chars += extra
            alloc(chars if ascii_only else 4 * chars)
            return
        step_limit = m.steps + 1
        mem_limit = m.memory + 1
        count = 0
        chars = extra
        ascii_only = True
        level = [x]
        depth = 1
        while True:
            nxt: list[Any] = []
            add = nxt.append
            for v in level:
                t = type(v)
                n = len(v)
                if t is dict:
                    count += 1 + 2 * n
                    chars += 4 * n + 2
                else:
                    count += 1 + n
                    chars += 2 * n + 2
                if count > step_limit:  # before the items are looked at
                    step(count)  # raises
                items: Any = (*v, *v.values()) if t is dict else v
                for c in items:
                    tc = type(c)
                    if tc is list or tc is dict or tc is tuple:
                        add(c)
                    elif tc is int and -1000 < c < 1000:
                        chars += 4
                    else:
                        k, cost, a = scalar_text(c, escape_all)
                        chars += k
                        count += cost
                        ascii_only = ascii_only and a
                        if count > step_limit:  # a long text scanned: stop at once
                            step(count)  # raises
                        if chars > mem_limit:
                            raise out_of_memory()
                if chars > mem_limit:
                    raise out_of_memory()
            if not nxt:
                break
            depth += 1
            if depth > max_nesting:
                raise _too_deep(max_nesting)
            level = nxt
        step(count)
        alloc(chars if ascii_only else 4 * chars)

    return text


def _footprint_walk(m: Meter, limits: Limits, step: Callable[[int], None],
                    alloc: Callable[[int], None],
                    out_of_memory: Callable[[], MemoryLimitExceeded]) -> Callable[..., None]:
    max_nesting = limits.max_nesting
    scalar_bytes = _scalar_bytes  # a closure cell: read per text item of the walk

    def footprint(x: Any, max_nodes: int = -1, max_depth: int = 0) -> None:
        """Charge for a copy of ``x`` (a value crossing a boundary, or one decoded
        from storage) before it is made: a step per node reached and per 64 bytes
        of text, and the bytes CPython takes for the copy (the `LIST_BYTES`...
        model above, at least the real size of each object within 2x), walking
        level by level and stopping as soon as either budget is passed. Refuses
        nesting past ``max_nesting``; given ``max_nodes`` (a storable value has
        no more nodes than encoded bytes) or ``max_depth``, a value past them is
        ``VM_INVALID_VALUE``, once the nodes walked are charged."""
        t = type(x)
        if t is not list and t is not tuple and t is not dict:
            n = scalar_bytes(x)
            if n >= 64:
                step(n >> 6)
            alloc(n)
            return
        step_limit = m.steps + 1
        mem_limit = m.memory + 1
        count = 0
        nbytes = 0
        level = [x]
        depth = 1
        while True:
            nxt: list[Any] = []
            add = nxt.append
            for v in level:
                t = type(v)
                n = len(v)
                if t is dict:
                    count += 1 + 2 * n
                    nbytes += DICT_BYTES + 56 * max(n - 5, 0)
                else:
                    count += 1 + n
                    nbytes += LIST_BYTES + 8 * n
                if count > max_nodes >= 0:  # before the items are looked at
                    step(count)
                    raise InvalidValue(f"value larger than {max_nodes} bytes")
                if count > step_limit:
                    step(count)  # raises
                items: Any = (*v, *v.values()) if t is dict else v
                for c in items:
                    tc = type(c)
                    if tc is int:
                        if not -6 < c < 257:  # CPython shares the small ints
                            nbytes += INT_BYTES + (c.bit_length() >> 3)
                    elif tc is list or tc is dict or tc is tuple:
                        add(c)
                    elif tc is str or tc is bytes:
                        k = scalar_bytes(c)
                        count += k >> 6
                        nbytes += k
                if count > step_limit:
                    step(count)  # raises
                if nbytes > mem_limit:
                    raise out_of_memory()
                if count > max_nodes >= 0:
                    step(count)
                    raise InvalidValue(f"value larger than {max_nodes} bytes")
            if not nxt:
                break
            depth += 1
            if depth > max_depth > 0:
                step(count)
                raise InvalidValue(f"value nested deeper than {max_depth}")
            if depth > max_nesting:
                raise _too_deep(max_nesting)
            level = nxt
        step(count)
        alloc(nbytes)

    return footprint


def _copies(m: Meter, step: Callable[[int], None], alloc: Callable[[int], None],
            out_of_steps: Callable[[], OutOfSteps],
            out_of_memory: Callable[[], MemoryLimitExceeded],
            ) -> tuple[Callable[[Any], list[Any]], Callable[[Any], Any], Callable[[Any], Any],
                       Callable[[Any], Any], Callable[[Any], Any]]:
    """``materialize``, ``sized``, ``walkable``, ``spread`` and ``kept``: the charges for
    copying or iterating a value, item by item or by its size."""
    def item_bytes(it: Any, t: type) -> int:
        """Bytes an item of ``it`` takes in a list made of it: a slot, and for a range
        the int it becomes, for a str past ASCII the one-character str it becomes
        (CPython shares the ints below 257 and the Latin-1 characters; a non-ASCII
        str is charged as if none of its characters were)."""
        if t is range:
            return 40
        if t is str and not it.isascii():
            return 88
        return 8

    def materialize(it: Any) -> list[Any]:
        """A list of ``it``'s items, charged per item: the only way a lazy iterable
        reaches a builtin that would otherwise loop over it in C, unmetered. An
        item is charged its slot and what it likely is, a fresh object: an int 40
        bytes, a list (a pair from ``enumerate``/``zip``) 80 and 40 an item (a
        fresh int each), anything else 64."""
        t = type(it)
        if t in _SIZED:
            n = len(it)
            alloc(item_bytes(it, t) * n)
            step(n >> 3)
            return list(it)
        out: list[Any] = []
        append = out.append
        for item in it:
            ti = type(item)
            m.steps -= 1
            m.memory -= 40 if ti is int else (80 + 40 * len(item) if ti is list else 64)
            if m.steps < 0:
                raise out_of_steps()
            if m.memory < 0:
                raise out_of_memory()
            append(item)
        return out

    def sized(it: Any) -> Any:
        """``it`` itself if it has a length (charged for a copy: `item_bytes` an
        item), else a list of it."""
        t = type(it)
        if t in _SIZED:
            n = len(it)
            alloc(item_bytes(it, t) * n)
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
        charged for the copy (8 bytes a slot, 48 a dict entry) before it is made.
        The container the copy goes into is a display's or a target's, which is
        charged as the straight-line code around it."""
        if type(x) is dict:
            alloc(size_of(x))
            return x
        return sized(x)

    def kept(x: Any) -> Any:
        """``x``, an item a list or dict comprehension is about to keep (the
        compiler wraps the element, or the key and the value): charge its slot and
        the object it likely is, fresh, by its type, its items capped at 32 (an item
        that is a shared container is not copied). Objects of a constant size made
        per item were otherwise bounded only by the steps (a comprehension of
        dicts, of closures: up to 35 bytes a step). Generators are not charged:
        what consumes them charges per item."""
        t = type(x)
        if t is int:
            n = 8 if -6 < x < 257 else 48 + (x.bit_length() >> 3)
        elif t is bool or x is None:
            n = 8
        elif t is list or t is tuple:
            n = 80 + 8 * min(len(x), 32)
        elif t is dict:
            n = 248 + 56 * min(max(len(x) - 5, 0), 32)
        elif t is str or t is bytes:
            n = 64  # the object's header: its text was charged where it was made
        else:
            n = 240  # a function (a closure: its cells), an iterator
        m.memory -= n
        if m.memory < 0:
            raise out_of_memory()
        return x

    return materialize, sized, walkable, spread, kept
