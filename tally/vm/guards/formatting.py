"""Text from values: f-string fields (``_fmt``) and the codec check.

Only ints, str, bytes, bool, None and containers of them format; no floats, no
locale, widths bounded by ``max_format_width``; the result's size is charged to
the memory budget before it is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import Forbidden, MemoryLimitExceeded
from ..limits import Limits
from .budget import Budget
from .runtime import _CONTAINERS, _NoneType

_FORMATTABLE = frozenset((int, str, bytes, bool, _NoneType, list, tuple, dict))

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
    """``_fmt(value, conversion, spec)``: one f-string field (and ``str(value)``).

    The text's size is computed, with the nesting checked, and charged before any
    of it is built (`Budget.text`): formatting a DAG of lists, or a list repeating a
    dict with a long key, fails on the memory or step budget without allocating,
    and nesting past ``max_nesting`` fails before CPython's repr would recurse."""
    max_width = limits.max_format_width
    text = b.text

    def fmt(value: Any, conversion: int, spec: str) -> str:
        t = type(value)
        if t is str and not spec and conversion != 114 and conversion != 97:
            text(value, conversion, 0)
            return value
        if t not in _FORMATTABLE:
            raise Forbidden(f"cannot format a {t.__name__}")
        width = 0
        if spec:
            if spec[-1] in _FLOAT_PRESENTATION:
                raise Forbidden(f"format type {spec[-1]!r} is not available (no floats, no locale)")
            for digits in _DIGITS.findall(spec):
                if len(digits) > 6 or int(digits) > max_width:
                    raise MemoryLimitExceeded(f"format width or precision above {max_width}")
                width = max(width, int(digits))
            if t is int or t is bool:
                # binary, octal or hex digits and separators: more than the decimal
                # digits the text walk counts
                width += value.bit_length() * 3 // 2 + 4
        text(value, conversion, width)
        if conversion == 114:
            value = repr(value)
        elif conversion == 97:
            value = ascii(value)
        elif conversion == 115 or t in _CONTAINERS:
            value = str(value)
        return format(value, spec)

    return fmt
