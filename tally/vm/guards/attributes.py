"""Attribute guards: ``x.name`` reads (``_ga``), writes (``_sa``) and augmented
assignments (``_augattr``, ``_augitem``).

A read finds the handler for the object's exact type: a method table, the class
methods of a `SafeType`, the fields of ``ctx``, or one the VM registers for its own
types; anything else is not available.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any

from ..errors import Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .operators import METHOD_STEPS
from .runtime import PLAIN, ContextView, SafeType, context_getattr


def attribute_guards(
    b: Budget,
    limits: Limits,
    tables: dict[type, dict[str, Any]],
    arith: dict[str, Callable[..., Any]],
    keys: dict[str, Callable[..., Any]],
) -> tuple[dict[str, Any], dict[type, Any]]:
    """The attribute guards by name (and ``setattr_handlers``, which the VM fills),
    and ``attr_handlers``: one handler per type in ``tables``, then `SafeType` and
    `ContextView`. ``arith`` gives the in-place operators of ``+=`` and friends (each
    checked and charged as its binary form), ``keys`` the dict-key check of
    ``d[k] op= v``."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    iadd, imul, mod, pow_ = arith["_iadd"], arith["_imul"], arith["_mod"], arith["_pow"]
    lshift, ior, sub, floordiv = arith["_lsh"], arith["_ior"], arith["_sub"], arith["_floordiv"]
    store_key, step = keys["_dkey"], b.step

    def table_handler(table: dict[str, Any]) -> Callable[[Any, str], Any]:
        def handler(obj: Any, name: str) -> Any:
            entry = table.get(name)
            if entry is None:
                raise Forbidden(f"attribute {name!r} of {type(obj).__name__} is not available")
            if entry is PLAIN:
                return getattr(obj, name)
            step(METHOD_STEPS)
            return partial(entry, obj)

        return handler

    def safe_type_attr(obj: SafeType, name: str) -> Any:
        entry = obj.attrs.get(name)
        if entry is None:
            raise Forbidden(f"attribute {name!r} of {obj.name} is not available")
        return entry

    attr_handlers: dict[type, Any] = {t: table_handler(table) for t, table in tables.items()}
    attr_handlers[SafeType] = safe_type_attr
    attr_handlers[ContextView] = context_getattr

    def getattr_guard(obj: Any, name: str) -> Any:
        t = type(obj)
        handler = attr_handlers.get(t)
        if handler is None:
            raise Forbidden(f"attribute {name!r} of {type(obj).__name__} is not available")
        return handler(obj, name)

    setattr_handlers: dict[type, Any] = {}

    def setattr_guard(obj: Any, name: str, value: Any) -> None:
        handler = setattr_handlers.get(type(obj))
        if handler is None:
            raise Forbidden(f"cannot set attributes of {type(obj).__name__}")
        handler(obj, name, value)

    ops: dict[str, Callable[[Any, Any], Any]] = {
        "+": iadd, "-": sub, "*": imul, "//": floordiv, "%": mod,
        "**": pow_, "<<": lshift, ">>": operator.irshift, "|": ior, "^": operator.ixor,
        "&": operator.iand,
    }  # fmt: skip

    def augattr(obj: Any, name: str, op: str, value: Any) -> None:
        setattr_guard(obj, name, ops[op](getattr_guard(obj, name), value))

    def augitem(obj: Any, key: Any, op: str, value: Any) -> None:
        if type(obj) is dict:
            key = store_key(key)
        current = obj[key]
        if op == "+" and type(current) is int and type(value) is int:
            result = current + value  # `balances[to] += amount`, the common case
            if not -int_lim < result < int_lim:
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            obj[key] = result
        else:
            obj[key] = ops[op](current, value)

    return {
        "_ga": getattr_guard, "_sa": setattr_guard, "_augattr": augattr, "_augitem": augitem,
        "setattr_handlers": setattr_handlers,
    }, attr_handlers  # fmt: skip
