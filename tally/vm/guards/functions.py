"""The sandbox's builtin functions: the type constructors and the iterating ones.

`constructors` builds ``int str bytes list dict`` (as `SafeType`, with their few
class methods) and ``isinstance``; `iteration` builds the builtins that loop over an
iterable (``sorted sum min max any all enumerate zip``), each charged per item
before the loop runs in C.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .formatting import check_codec
from .operators import (
    CASE_SHIFT,
    DECODE_ERRORS_SHIFT,
    FORMAT_NODE_STEPS,
    INT_COMPARE_SHIFT,
    INT_TEXT_SHIFT,
    ITEM_STEPS,
    LAZY_ITEM_STEPS,
    NESTED_TEXT_SHIFT,
    NODE_STEPS,
    SCAN_SHIFT,
    UNPACK_STEPS,
    flat_text_units,
    int_parse_steps,
    text_in,
    text_units,
)
from .runtime import _CONTAINERS, _SIZED, SafeType, size_of

#: The end of an iterator, for b_isinstance's stack.
_END: Any = object()
#: Entering a nested list of types in isinstance: an iterator, a stack push and the
#: loop's own turns (about 8 plain steps measured with bench/bench_vm_attacks.py).
NESTED_TYPES_STEPS = 8

def constructors(
    b: Budget,
    limits: Limits,
    fmt: Callable[[Any, int, str], str],
    keys: dict[str, Callable[..., Any]],
) -> tuple[dict[str, Any], dict[Any, type]]:
    """The type builtins and ``isinstance`` by name, and ``type_of`` (what each
    contract-visible type stands for; the VM adds its own). ``dict()`` and
    ``dict.fromkeys`` check the keys they insert (``keys``, see `dict_keys`)."""
    max_bits = limits.max_int_bits
    step, alloc, check_int = b.step, b.alloc, b.check_int
    sized, materialize = b.sized, b.materialize
    check_keys, check_pairs = keys["check_keys"], keys["check_pairs"]

    def b_str(value: Any = "", encoding: Any = None, errors: Any = None) -> str:
        if encoding is not None or errors is not None:
            if type(value) is not bytes:
                raise TypeError("decoding str() takes bytes")
            check_codec(encoding or "utf-8", errors or "strict")
            if errors not in (None, "strict"):
                step(len(value) >> DECODE_ERRORS_SHIFT)
            alloc(len(value) * 4)
            return value.decode(encoding or "utf-8", errors or "strict")
        if type(value) is str:
            return value
        return fmt(value, 115, "")

    def b_int(value: Any = 0, base: Any = None) -> int:
        t = type(value)
        if t is str or t is bytes:
            step(int_parse_steps(len(value)))  # decimal -> int is quadratic
        r = int(value) if base is None else int(value, base)
        return check_int(r)

    def b_bytes(value: Any = b"", encoding: Any = None, errors: Any = None) -> bytes:
        t = type(value)
        if encoding is not None or errors is not None:
            if t is not str:
                raise TypeError("encoding bytes() takes a str")
            check_codec(encoding or "utf-8", errors or "strict")
            alloc(len(value) * 4)
            return value.encode(encoding or "utf-8", errors or "strict")
        if t is int or t is bool:
            if value > 0:
                alloc(value)
            return bytes(value)
        if t is bytes:
            return value
        if t is str:
            raise TypeError("bytes() of a str needs an encoding")
        return bytes(sized(value))

    def b_list(value: Any = ()) -> list[Any]:
        if type(value) in _SIZED:
            return list(sized(value))
        return materialize(value)

    def b_dict(value: Any = None, **kwargs: Any) -> dict[Any, Any]:
        alloc(48 * len(kwargs))
        if value is None:
            return dict(**kwargs)
        if type(value) is dict:
            alloc(size_of(value))
            return dict(value, **kwargs)
        items = sized(value)
        check_pairs(items)
        alloc(48 * len(items))
        return dict(items, **kwargs)
    type_of: dict[Any, type] = {}

    def b_isinstance(value: Any, types: Any) -> bool:
        """``isinstance`` over a type or (nested) lists of types, in the order the
        recursive definition takes them, on a stack of its own: nesting never meets the
        host's recursion limit, and every list entered is charged its items."""
        tt = type(types)
        if tt is not list and tt is not tuple:
            return is_one(value, types)
        step(ITEM_STEPS * len(types))
        stack = [iter(types)]
        while stack:
            t = next(stack[-1], _END)
            if t is _END:
                stack.pop()
            elif type(t) is list or type(t) is tuple:
                step(NESTED_TYPES_STEPS + ITEM_STEPS * len(t))  # measured: 0505's table
                stack.append(iter(t))
            elif is_one(value, t):
                return True
        return False

    def is_one(value: Any, t: Any) -> bool:
        pytype = type_of.get(t)
        if pytype is None:
            raise TypeError(
                "isinstance() takes int, str, bytes, bool, list, dict or a list of them"
            )
        if pytype is int and type(value) is bool:
            return False  # storage keeps them apart, so contracts do too
        return isinstance(value, pytype)

    def from_bytes(data: Any, byteorder: Any = "big", *, signed: Any = False) -> int:
        data = sized(data)
        if len(data) * 8 > max_bits:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return int.from_bytes(data, byteorder, signed=bool(signed))

    def fromhex(text: Any) -> bytes:
        if type(text) is str:
            alloc(len(text) // 2)
        return bytes.fromhex(text)

    def fromkeys(iterable: Any, value: Any = None) -> dict[Any, Any]:
        items = sized(iterable)
        if type(items) is not dict:  # a dict's keys were checked when it was built
            check_keys(items)
        alloc(48 * len(items))
        return dict.fromkeys(items, value)

    s_int = SafeType("int", int, b_int, {"from_bytes": from_bytes})
    s_str = SafeType("str", str, b_str, {})
    s_bytes = SafeType("bytes", bytes, b_bytes, {"fromhex": fromhex})
    s_list = SafeType("list", list, b_list, {})
    s_dict = SafeType("dict", dict, b_dict, {"fromkeys": fromkeys})
    for s in (s_int, s_str, s_bytes, s_list, s_dict):
        type_of[s] = s.pytype
    type_of[bool] = bool
    type_of[range] = range

    return {
        "bytes": s_bytes, "dict": s_dict, "int": s_int, "isinstance": b_isinstance,
        "list": s_list, "str": s_str,
    }, type_of  # fmt: skip


def format_costs(
    b: Budget, fmt: Callable[[Any, int, str], str]
) -> Callable[[Any, int, str], str]:
    """``_fmt`` (and ``str()``) with the CPU charges of decision 0505 added to those of
    :mod:`.formatting` (one step per node walked, the memory of the text, the quadratic
    conversion of big ints at a quarter of its cost): before the field is formatted,

    * an int over 512 bits: ``bits**2 >> INT_TEXT_SHIFT``;
    * the ``repr`` of text (``!r``, ``!a``, bytes): ``text_units >> CASE_SHIFT``;
    * a container: ``FORMAT_NODE_STEPS - 1`` more per node (walking it in Python and
      each item's ``repr`` cost several steps), the ``repr`` of the text in it and the
      decimal text of its big ints, found by a walk whose per-item loops run in C.

    Refusing what cannot be formatted stays with :mod:`.formatting`."""
    step, deep = b.step, b.deep

    def int_text(bits: int) -> int:
        return (bits * bits) >> INT_TEXT_SHIFT if bits > 512 else 0

    def charged_fmt(value: Any, conversion: int, spec: str) -> str:
        t = type(value)
        if t is int:
            cost = int_text(value.bit_length())
            if cost:
                step(cost)
        elif t is bytes or (t is str and (conversion == 114 or conversion == 97)):
            step(text_units(value) >> CASE_SHIFT)  # repr() tests every character
        elif t in _CONTAINERS:
            step((FORMAT_NODE_STEPS - 1) * deep(value, FORMAT_NODE_STEPS - 1))
            units = 0
            stack = [value]
            while stack:
                v = stack.pop()
                items = [*v, *v.values()] if type(v) is dict else v
                types = set(map(type, items))
                if types & _TEXT:
                    units += flat_text_units(items, types)
                if int in types:
                    ints = [x for x in items if type(x) is int]
                    step(sum(map(int_text, map(int.bit_length, ints))))
                if types & _NESTED:
                    stack.extend([x for x in items if type(x) in _CONTAINERS])
            step(units >> CASE_SHIFT)
        return fmt(value, conversion, spec)

    return charged_fmt


_TEXT = frozenset({str, bytes})
_NESTED = frozenset(_CONTAINERS)


def iteration(
    b: Budget,
) -> tuple[dict[str, Any], Callable[[list[Any], Any, Any], list[Any]]]:
    """The iterating builtins by name (with ``_unpack`` and ``_unpackeach``, the
    guards of starred targets), and ``sort_items`` (``list.sort`` sorts as ``sorted``
    does).

    Whatever compares values in C (sorting, ``min``, ``max``) is charged for the size
    of what it compares: a key function's results are computed here first, one
    metered call each, so the comparisons of those results are charged too."""
    step, deep, check_int, alloc = b.step, b.deep, b.check_int, b.alloc
    sized, walkable, spread = b.sized, b.walkable, b.spread

    def compare_units(items: list[Any]) -> int:
        """Steps of one comparison of each item (after charging ``len(items)`` for
        this scan): 1, plus 1 per 64 units of text, or the nodes of a container."""
        step(len(items))
        units = 0
        for x in items:
            t = type(x)
            if t is str or t is bytes:
                units += text_units(x) >> SCAN_SHIFT
            elif t is int:
                units += x.bit_length() >> INT_COMPARE_SHIFT
            elif t in _CONTAINERS:
                nodes = deep(items, NODE_STEPS)
                step(NODE_STEPS * nodes)  # for the walk of text_in
                return NODE_STEPS * nodes + (text_in(items) >> NESTED_TEXT_SHIFT)
        return units + len(items)

    def keyed(items: list[Any], key: Any) -> list[Any]:
        """The results of ``key`` on ``items``: one step each, besides the key's own."""
        step(len(items))
        return [key(x) for x in items]

    def sort_items(items: list[Any], key: Any, reverse: Any) -> list[Any]:
        """``items`` sorted (stable, as ``list.sort``), charged n·log n comparisons."""
        n = len(items)
        if n < 2:
            return items
        keys = items if key is None else keyed(items, key)
        step(compare_units(keys) * n.bit_length())
        if key is None:
            items.sort(reverse=bool(reverse))
            return items
        order = sorted(range(n), key=keys.__getitem__, reverse=bool(reverse))
        step(n)
        return [items[i] for i in order]

    def b_sorted(iterable: Any, *, key: Any = None, reverse: Any = False) -> list[Any]:
        return sort_items(list(sized(iterable)), key, reverse)

    def b_sum(iterable: Any, start: Any = 0) -> int:
        if type(start) is not int:
            raise Forbidden("sum() adds integers; use str.join or + for sequences")
        items = walkable(iterable)
        step(len(items))  # an addition of ints up to max_int_bits costs up to ~2 steps
        return check_int(sum(items, start))

    _NO_DEFAULT = object()

    def min_max(fn: Callable[..., Any], args: tuple[Any, ...], key: Any, default: Any) -> Any:
        items = list(walkable(args[0])) if len(args) == 1 else list(args)
        if not items:
            if default is _NO_DEFAULT:
                return fn(items)  # the builtin's own error
            return default
        if key is None:
            step(compare_units(items))
            return fn(items)
        keys = keyed(items, key)
        step(compare_units(keys))
        return items[fn(range(len(items)), key=keys.__getitem__)]

    def unpack(value: Any, depth: int) -> Any:
        """``value`` for a starred target ``depth`` levels deep, charged for the copies
        the unpacking makes (every level down to the starred one), and
        ``UNPACK_STEPS`` for the new list and this guard."""
        t = type(value)
        if t is list or t is tuple or t is str or t is bytes:
            n = len(value)
            step(UNPACK_STEPS + (n >> 3))
            if n >= 8:
                alloc(8 * n)
        else:
            step(UNPACK_STEPS)
            value = spread(value)
        if depth > 1:
            step(len(value))
            return [unpack(x, depth - 1) if type(x) in _SIZED or _lazy(x) else x for x in value]
        return value

    def unpack_each(iterable: Any, depth: int) -> Any:
        """``iterable``'s items, each through `unpack` (a ``for`` loop or comprehension
        with a starred target)."""
        for item in iterable:
            yield unpack(item, depth)

    def b_min(*args: Any, key: Any = None, default: Any = _NO_DEFAULT) -> Any:
        return min_max(min, args, key, default)

    def b_max(*args: Any, key: Any = None, default: Any = _NO_DEFAULT) -> Any:
        return min_max(max, args, key, default)

    def b_any(iterable: Any) -> bool:
        if type(iterable) in _SIZED:
            step(len(iterable))
            return any(iterable)
        for item in iterable:
            step(1)
            if item:
                return True
        return False

    def b_all(iterable: Any) -> bool:
        if type(iterable) in _SIZED:
            step(len(iterable))
            return all(iterable)
        for item in iterable:
            step(1)
            if not item:
                return False
        return True

    # enumerate and zip make a list of each item: ``ITEM_STEPS`` of work per item
    # besides the consumer's own charge; paid up front for sized iterables (the
    # common case, and the fast one), else as each item is made.

    def b_enumerate(iterable: Any, start: Any = 0) -> Any:
        if type(start) is not int:
            raise TypeError("enumerate() start must be an int")
        if type(iterable) in _SIZED:
            step(ITEM_STEPS * len(iterable))
            return map(list, enumerate(iterable, start))
        return charged_lists(enumerate(iterable, start))

    def b_zip(*iterables: Any, strict: Any = False) -> Any:
        if all(type(it) in _SIZED for it in iterables):
            step(ITEM_STEPS * min((len(it) for it in iterables), default=0))
            return map(list, zip(*iterables, strict=bool(strict)))
        return charged_lists(zip(*iterables, strict=bool(strict)))

    def charged_lists(items: Any) -> Any:
        for item in items:
            step(LAZY_ITEM_STEPS)
            yield list(item)

    def b_reversed(seq: Any) -> Any:
        if type(seq) in _SIZED and type(seq) is not range:
            step(len(seq))  # each item is charged again where it is consumed
        return reversed(seq)

    return {
        "all": b_all, "any": b_any, "enumerate": b_enumerate, "max": b_max, "min": b_min,
        "sorted": b_sorted, "sum": b_sum, "zip": b_zip, "reversed": b_reversed, "_unpack": unpack,
        "_unpackeach": unpack_each,
    }, sort_items  # fmt: skip


def _lazy(x: Any) -> bool:
    """Whether ``x`` is a lazy iterable (``zip``, ``enumerate``, ``reversed``, a
    generator): unpacking it copies its items."""
    return isinstance(x, Iterator)
