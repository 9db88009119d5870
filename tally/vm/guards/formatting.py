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
from .runtime import _CONTAINERS, _NoneType

_CODECS = {"utf-8", "utf8", "ascii", "us-ascii"}
_CODEC_ERRORS = {"strict", "ignore", "replace"}
_FLOAT_PRESENTATION = set("eEfFgGn%")
_DIGITS = re.compile(r"\d+")


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
        t = type(value)
        if t in _CONTAINERS:
            step(deep(value))
            stack = [value]
            while stack:
                v = stack.pop()
                tv = type(v)
                if tv is list or tv is tuple:
                    stack.extend(v)
                elif tv is dict:
                    stack.extend(v.keys())
                    stack.extend(v.values())
                elif tv not in (int, str, bytes, bool, _NoneType):
                    raise Forbidden(f"cannot format a {tv.__name__}")
        elif t not in (int, str, bytes, bool, _NoneType):
            raise Forbidden(f"cannot format a {t.__name__}")

    def fmt(value: Any, conversion: int, spec: str) -> str:
        check_formattable(value)
        if type(value) is int:
            bits = value.bit_length()
            if bits > 512:
                step((bits * bits) >> 16)  # int -> decimal text is quadratic
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
