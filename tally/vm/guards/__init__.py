"""Run-time guards: metering, allocation checks, and the attribute allow-list.

The rewriter (:mod:`tally.vm.compiler`) turns every operation whose cost or result
size depends on data into a call to one of the functions built here, and the
sandbox's builtins are the wrappers built here. Each guard charges for the work
*before* doing it, so a huge request fails without allocating anything.

Cost model (steps are the unit of the step budget, bytes of the memory budget):

* straight-line code: one step per AST node, charged on function entry and on
  each loop iteration for the worst case up to the next such point;
* copying or scanning ``n`` bytes of str/bytes: ``n // 64`` steps;
* element-wise work on ``n`` list/dict elements: ``n`` steps (``n // 16`` for a
  memmove such as ``insert``); comparisons of nested values: four steps per node,
  formatting them six;
* work that grows faster or with a bigger constant (big-int ``* // % pow``,
  int <-> text, substring search, hashing a long key, sorting long strings):
  the schedule in :mod:`.operators`, measured against a plain loop step;
* every allocation whose size depends on data is charged to the memory budget,
  summed over the call (bytes allocated, not live), with sizes estimated as a
  bound of the UTF-8 size for str (``len`` if ASCII, else ``4 * len``), ``len`` for
  bytes, 8 per list slot, 48 per dict entry, an item of a materialised iterator by
  what it is; formatted text by the length of the text (`Budget.text`), copies by
  a model of CPython's object sizes (`Budget.footprint`);
* a value is walked, without recursion, before any operation recursing over it in
  C, and refused past ``Limits.max_nesting`` levels of lists and dicts.

Guards are closures over one :class:`Meter`, which the VM resets for each call, so
the hot path reads no globals and allocates nothing.

One module per guard family, each a function of the meter's `Budget` that returns
its guards by name, and `make_guards` composing them:

* :mod:`.runtime`: `Meter`, `SafeType`, ``self`` and ``ctx`` (the objects guards
  work on);
* :mod:`.budget`: steps, frames, memory, and charging for walking a value;
* :mod:`.operators`: arithmetic, comparisons and ``in``, slices, dict keys, and the
  cost schedule of size-dependent work;
* :mod:`.formatting`: f-string fields, the codec check;
* :mod:`.functions`: the sandbox builtins (type constructors, iterating builtins);
* :mod:`.methods`: method tables of str, bytes, int, list, dict, tuple, range;
* :mod:`.attributes`: ``x.name`` reads and writes, augmented assignment.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

from ..limits import Limits
from .attributes import attribute_guards
from .budget import Budget, make_budget
from .formatting import formatting
from .functions import constructors, format_costs, iteration
from .methods import container_methods, text_methods
from .operators import arithmetic, comparisons, dict_keys, subscripts
from .runtime import (
    _NO_MEMBER,
    PLAIN,
    ContextView,
    ContractInstance,
    Meter,
    SafeType,
    context_getattr,
    instance_getattr,
    scrub,
    size_of,
)

__all__ = [
    "PLAIN",
    "_NO_MEMBER",
    "Budget",
    "ContextView",
    "ContractInstance",
    "Meter",
    "SafeType",
    "context_getattr",
    "instance_getattr",
    "make_budget",
    "make_guards",
    "scrub",
    "size_of",
]


def make_guards(m: Meter, limits: Limits) -> tuple[dict[str, Any], dict[str, Any], dict[type, Any]]:
    """Build the guard functions bound to meter ``m``.

    Returns ``(guards, builtins, attr_handlers)``: the ``_``-names the rewriter
    calls, the sandbox builtins, and the per-type attribute handlers (the VM adds
    handlers for its own runtime types).
    """
    b = make_budget(m, limits)
    keys = dict_keys(b)
    arith = arithmetic(b, limits, keys)
    cmp = comparisons(b, keys)
    subs = subscripts(b, keys)
    fmt = format_costs(b, formatting(b, limits))
    types, type_of = constructors(b, limits, fmt, keys)
    iters, sort_items = iteration(b)
    str_methods, bytes_methods, int_methods = text_methods(b)
    list_methods, dict_methods, tuple_methods, range_methods = container_methods(
        b, cmp["_in"], sort_items, keys
    )
    tables = {
        str: str_methods, bytes: bytes_methods, int: int_methods, bool: int_methods,
        list: list_methods, dict: dict_methods, tuple: tuple_methods, range: range_methods,
    }  # fmt: skip
    attrs, attr_handlers = attribute_guards(b, limits, tables, arith, keys)

    builtins: dict[str, Any] = {
        "abs": abs, "all": iters["all"], "any": iters["any"], "bin": bin, "bool": bool,
        "bytes": types["bytes"], "chr": chr, "dict": types["dict"], "divmod": arith["divmod"],
        "enumerate": iters["enumerate"], "hex": hex, "int": types["int"],
        "isinstance": types["isinstance"], "len": len, "list": types["list"],
        "max": iters["max"], "min": iters["min"], "oct": oct, "ord": ord, "pow": arith["_pow"],
        "range": range, "reversed": iters["reversed"], "sorted": iters["sorted"], "str": types["str"],
        "sum": iters["sum"], "zip": iters["zip"],
    }  # fmt: skip

    _name_for_contracts(tables, builtins)

    guards: dict[str, Any] = {
        "_m": m, "_entered": b.entered, "_lamenter": b.lambda_enter, "_lamexit": b.lambda_exit,
        "_s": b.step, "_tick": b.tick, "_kept": b.kept,
        "_ga": attrs["_ga"], "_sa": attrs["_sa"], "_augattr": attrs["_augattr"],
        "_augitem": attrs["_augitem"],
        "_getslice": subs["_getslice"], "_setslice": subs["_setslice"],
        "_delslice": subs["_delslice"], "_delitem": subs["_delitem"], "_spread": b.spread,
        "_unpack": iters["_unpack"], "_unpackeach": iters["_unpackeach"],
        "_key": keys["_key"], "_skey": keys["_skey"], "_dkey": keys["_dkey"],
        "_fmt": fmt,
        "_add": arith["_add"], "_sub": arith["_sub"], "_floordiv": arith["_floordiv"],
        "_iadd": arith["_iadd"], "_mul": arith["_mul"],
        "_imul": arith["_imul"], "_pow": arith["_pow"], "_lsh": arith["_lsh"],
        "_mod": arith["_mod"], "_or": arith["_or"], "_ior": arith["_ior"],
        "_eq": cmp["_eq"], "_ne": cmp["_ne"], "_lt": cmp["_lt"], "_le": cmp["_le"],
        "_gt": cmp["_gt"], "_ge": cmp["_ge"], "_in": cmp["_in"], "_nin": cmp["_nin"],
        # not called by contract code; the VM uses them
        "alloc": b.alloc, "step": b.step, "type_of": type_of, "in_handlers": cmp["in_handlers"],
        "setattr_handlers": attrs["setattr_handlers"], "check_int": b.check_int,
    }  # fmt: skip
    return guards, builtins, attr_handlers


def _name_for_contracts(tables: dict[type, dict[str, Any]], builtins: dict[str, Any]) -> None:
    """Give each guard the name contract code calls it by: a Python error about its
    arguments (``TypeError: join() missing 1 required positional argument``) then
    names what the contract called, not the VM's internals (``b_str``,
    ``copy.<locals>.method``)."""
    named: list[tuple[str, Any]] = [(n, f) for t in tables.values() for n, f in t.items()]
    for name, fn in builtins.items():
        if isinstance(fn, SafeType):
            named.append((name, fn.impl))
            named.extend(fn.attrs.items())
        else:
            named.append((name, fn))
    for name, fn in named:
        if isinstance(fn, FunctionType):
            fn.__name__ = fn.__qualname__ = name
