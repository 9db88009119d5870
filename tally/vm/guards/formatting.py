"""Text from values: f-string fields (``_fmt``) and the codec check.

Only ints, str, bytes, bool, None and containers of them format; no floats, no
locale, widths bounded by ``max_format_width``; the result is charged to the
memory budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .operators import CASE_SHIFT, INT_TEXT_SHIFT, NODE_STEPS, flat_text_units, text_units
from .runtime import _CONTAINERS, _NoneType

_CODECS = {"utf-8", "utf8", "ascii", "us-ascii"}
_CODEC_ERRORS = {"strict", "ignore", "replace"}
_FLOAT_PRESENTATION = set("eEfFgGn%")
_DIGITS = re.compile(r"\d+")
_FORMATTABLE = frozenset({int, str, bytes, bool, _NoneType, list, tuple, dict})
_NESTED = frozenset(_CONTAINERS)
_TEXT = frozenset({str, bytes})


def check_codec(encoding: Any, errors: Any) -> None:
    if type(encoding) is not str or encoding.lower().replace("_", "-") not in _CODECS:
        raise Forbidden("only UTF-8 and ASCII encodings are available")
    if type(errors) is not str or errors not in _CODEC_ERRORS:
        raise Forbidden("errors= must be 'strict', 'ignore' or 'replace'")


def formatting(b: Budget, limits: Limits) -> Callable[[Any, int, str], str]:
    """``_fmt(value, conversion, spec)``: one f-string field."""
    max_width = limits.max_format_width
    step, deep, alloc = b.step, b.deep, b.alloc

    def check_formattable(value: Any) -> None:
        """Refuse what cannot be formatted, and charge for the text ``str()`` will
        make of a container: ``NODE_STEPS`` a node (the walks and one ``repr`` each),
        the ``repr`` of every str and bytes in it (``CASE_SHIFT``) and the decimal
        text of every int over 512 bits (``INT_TEXT_SHIFT``, as at the top level).
        The walk runs its per-item loops in C (``map``, ``set``): it costs less than
        its charge."""
        t = type(value)
        if t in _CONTAINERS:
            step(NODE_STEPS * deep(value))
            units = 0
            stack = [value]
            while stack:
                v = stack.pop()
                items = [*v.keys(), *v.values()] if type(v) is dict else v
                types = set(map(type, items))
                if not types <= _FORMATTABLE:
                    # the first in order: a set of types iterates by their addresses
                    bad = next(type(x) for x in items if type(x) not in _FORMATTABLE)
                    raise Forbidden(f"cannot format a {bad.__name__}")
                if types & _NESTED:
                    stack.extend([x for x in items if type(x) in _CONTAINERS])
                if types & _TEXT:
                    units += flat_text_units(items, types)
                if int in types:
                    big = [n for n in map(int.bit_length, [x for x in items if type(x) is int])
                           if n > 512]  # fmt: skip
                    if big:
                        step(sum(n * n for n in big) >> INT_TEXT_SHIFT)
            step(units >> CASE_SHIFT)
        elif t not in (int, str, bytes, bool, _NoneType):
            raise Forbidden(f"cannot format a {t.__name__}")

    def fmt(value: Any, conversion: int, spec: str) -> str:
        check_formattable(value)
        tv = type(value)
        if tv is int:
            bits = value.bit_length()
            if bits > 512:
                step((bits * bits) >> INT_TEXT_SHIFT)  # int -> decimal text is quadratic
        elif tv is bytes or (tv is str and (conversion == 114 or conversion == 97)):
            step(text_units(value) >> CASE_SHIFT)  # repr() tests every character
        if conversion == 114:
            value = repr(value)
        elif conversion == 97:
            value = ascii(value)
        elif conversion == 115 or type(value) in _CONTAINERS:
            value = str(value)
        if spec:
            if spec[-1] in _FLOAT_PRESENTATION:
                raise Forbidden(f"format type {spec[-1]!r} is not available (no floats, no locale)")
            for digits in _DIGITS.findall(spec):
                if len(digits) > 6 or int(digits) > max_width:
                    raise MemoryLimitExceeded(f"format width or precision above {max_width}")
        result = format(value, spec)
        alloc(len(result))
        return result

    return fmt
