"""Operator guards: arithmetic, comparisons and ``in``, slices and ``del``.

The rewriter turns ``a + b``, ``a == b``, ``x in y``, ``s[i:j]`` and friends into
calls to these (``_add``, ``_eq``, ``_in``, ``_getslice``, ...). Each family
function returns its guards by the name the rewriter calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .runtime import _CONTAINERS, _SEQUENCES, size_of


def arithmetic(b: Budget, limits: Limits) -> dict[str, Callable[..., Any]]:
    """``+ * ** << % |`` and their in-place forms: integers bounded to
    ``max_int_bits``, sequence and dict results charged to the memory budget."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    step, alloc, check_int = b.step, b.alloc, b.check_int
    sized, materialize = b.sized, b.materialize

    def add(a: Any, b: Any) -> Any:
        ta = type(a)
        if ta is int and type(b) is int:
            r = a + b
            if -int_lim < r < int_lim:
                return r
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        if ta is type(b) and ta in _SEQUENCES:
            alloc(size_of(a) + size_of(b))
            return a + b
        return check_int(a + b)

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
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            if bits_a > 512 and bits_b > 512:
                step((bits_a * bits_b) >> 16)  # schoolbook-ish cost of big products
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

    def pow_(a: Any, b: Any, mod: Any = None) -> Any:
        ta, tb = type(a), type(b)
        if mod is not None:
            for x in (a, b, mod):
                if type(x) is not int:
                    raise TypeError("pow() with a modulus takes integers")
                check_int(x)
            step(b.bit_length() + 1)
            return pow(a, b, mod)
        if (ta is int or ta is bool) and (tb is int or tb is bool):
            if b < 0:
                raise Forbidden("a negative exponent would make a float; use integers")
            if b <= 1 or a in (0, 1, -1):
                return a**b
            lower = (abs(a).bit_length() - 1) * b + 1
            if lower > max_bits:
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            return check_int(a**b)
        return a**b

    def lshift(a: Any, b: Any) -> Any:
        ints = (type(a) is int or type(a) is bool) and (type(b) is int or type(b) is bool)
        if ints and b > 0 and a and a.bit_length() + b > max_bits:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return a << b

    def mod(a: Any, b: Any) -> Any:
        if type(a) is str or type(a) is bytes:
            raise Forbidden("%-formatting is not available; use f-strings")
        return a % b

    def or_(a: Any, b: Any) -> Any:
        if type(a) is dict and type(b) is dict:
            alloc(size_of(a) + size_of(b))
        return a | b

    def ior(a: Any, b: Any) -> Any:
        if type(a) is dict:
            b = b if type(b) is dict else materialize(b)
            alloc(48 * len(b))
            a |= b
            return a
        return or_(a, b)

    return {
        "_add": add, "_iadd": iadd, "_mul": mul, "_imul": imul, "_pow": pow_, "_lsh": lshift,
        "_mod": mod, "_or": or_, "_ior": ior,
    }  # fmt: skip


def comparisons(b: Budget) -> dict[str, Any]:
    """``== != < <= > >=`` and ``in`` / ``not in``, charged for the length of the
    strings compared or the nodes of the containers; ``in_handlers`` is where the VM
    adds ``in`` for its own types."""
    step, deep = b.step, b.deep

    def compare_cost(a: Any, b: Any) -> None:
        ta = type(a)
        if ta is str or ta is bytes:
            if type(b) is ta:
                n = min(len(a), len(b))
                if n >= 64:
                    step(n >> 6)
        elif ta in _CONTAINERS and type(b) in _CONTAINERS:
            step(min(deep(a), deep(b)))

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
            if type(a) is str and len(a) >= 64:
                step(len(a) >> 6)
            return a in b
        if tb is str or tb is bytes:
            if type(a) is tb:
                step((len(a) + len(b)) >> 6)
            return a in b
        if tb is list or tb is tuple:
            ta = type(a)
            if ta in _CONTAINERS:
                step(deep(b))
            elif ta is str or ta is bytes:
                step(len(b) * (1 + (len(a) >> 6)))
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


def subscripts(b: Budget) -> dict[str, Callable[..., Any]]:
    """Slices (read, assign, delete) and ``del x[k]``, charged for the copy or the
    memmove they make."""
    step, alloc, sized = b.step, b.alloc, b.sized

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

    def delitem(obj: Any, key: Any) -> None:
        if type(obj) is list:
            step(len(obj) >> 4)
        del obj[key]

    return {
        "_getslice": getslice, "_setslice": setslice, "_delslice": delslice,
        "_delitem": delitem,
    }  # fmt: skip
