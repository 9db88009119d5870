"""Operator guards: arithmetic, comparisons and ``in``, slices and ``del``, and the
dict-key guards.

The rewriter turns ``a + b``, ``a - b``, ``a // b``, ``a == b``, ``x in y``,
``s[i:j]``, ``d[k]`` and friends into calls to these (``_add``, ``_sub``, ``_eq``,
``_in``, ``_getslice``, ``_key``, ...). Each family function returns its guards by
the name the rewriter calls.

Invariants kept here:

* every operation that can make an int makes one of at most ``max_int_bits`` bits
  (``+ - * ** <<`` checked; ``// % & | ^ >>`` cannot grow past their operands);
* work that grows with operand size is charged by size *before* it runs, with the
  constants of the cost schedule below (consensus: every node charges the same);
* an int stored as a dict key has ``hash(k) == k`` (``|k| < 2**61 - 1``), so keys
  cannot be crafted to share a hash, and a dict insert probes a bounded number of
  slots (docs/decisions/0505-meter-charges-by-operand-size.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ContractRuntimeError, Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .runtime import _CONTAINERS, _SEQUENCES, size_of

# --------------------------------------------------------------------------------------
# The cost schedule of size-dependent work (consensus).
#
# One step is the unit of the step budget: about one AST node, measured at ~46 ns of
# CPU for a plain loop (`for i in range(n): pass`) on the reference machine. Each
# constant below was chosen from a measurement on that machine (CPython 3.11) so that
# the operation costs at most about one plain step of CPU per step charged;
# bench/bench_vm_attacks.py measures every case against the plain loop.
# --------------------------------------------------------------------------------------

#: ``a * b`` of ints: ``bits(a) * bits(b) >> INT_MUL_SHIFT`` steps. Measured: 4096 x
#: 4096 bits 25 µs (charged 1024), 2048 x 2048 bits 6.6 µs (charged 256).
INT_MUL_SHIFT = 14
#: ``a // b``, ``a % b``, ``divmod``: ``((bits(a) - bits(b) + 64) >> 6) * ((bits(b) >> 6)
#: + 2)`` steps when ``a`` has at least ``INT_DIV_MIN_BITS`` bits. Measured (4096-bit a):
#: / 64 bits 5.1 µs (charged 189), / 2048 bits 13 µs (1122), / 20 bits 1.8 µs (128).
INT_DIV_MIN_BITS = 128
#: ``pow(a, b, m)``: ``bits(b) * (6 + (bits(m)**2 >> INT_POWMOD_SHIFT))`` steps plus the
#: reduction of ``a``. Measured: 4096-bit a, b, m 272 ms (charged 8.4 M: never within a
#: budget), 2048 bits 31.7 ms (1.05 M), 1024 bits 4.96 ms (137 k), 4096-bit a and b with
#: a 61-bit m 1.7 ms (24.6 k).
INT_POWMOD_SHIFT = 13
#: int -> decimal text and decimal text -> int are quadratic in CPython 3.11:
#: ``bits**2 >> INT_TEXT_SHIFT`` (ints over 512 bits) and ``digits**2 >>
#: INT_PARSE_SHIFT`` steps. Measured: str() of 4096 bits 37 µs (charged 1024), of 2048
#: bits 11 µs (256); int() of 1233 digits 19 µs (charged 742), 4000 digits 156 µs (7812).
INT_TEXT_SHIFT = 14
INT_PARSE_SHIFT = 11
#: Substring search (``find count index replace split partition in``): one step per
#: ``1 << SEARCH_SHIFT`` units. Measured worst case (``'a' * 10**6`` searched for
#: ``'a'*49 + 'b' + 'a'``): 2.5 ms per MB, 2.5 ns a byte, whatever the needle length;
#: a plain scan (``isdigit``, comparing) stays at one step per 64 units.
SEARCH_SHIFT = 4
SCAN_SHIFT = 6
#: Character-class tests of a str (``isalpha islower isdigit ...``) consult the Unicode
#: tables per character, ASCII included: one step per ``1 << CHARCLASS_SHIFT`` units
#: (measured: ``islower()`` of 1 MB ASCII ~2 ms). Those of bytes are table lookups and
#: scan at ``SCAN_SHIFT``.
CHARCLASS_SHIFT = 4
#: ``strip``/``lstrip``/``rstrip`` with a set of characters test each character against
#: the set: one step per ``1 << STRIP_SHIFT`` units (measured 8 ns a character).
STRIP_SHIFT = 2
#: Case conversions (``upper lower title casefold swapcase capitalize``) and ``repr``
#: of text: one step per ``1 << CASE_SHIFT`` units, besides the copy. Measured: title()
#: of 1 MB ASCII 4.7 ms, upper() of 250,000 CJK characters 2.3 ms.
CASE_SHIFT = 3
#: Walking and comparing nested values, per node counted by ``deep`` (the walk itself
#: is a Python loop): ``NODE_STEPS`` steps.
NODE_STEPS = 4
#: Formatting a nested value (``str(x)``, ``f'{x}'``) per node: formatting.py's own walk
#: visits every item in Python, then ``repr`` makes each one's text. Measured: ``str([L,
#: L])`` of 20,000 ints 3.7x a plain step per step at 4, so 6.
FORMAT_NODE_STEPS = 6
#: Comparing text inside containers (``[s] == [t]``): one step per ``1 << NESTED_TEXT_SHIFT``
#: units (a memcmp: 40 µs per MB measured; text compared at the top level pays the
#: scan rate, one step per 64 units).
NESTED_TEXT_SHIFT = 10
#: Work in a guard's own Python loop per item (checking dict keys, making the list of an
#: ``enumerate``/``zip`` item, ``dict.items``): ``ITEM_STEPS`` steps.
ITEM_STEPS = 2
#: The same, made one at a time by a generator of ours (``zip`` of lazy iterables).
LAZY_ITEM_STEPS = 6
#: A method call through a guard (``s.find(x)``: the attribute guard, its handler, a
#: ``partial``, the guard's own call and its checks): ``METHOD_STEPS`` besides what the
#: method charges. Measured: ``[d.update([[1, 2]]), d.popitem(), d.clear()]`` in a loop
#: cost 3.5 plain steps of CPU per step charged at 4; methods that need no guard
#: (``append``, ``clear``, ``bit_length``) are bound directly and not charged.
METHOD_STEPS = 6
#: Decoding with ``errors='replace'`` or ``'ignore'`` goes through the error handler for
#: each invalid byte: one step per ``1 << DECODE_ERRORS_SHIFT`` bytes (measured ~13 ns a
#: byte).
DECODE_ERRORS_SHIFT = 2
#: A starred target (``a, *b = x``, ``for a, *b in rows``): a new list and the guard's
#: call, besides one step per 8 items copied. Measured: ``[b for a, *b in rows]`` of
#: 2-item rows 0.8 µs an item unguarded, 3.7 µs guarded, on a loaded machine whose
#: plain step took 52 ns.
UNPACK_STEPS = 8
#: Comparing ints (``in`` on a list, sorting, ``min``/``max``): one step each, plus one
#: per ``1 << INT_COMPARE_SHIFT`` bits (4096-bit ints differing in their last digit
#: measured ~230 ns a comparison).
INT_COMPARE_SHIFT = 10
#: Int dict keys must satisfy ``-HASH_LIMIT < k < HASH_LIMIT``, where CPython's
#: ``hash(k) == k`` (the modulus of int hashing is ``2**61 - 1``).
HASH_LIMIT = (1 << 61) - 1
#: Inserting an int key of at least 2**16 in magnitude: keys that share their low bits
#: (``k << 40``) probe up to ~12 slots before their hashes part (measured: a dict
#: comprehension of 100,000 such keys 2.5x a plain step at 1 step, 2.2x at 2).
BIG_KEY_STEPS = 2


def text_units(s: Any) -> int:
    """The size of a str or bytes for charging: its length, four times that for a str
    with any non-ASCII character (stored as up to four bytes a character, and whose
    character tests consult the Unicode tables). ``str.isascii`` is O(1)."""
    if type(s) is str and not s.isascii():
        return 4 * len(s)
    return len(s)


_TEXT = frozenset({str, bytes})
_NESTED = frozenset(_CONTAINERS)


def text_in(x: Any) -> int:
    """The `text_units` of every str and bytes inside container ``x`` (dict keys
    too). Walks what ``Budget.deep`` counts, the same nodes the same number of times,
    so call it only after charging ``deep(x)``; its per-item loops run in C."""
    units = 0
    stack = [x]
    while stack:
        v = stack.pop()
        items = [*v, *v.values()] if type(v) is dict else v
        types = set(map(type, items))
        if types & _TEXT:
            units += flat_text_units(items, types)
        if types & _NESTED:
            stack.extend([c for c in items if type(c) in _CONTAINERS])
    return units


def flat_text_units(items: Any, types: set[type]) -> int:
    """The `text_units` of the str and bytes among ``items`` (not those nested deeper),
    ``types`` being the types of ``items``; each loop runs in C."""
    units = 0
    if bytes in types:
        units += sum(map(len, [c for c in items if type(c) is bytes]))
    if str in types:
        strs = [c for c in items if type(c) is str]
        n = sum(map(len, strs))
        units += n if all(map(str.isascii, strs)) else 4 * n
    return units


def int_div_steps(bits_a: int, bits_b: int) -> int:
    """Steps of ``a // b`` (or ``%``, ``divmod``) by operand sizes (schoolbook long
    division: one pass over the divisor per word of quotient)."""
    if bits_a < INT_DIV_MIN_BITS:
        return 0
    return ((max(bits_a - bits_b, 0) + 64) >> 6) * ((bits_b >> 6) + 2)


def int_powmod_steps(bits_b: int, bits_m: int) -> int:
    """Steps of ``pow(a, b, m)`` besides reducing ``a``: one modular multiplication of
    ``bits_m``-bit numbers per exponent bit (a square and a multiply, windowed)."""
    return bits_b * (6 + ((bits_m * bits_m) >> INT_POWMOD_SHIFT))


def int_parse_steps(n: int) -> int:
    """Steps of ``int(text)`` for a text of ``n`` characters (quadratic for base 10)."""
    return (n >> SCAN_SHIFT) + ((n * n) >> INT_PARSE_SHIFT if n > 128 else 0)


def dict_keys(b: Budget) -> dict[str, Callable[..., Any]]:
    """``_key`` (a key looked up: ``d[k]``, ``d.get(k)``, ``k in d``), ``_dkey`` (a key
    inserted: ``{k: v}``, dict comprehensions, ``setdefault``), ``_skey`` (``obj[k] =
    v``: checked where ``obj`` is a dict) and ``check_pairs`` /
    ``check_keys`` (the keys ``dict()``, ``update``, ``fromkeys`` and ``|=`` insert).

    A str or bytes key is hashed and, on a hit, compared with an equal key: one step per
    64 units. An int key inserted must hash to itself (``|k| < 2**61 - 1``), so no two
    keys but -1 and -2 share a hash and no dict can be filled with colliding keys; a
    tuple or range key (hashed from ints, so craftable too) is refused. str and bytes
    hashes are keyed by a per-process secret and cannot be made to collide."""
    step = b.step

    def key(k: Any) -> Any:
        t = type(k)
        if t is str or t is bytes:
            n = text_units(k)
            if n >= 64:
                step(n >> SCAN_SHIFT)
        return k

    def store_key(k: Any) -> Any:
        t = type(k)
        if t is int:
            if not -65536 < k < 65536:
                if not -HASH_LIMIT < k < HASH_LIMIT:
                    raise ContractRuntimeError(
                        "an int dict key must lie strictly between -(2**61 - 1) and 2**61 - 1"
                    )
                step(BIG_KEY_STEPS)
        elif t is str or t is bytes:
            n = text_units(k)
            if n >= 64:
                step(n >> SCAN_SHIFT)
        elif t is tuple or t is range:
            # hashed from their ints by an invertible mix: keys could be made to collide
            # (contracts build lists, but divmod and partition return tuples)
            raise ContractRuntimeError(f"a {t.__name__} cannot be a dict key")
        return k

    def check_keys(keys: Any) -> None:
        """Check each of ``keys`` (a list), charged ``ITEM_STEPS`` a key."""
        step(ITEM_STEPS * len(keys))
        for k in keys:
            if type(k) is int:
                if not -HASH_LIMIT < k < HASH_LIMIT:
                    store_key(k)
            else:
                store_key(k)

    def check_pairs(items: Any) -> None:
        """Check the key of each ``[k, v]`` pair of ``items`` (a list, a tuple or a
        dict), charged ``ITEM_STEPS`` a pair; what is not a pair is left for
        ``dict()`` to reject."""
        if type(items) is dict:
            return
        step(ITEM_STEPS * len(items))
        for p in items:
            tp = type(p)
            if (tp is list or tp is tuple) and len(p) == 2:
                k = p[0]
                if type(k) is int:
                    if not -HASH_LIMIT < k < HASH_LIMIT:
                        store_key(k)
                else:
                    store_key(k)

    def store_key_into(obj: Any, k: Any) -> Any:
        """``obj[k] = v``: the key checked as `store_key` where ``obj`` is a dict (a
        storage map encodes and checks its own keys; a list takes an index)."""
        if type(obj) is dict:
            return store_key(k)
        return k

    return {
        "_key": key, "_dkey": store_key, "_skey": store_key_into, "check_keys": check_keys,
        "check_pairs": check_pairs,
    }  # fmt: skip


def arithmetic(
    b: Budget, limits: Limits, keys: dict[str, Callable[..., Any]]
) -> dict[str, Callable[..., Any]]:
    """``+ - * // % ** << |``, ``divmod`` and their in-place forms: integers bounded to
    ``max_int_bits`` and charged by size, sequence and dict results charged to the
    memory budget."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    step, alloc, check_int = b.step, b.alloc, b.check_int
    sized, materialize = b.sized, b.materialize
    check_pairs = keys["check_pairs"]

    def too_big() -> MemoryLimitExceeded:
        return MemoryLimitExceeded(f"integer larger than {max_bits} bits")

    def add(a: Any, b: Any) -> Any:
        ta = type(a)
        if ta is int and type(b) is int:
            r = a + b
            if -int_lim < r < int_lim:
                return r
            raise too_big()
        if ta is type(b) and ta in _SEQUENCES:
            alloc(size_of(a) + size_of(b))
            return a + b
        return check_int(a + b)

    def sub(a: Any, b: Any) -> Any:
        r = a - b  # ints only (no sequence subtracts); linear in the operands' size
        if type(r) is int and not -int_lim < r < int_lim:
            raise too_big()
        return r

    def iadd(a: Any, b: Any) -> Any:
        if type(a) is list:
            b = sized(b)
            alloc(8 * len(b))
            a += b
            return a
        return add(a, b)

    def repeat_count(a: Any, b: Any) -> tuple[Any, int] | None:
        ta, tb = type(a), type(b)
        if ta in _SEQUENCES and (tb is int or tb is bool):
            return a, int(b)
        if tb in _SEQUENCES and (ta is int or ta is bool):
            return b, int(a)
        return None

    def mul(a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int:
            bits_a, bits_b = a.bit_length(), b.bit_length()
            if bits_a + bits_b - 1 > max_bits:
                raise too_big()
            cost = (bits_a * bits_b) >> INT_MUL_SHIFT
            if cost:
                step(cost)
            return check_int(a * b)
        rep = repeat_count(a, b)
        if rep is not None:
            seq, n = rep
            if n > 0:
                alloc(size_of(seq) * n)
            return a * b
        return check_int(a * b)

    def imul(a: Any, b: Any) -> Any:
        if type(a) is list and (type(b) is int or type(b) is bool):
            if b > 1:
                alloc(size_of(a) * (b - 1))
            a *= b
            return a
        return mul(a, b)

    def div_cost(a: Any, b: Any) -> None:
        if type(a) is int and type(b) is int:
            cost = int_div_steps(a.bit_length(), b.bit_length())
            if cost:
                step(cost)

    def floordiv(a: Any, b: Any) -> Any:
        div_cost(a, b)
        return a // b

    def divmod_(a: Any, b: Any) -> Any:
        div_cost(a, b)
        return divmod(a, b)

    def pow_(a: Any, b: Any, mod: Any = None) -> Any:
        ta, tb = type(a), type(b)
        if mod is not None:
            for x in (a, b, mod):
                if type(x) is not int:
                    raise TypeError("pow() with a modulus takes integers")
                check_int(x)
            bits_m = mod.bit_length()
            cost = int_powmod_steps(abs(b).bit_length() + 1, bits_m)
            cost += int_div_steps(a.bit_length(), bits_m)
            if b < 0:
                cost += (bits_m * bits_m) >> INT_MUL_SHIFT  # the modular inverse
            step(cost)
            return pow(a, b, mod)
        if (ta is int or ta is bool) and (tb is int or tb is bool):
            if b < 0:
                raise Forbidden("a negative exponent would make a float; use integers")
            if b <= 1 or a in (0, 1, -1):
                return a**b
            lower = (abs(a).bit_length() - 1) * b + 1
            if lower > max_bits:
                raise too_big()
            # a result of at most `max_bits` bits: the last squaring dominates
            upper = min(abs(a).bit_length() * b, max_bits)
            cost = (upper * upper) >> INT_MUL_SHIFT
            if cost:
                step(cost)
            return check_int(a**b)
        return a**b

    def lshift(a: Any, b: Any) -> Any:
        ints = (type(a) is int or type(a) is bool) and (type(b) is int or type(b) is bool)
        if ints and b > 0 and a and a.bit_length() + b > max_bits:
            raise too_big()
        return a << b

    def mod(a: Any, b: Any) -> Any:
        if type(a) is str or type(a) is bytes:
            raise Forbidden("%-formatting is not available; use f-strings")
        div_cost(a, b)
        return a % b

    def or_(a: Any, b: Any) -> Any:
        if type(a) is dict and type(b) is dict:
            alloc(size_of(a) + size_of(b))
        return a | b

    def ior(a: Any, b: Any) -> Any:
        if type(a) is dict:
            if type(b) is not dict:  # a dict's keys were checked when it was built
                b = materialize(b)
                check_pairs(b)
            alloc(48 * len(b))
            a |= b
            return a
        return or_(a, b)

    return {
        "_ior": ior, "_add": add, "_sub": sub, "_iadd": iadd, "_mul": mul, "_imul": imul, "_pow": pow_,
        "_lsh": lshift, "_mod": mod, "_or": or_, "_floordiv": floordiv, "divmod": divmod_,
    }  # fmt: skip


def comparisons(b: Budget, keys: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """``== != < <= > >=`` and ``in`` / ``not in``, charged for the length of the
    strings compared or the nodes of the containers, a substring search per
    ``1 << SEARCH_SHIFT`` units, a dict lookup as ``_key``; ``in_handlers`` is where
    the VM adds ``in`` for its own types."""
    step, deep = b.step, b.deep
    key = keys["_key"]

    def compare_cost(a: Any, b: Any) -> None:
        ta = type(a)
        if ta is str or ta is bytes:
            if type(b) is ta:
                n = min(text_units(a), text_units(b))
                if n >= 64:
                    step(n >> SCAN_SHIFT)
        elif ta in _CONTAINERS and type(b) in _CONTAINERS:
            # The comparison stops within the shorter value: walk (and charge) that one
            # only. Its node count bounds the work even where the other is shallower.
            x = a if len(a) <= len(b) else b
            step(NODE_STEPS * deep(x, NODE_STEPS))
            step(text_in(x) >> NESTED_TEXT_SHIFT)

    def eq(a: Any, b: Any) -> bool:
        if type(a) is int or type(b) is int:
            return a == b
        compare_cost(a, b)
        return a == b

    def ne(a: Any, b: Any) -> bool:
        if type(a) is int or type(b) is int:
            return a != b
        compare_cost(a, b)
        return a != b

    def lt(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a < b
        compare_cost(a, b)
        return a < b

    def le(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a <= b
        compare_cost(a, b)
        return a <= b

    def gt(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a > b
        compare_cost(a, b)
        return a > b

    def ge(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a >= b
        compare_cost(a, b)
        return a >= b

    in_handlers: dict[type, Callable[[Any, Any], bool]] = {}

    def contains(a: Any, b: Any) -> bool:
        tb = type(b)
        if tb is dict:
            return key(a) in b
        if tb is str or tb is bytes:
            if type(a) is tb:
                step((text_units(a) + text_units(b)) >> SEARCH_SHIFT)
            return a in b
        if tb is list or tb is tuple:
            ta = type(a)
            if ta in _CONTAINERS:
                step(NODE_STEPS * deep(b, NODE_STEPS))
                # text_in walks `a`: charge its nodes first, so that a value sharing its
                # parts (a = [a, a] forty times) is refused, not walked 2**40 times.
                step(NODE_STEPS * deep(a, NODE_STEPS))
                step(len(b) * (text_in(a) >> NESTED_TEXT_SHIFT))
            elif ta is str or ta is bytes:
                step(len(b) * (1 + (text_units(a) >> SCAN_SHIFT)))
            elif ta is int:
                step(len(b) * (1 + (a.bit_length() >> INT_COMPARE_SHIFT)))
            else:
                step(len(b))
            return a in b
        if tb is range:
            if type(a) is int or type(a) is bool:
                return int(a) in b
            return False
        handler = in_handlers.get(tb)
        if handler is not None:
            return handler(b, a)
        raise Forbidden(f"'in' is not available on {tb.__name__}; make a list first")

    def not_contains(a: Any, b: Any) -> bool:
        return not contains(a, b)

    return {
        "_eq": eq, "_ne": ne, "_lt": lt, "_le": le, "_gt": gt, "_ge": ge,
        "_in": contains, "_nin": not_contains, "in_handlers": in_handlers,
    }  # fmt: skip


def subscripts(b: Budget, keys: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Slices (read, assign, delete) and ``del x[k]``, charged for the copy or the
    memmove they make, or the key hashed."""
    step, alloc, sized = b.step, b.alloc, b.sized
    key = keys["_key"]

    def getslice(obj: Any, lo: Any, hi: Any, st: Any) -> Any:
        t = type(obj)
        if t in _SEQUENCES:
            n = len(range(len(obj))[lo:hi:st])
            alloc(n if t is str or t is bytes else 8 * n)
        return obj[lo:hi:st]

    def setslice(obj: Any, lo: Any, hi: Any, st: Any, value: Any) -> None:
        if type(obj) is list:
            value = sized(value)
            alloc(8 * len(value))
            step(len(obj) >> 4)
        obj[lo:hi:st] = value

    def delslice(obj: Any, lo: Any, hi: Any, st: Any) -> None:
        if type(obj) is list:
            step(len(obj) >> 4)
        del obj[lo:hi:st]

    def delitem(obj: Any, k: Any) -> None:
        if type(obj) is list:
            step(len(obj) >> 4)
            del obj[k]
        else:
            del obj[key(k)]

    return {
        "_getslice": getslice, "_setslice": setslice, "_delslice": delslice,
        "_delitem": delitem,
    }  # fmt: skip
