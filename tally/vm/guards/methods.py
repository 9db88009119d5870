"""Method tables of the builtin types contract code may call methods on.

A table maps a method name to its guard (called with the object first), or to
`PLAIN` where the bound method needs no charge; a name not in the table is not
available. `text_methods` serves str, bytes and int; `container_methods` list,
dict, tuple and range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .budget import Budget
from .formatting import check_codec
from .operators import (
    CASE_SHIFT,
    CHARCLASS_SHIFT,
    DECODE_ERRORS_SHIFT,
    ITEM_STEPS,
    SCAN_SHIFT,
    SEARCH_SHIFT,
    STRIP_SHIFT,
    text_units,
)
from .runtime import PLAIN, size_of

Table = dict[str, Any]


def text_methods(b: Budget) -> tuple[Table, Table, Table]:
    """The str, bytes and int tables: scans charged per 64 units (`text_units`),
    substring searches per ``1 << SEARCH_SHIFT`` (their worst case is ~25 times a
    scan's), copies and splits charged to the memory budget before they run."""
    step, alloc, sized = b.step, b.alloc, b.sized

    def args_units(args: tuple[Any, ...]) -> int:
        return sum(text_units(a) for a in args if type(a) is str or type(a) is bytes)

    def scan(name: str) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            step((text_units(obj) + args_units(args)) >> SCAN_SHIFT)
            return getattr(obj, name)(*args, **kwargs)

        return method

    def char_class(name: str) -> Callable[..., Any]:
        def method(obj: Any) -> Any:
            step(text_units(obj) >> CHARCLASS_SHIFT)
            return getattr(obj, name)()

        return method

    def search(name: str) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            step((text_units(obj) + args_units(args)) >> SEARCH_SHIFT)
            return getattr(obj, name)(*args, **kwargs)

        return method

    def copy(name: str, factor: int) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            alloc(len(obj) * factor)
            return getattr(obj, name)(*args, **kwargs)

        return method

    def convert_case(name: str) -> Callable[..., Any]:
        def method(obj: Any) -> Any:
            step(text_units(obj) >> CASE_SHIFT)
            alloc(len(obj) * 3)
            return getattr(obj, name)()

        return method

    def strip(name: str) -> Callable[..., Any]:
        def method(obj: Any, chars: Any = None) -> Any:
            step(text_units(obj) >> (SEARCH_SHIFT if chars is None else STRIP_SHIFT))
            alloc(len(obj))
            return getattr(obj, name)(chars)

        return method

    def split(name: str) -> Callable[..., Any]:
        def method(obj: Any, sep: Any = None, maxsplit: Any = -1) -> Any:
            # the count below and the split: two searches
            step(2 * ((text_units(obj) + args_units((sep,))) >> SEARCH_SHIFT))
            pieces = obj.count(sep) + 1 if type(sep) is type(obj) and sep else len(obj) // 2 + 1
            if type(maxsplit) is int and maxsplit >= 0:
                pieces = min(pieces, maxsplit + 1)
            alloc(len(obj) + 64 * pieces)
            return getattr(obj, name)(sep, maxsplit)

        return method

    def splitlines(obj: Any, keepends: Any = False) -> Any:
        alloc(len(obj) + 64 * (len(obj) + 1))
        return obj.splitlines(keepends)

    def replace(obj: Any, old: Any, new: Any, count: Any = -1) -> Any:
        if type(old) is type(obj) and type(new) is type(obj):
            # the count below and the replace: two searches
            step(2 * ((text_units(obj) + text_units(old)) >> SEARCH_SHIFT))
            n = obj.count(old) if old else len(obj) + 1
            if type(count) is int and count >= 0:
                n = min(n, count)
            step(n >> 2)  # each replacement: ~5 ns
            alloc(max(len(obj) + n * (len(new) - len(old)), 0))
        return obj.replace(old, new, count)

    def join(obj: Any, iterable: Any) -> Any:
        items = sized(iterable)
        step(len(items))  # the length sum below is a Python-level loop
        total = sum(len(x) for x in items if type(x) is type(obj)) + len(obj) * max(
            len(items) - 1, 0
        )
        alloc(total)
        return obj.join(items)

    def pad(name: str) -> Callable[..., Any]:
        def method(obj: Any, width: Any, *args: Any) -> Any:
            if type(width) is int and width > len(obj):
                alloc(width)
            return getattr(obj, name)(width, *args)

        return method

    def expandtabs(obj: Any, tabsize: Any = 8) -> Any:
        if type(tabsize) is int and tabsize > 0:
            alloc(len(obj) + obj.count("\t" if type(obj) is str else b"\t") * tabsize)
        return obj.expandtabs(tabsize)

    def encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        check_codec(encoding, errors)
        alloc(len(obj) * 4)
        return obj.encode(encoding, errors)

    def decode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> str:
        check_codec(encoding, errors)
        if errors != "strict":
            step(len(obj) >> DECODE_ERRORS_SHIFT)
        alloc(len(obj) * 4)
        return obj.decode(encoding, errors)

    def hex_(obj: Any, *args: Any) -> str:
        alloc(len(obj) * 3)
        return obj.hex(*args)

    def to_bytes(
        obj: Any, length: Any = 1, byteorder: Any = "big", *, signed: Any = False
    ) -> bytes:
        if type(length) is int and length > 0:
            alloc(length)
        return obj.to_bytes(length, byteorder, signed=bool(signed))

    def partition(name: str) -> Callable[..., Any]:
        def method(obj: Any, sep: Any) -> Any:
            step((text_units(obj) + args_units((sep,))) >> SEARCH_SHIFT)
            alloc(len(obj) + 3 * 64)
            return getattr(obj, name)(sep)

        return method

    text_methods: dict[str, Any] = {}
    for name in (
        "endswith", "isalnum", "isalpha", "isascii", "isdigit", "islower", "isspace",
        "istitle", "isupper", "startswith",
    ):  # fmt: skip
        text_methods[name] = scan(name)
    for name in ("count", "find", "index", "rfind", "rindex"):
        text_methods[name] = search(name)
    for name in ("removeprefix", "removesuffix"):
        text_methods[name] = copy(name, 1)
    for name in ("strip", "lstrip", "rstrip"):
        text_methods[name] = strip(name)
    for name in ("lower", "upper", "capitalize", "title", "swapcase"):
        text_methods[name] = convert_case(name)
    for name in ("split", "rsplit"):
        text_methods[name] = split(name)
    for name in ("ljust", "rjust", "center", "zfill"):
        text_methods[name] = pad(name)
    for name in ("partition", "rpartition"):
        text_methods[name] = partition(name)
    text_methods.update(splitlines=splitlines, replace=replace, join=join, expandtabs=expandtabs)
    str_methods = dict(text_methods, encode=encode, casefold=convert_case("casefold"))
    for name in (
        "isalnum", "isalpha", "isdigit", "islower", "isspace", "istitle", "isupper",
        "isdecimal", "isidentifier", "isnumeric", "isprintable",
    ):  # fmt: skip
        str_methods[name] = char_class(name)
    bytes_methods = dict(text_methods, decode=decode, hex=hex_)
    int_methods = {"bit_length": PLAIN, "bit_count": PLAIN, "to_bytes": to_bytes}
    return str_methods, bytes_methods, int_methods


def container_methods(
    b: Budget,
    contains: Callable[[Any, Any], bool],
    sort_items: Callable[[list[Any], Any, Any], list[Any]],
    keys: dict[str, Callable[..., Any]],
) -> tuple[Table, Table, Table, Table]:
    """The list, dict, tuple and range tables; searches charge as ``in`` would,
    sorting as ``sorted`` does, and dict keys as ``d[k]`` (``keys``)."""
    step, alloc, sized = b.step, b.alloc, b.sized
    key, store_key, check_pairs = keys["_key"], keys["_dkey"], keys["check_pairs"]

    def seq_search(name: str) -> Callable[..., Any]:
        def method(obj: Any, value: Any, *args: Any) -> Any:
            contains(value, obj)  # charges as `in` would
            return getattr(obj, name)(value, *args)

        return method

    def seq_index(obj: Any, value: Any, *args: Any) -> int:
        """``index``, charged as ``in`` would be, and never letting CPython's own miss
        message print ``value``: its repr is exponential in the nesting of a value that
        shares its parts (``a = [a, a]`` 40 times), and unmetered."""
        if len(args) > 2:
            raise TypeError(f"index() takes at most 3 arguments ({len(args) + 1} given)")
        start, stop, _ = slice(*args if len(args) == 2 else (*args, None)).indices(len(obj)) \
            if args else (0, len(obj), 1)
        part = obj if (start, stop) == (0, len(obj)) else obj[start:stop]
        if part is not obj:
            alloc(8 * len(part))
        if not contains(value, part):
            raise ValueError(f"the value is not in the {type(obj).__name__}")
        return start + part.index(value)

    def list_copy(obj: list[Any]) -> list[Any]:
        alloc(size_of(obj))
        return obj.copy()

    def list_extend(obj: list[Any], iterable: Any) -> None:
        items = sized(iterable)
        alloc(8 * len(items))
        obj.extend(items)

    def memmove(name: str) -> Callable[..., Any]:
        def method(obj: list[Any], *args: Any) -> Any:
            step(len(obj) >> 4)
            return getattr(obj, name)(*args)

        return method

    def list_sort(obj: list[Any], *, key: Any = None, reverse: Any = False) -> None:
        result = sort_items(obj, key, reverse)
        if result is not obj:
            obj[:] = result

    list_methods = {
        "append": PLAIN, "clear": PLAIN, "copy": list_copy, "count": seq_search("count"),
        "extend": list_extend, "index": seq_index, "insert": memmove("insert"),
        "pop": memmove("pop"), "remove": seq_search("remove"), "reverse": memmove("reverse"),
        "sort": list_sort,
    }  # fmt: skip

    def dict_copy(obj: dict[Any, Any]) -> dict[Any, Any]:
        alloc(size_of(obj))
        return obj.copy()

    def dict_keys(obj: dict[Any, Any]) -> list[Any]:
        alloc(8 * len(obj))
        return list(obj)

    def dict_values(obj: dict[Any, Any]) -> list[Any]:
        alloc(8 * len(obj))
        return list(obj.values())

    def dict_items(obj: dict[Any, Any]) -> list[list[Any]]:
        alloc(72 * len(obj))
        step(ITEM_STEPS * len(obj))
        return [[k, v] for k, v in obj.items()]

    def dict_popitem(obj: dict[Any, Any]) -> list[Any]:
        return list(obj.popitem())

    def dict_update(obj: dict[Any, Any], other: Any = (), **kwargs: Any) -> None:
        items = other if type(other) is dict else sized(other)
        check_pairs(items)
        alloc(48 * (len(items) + len(kwargs)))
        obj.update(items, **kwargs)

    def dict_get(obj: dict[Any, Any], k: Any, *default: Any) -> Any:
        return obj.get(key(k), *default)

    def dict_pop(obj: dict[Any, Any], k: Any, *default: Any) -> Any:
        return obj.pop(key(k), *default)

    def dict_setdefault(obj: dict[Any, Any], k: Any, *default: Any) -> Any:
        return obj.setdefault(store_key(k), *default)

    dict_methods = {
        "clear": PLAIN, "get": dict_get, "pop": dict_pop, "setdefault": dict_setdefault,
        "copy": dict_copy,
        "items": dict_items, "keys": dict_keys, "values": dict_values,
        "popitem": dict_popitem, "update": dict_update,
    }  # fmt: skip
    tuple_methods = {"count": seq_search("count"), "index": seq_index}

    def range_count(obj: range, value: Any) -> int:
        return obj.count(value) if type(value) is int else 0

    def range_index(obj: range, value: Any, *args: Any) -> int:
        if type(value) is not int:
            raise ValueError("value is not in range")
        return obj.index(value, *args)

    range_methods = {
        "start": PLAIN,
        "stop": PLAIN,
        "step": PLAIN,
        "count": range_count,
        "index": range_index,
    }

    return list_methods, dict_methods, tuple_methods, range_methods
