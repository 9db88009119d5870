"""Storable values and their deterministic encoding.

A storable value is ``int`` (not float), ``str``, ``bytes``, ``bool``, ``None``, or a
``list`` / ``dict`` of storable values whose dict keys are ``str``, ``int`` or
``bytes``. These are the only values that may cross a boundary of the sandbox:
arguments, storage, events, return values, host calls.

The encoding is deterministic CBOR exactly as ``cbor2.dumps(v, canonical=True)``
writes it (shortest heads, map keys sorted length-first then bytewise, bignums as
tags 2/3). It is written here in Python rather than delegated to cbor2 because the
encoder is also the validator: one walk checks types, depth, integer size and
total size, and stops as soon as a limit is passed, so a value built as a DAG
(``a = [a, a]`` repeated) costs at most ``max_bytes`` of work to reject. It is also
several times faster than cbor2's canonical mode for the small values contracts
store (tests compare the two on generated values).
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from .errors import InvalidValue

_SMALL_HEADS = [[bytes((major << 5 | n,)) for n in range(24)] for major in range(8)]
_TRUE = b"\xf5"
_FALSE = b"\xf4"
_NULL = b"\xf6"
_U64 = 1 << 64


_HEADS = [
    [bytes((major << 5 | n,)) if n < 24 else bytes((major << 5 | 24, n)) for n in range(256)]
    for major in range(8)
]
_PACK = struct.Struct(">BH").pack, struct.Struct(">BI").pack, struct.Struct(">BQ").pack


def _head(major: int, n: int) -> bytes:
    """The shortest CBOR head for ``major`` with argument ``n``."""
    if n < 0x100:
        return _HEADS[major][n]
    m = major << 5
    if n < 0x10000:
        return _PACK[0](m | 25, n)
    if n < 0x100000000:
        return _PACK[1](m | 26, n)
    return _PACK[2](m | 27, n)


def _too_big(max_bytes: int) -> InvalidValue:
    return InvalidValue(f"value larger than {max_bytes} bytes")


def _walk(
    v: Any, out: list[bytes], size: list[int], depth: int, limits: tuple[int, int, int]
) -> None:
    """Append the encoding of ``v`` to ``out``; ``size[0]`` is the running byte count,
    checked at every string and container so an oversized value is cut short."""
    max_bytes, max_depth, max_bits = limits
    t = type(v)
    if t is int:
        if v.bit_length() > max_bits:
            raise InvalidValue(f"integer larger than {max_bits} bits")
        b = _int(v)
    elif t is str:
        try:
            raw = v.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue("string is not valid Unicode (lone surrogate)") from None
        b = _head(3, len(raw)) + raw
    elif t is bytes:
        b = _head(2, len(v)) + v
    elif t is bool:
        b = _TRUE if v else _FALSE
    elif v is None:
        b = _NULL
    elif t is list or t is tuple or t is dict:
        if depth >= max_depth:
            raise InvalidValue(f"value nested deeper than {max_depth}")
        size[0] += 1 + len(v)  # a lower bound of what the items will take
        if size[0] > max_bytes:
            raise _too_big(max_bytes)
        if t is dict:
            out.append(_head(5, len(v)))
            pairs = []
            for key, item in v.items():
                kt = type(key)
                if kt is not str and kt is not int and kt is not bytes:
                    raise InvalidValue(f"dict key of type {kt.__name__} is not storable")
                part: list[bytes] = []
                _walk(key, part, size, depth + 1, limits)
                enc_key = part[0]
                _walk(item, part, size, depth + 1, limits)
                pairs.append((len(enc_key), enc_key, part))
            # Canonical order: shorter encoded key first, then bytewise (as cbor2 does).
            pairs.sort(key=lambda p: (p[0], p[1]))
            for _, _, part in pairs:
                out.extend(part)
        else:
            out.append(_head(4, len(v)))
            for item in v:
                _walk(item, out, size, depth + 1, limits)
        return
    elif t is float:
        raise InvalidValue("float values are not allowed (use integers)")
    else:
        raise InvalidValue(f"value of type {t.__name__} is not storable")
    size[0] += len(b)
    if size[0] > max_bytes:
        raise _too_big(max_bytes)
    out.append(b)


_UINT_HEADS = _HEADS[0]
_NINT_HEADS = _HEADS[1]
_PACK16, _PACK32, _PACK64 = _PACK


def _int(v: int) -> bytes:
    """Canonical CBOR of an int, in one call for the common sizes (the head is
    written out here rather than through :func:`_head`)."""
    if v >= 0:
        if v < 0x100:
            return _UINT_HEADS[v]
        if v < 0x10000:
            return _PACK16(0x19, v)
        if v < 0x100000000:
            return _PACK32(0x1A, v)
        if v < _U64:
            return _PACK64(0x1B, v)
        raw = v.to_bytes((v.bit_length() + 7) // 8, "big")
        return b"\xc2" + _head(2, len(raw)) + raw
    m = -1 - v
    if m < 0x100:
        return _NINT_HEADS[m]
    if m < 0x10000:
        return _PACK16(0x39, m)
    if m < 0x100000000:
        return _PACK32(0x3A, m)
    if m < _U64:
        return _PACK64(0x3B, m)
    raw = m.to_bytes((m.bit_length() + 7) // 8, "big")
    return b"\xc3" + _head(2, len(raw)) + raw


#: Canonical CBOR of an int (no size check: callers bound it).
encode_int = _int


def encode(
    value: Any,
    *,
    max_bytes: int = 64 * 1024,
    max_depth: int = 32,
    max_int_bits: int = 4096,
) -> bytes:
    """Validate ``value`` as storable and return its canonical CBOR encoding.

    Raises :class:`InvalidValue` for anything not storable or over a limit.
    """
    t = type(value)
    # Fast paths for the values contracts store most: ints and ASCII strings.
    if t is int and -_U64 <= value < _U64:
        return _int(value)
    if t is str and value.isascii() and len(value) <= max_bytes - 9:
        return _head(3, len(value)) + value.encode("ascii")
    out: list[bytes] = []
    _walk(value, out, [0], 0, (max_bytes, max_depth, max_int_bits))
    return b"".join(out)


#: Argument sizes 2, 4 and 8 (additional information 25-27): their readers.
_UNPACK = {
    25: struct.Struct(">H").unpack_from,
    26: struct.Struct(">I").unpack_from,
    27: struct.Struct(">Q").unpack_from,
}

#: By first byte 0x00-0x1B (an unsigned int, with its argument in the first byte or
#: in the next 1-8): the length of the encoding, and the reader of the argument.
UINT_SIZE = [1] * 0x18 + [2, 3, 5, 9]  # by first byte 0x00-0x1B
UINT_READ = {0x18: struct.Struct(">B").unpack_from, **_UNPACK}  # first byte = 0x18 + size code


def decode(data: bytes) -> Any:
    """Decode a value written by :func:`encode` (a fresh object every time).

    Single ints, strings and byte strings, which is most of what contracts store,
    are decoded here directly; anything else goes to cbor2.
    """
    first = data[0]
    if first < 0x1C and len(data) == UINT_SIZE[first]:
        # an unsigned int, the commonest stored value
        return first if first < 0x18 else UINT_READ[first](data, 1)[0]
    if first < 0x80:  # major types 0-3: int, negative int, bytes, text
        n = len(data)
        info = first & 31
        if info < 24:
            arg, start = info, 1
        elif info == 24:
            if n < 2:
                return cbor2.loads(data)
            arg, start = data[1], 2
        elif info < 28:
            start = (1 << (info - 24)) + 1
            if n < start:
                return cbor2.loads(data)
            arg = _UNPACK[info](data, 1)[0]
        else:
            return cbor2.loads(data)
        major = first >> 5
        if major == 0:
            if start == n:
                return arg
        elif major == 1:
            if start == n:
                return -1 - arg
        elif start + arg == n:
            return data[start:].decode("utf-8") if major == 3 else data[start:]
    return cbor2.loads(data)


def is_scalar(value: Any) -> bool:
    """Immutable values may be cached and shared; lists and dicts are copied."""
    t = type(value)
    return t is int or t is str or t is bytes or t is bool or value is None


def _check_scalar(v: Any, max_bits: int) -> int:
    """Validate one scalar; return a bound of its encoded size that is at least the
    bytes of its text (a str counts its UTF-8 bytes, not its characters: the cap
    is on what a receipt or a block carries)."""
    t = type(v)
    if t is int:
        bits = v.bit_length()
        if bits > max_bits:
            raise InvalidValue(f"integer larger than {max_bits} bits")
        return 9 if bits <= 64 else (bits >> 3) + 4
    if t is str:
        if not v.isascii():
            try:
                return len(v.encode("utf-8")) + 5
            except UnicodeEncodeError:
                raise InvalidValue("string is not valid Unicode (lone surrogate)") from None
        return len(v) + 5
    if t is bytes:
        return len(v) + 5
    if t is bool or v is None:
        return 1
    if t is float:
        raise InvalidValue("float values are not allowed (use integers)")
    raise InvalidValue(f"value of type {t.__name__} is not storable")


def snapshot(
    value: Any,
    *,
    max_bytes: int = 64 * 1024,
    max_depth: int = 32,
    max_int_bits: int = 4096,
) -> Any:
    """Validate ``value`` as storable and return a copy nobody else holds.

    Cheaper than an encode/decode round trip for the common shapes (scalars, flat
    lists and dicts), which is what events, return values and call arguments are.
    """
    t = type(value)
    if t is dict:
        # The usual event or record, str keys to scalars: one tight pass, the
        # same checks and the same size sum as the loop below.
        size = 1
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                break
            tv = type(v)
            if tv is str:
                if not v.isascii():
                    break
                size += len(k) + len(v) + 10
            elif tv is int:
                if not -_U64 <= v < _U64:
                    break
                size += len(k) + 14
            elif tv is bool or v is None:
                size += len(k) + 6
            else:
                break
        else:
            if size > max_bytes:
                raise InvalidValue(f"value larger than {max_bytes} bytes")
            return dict(value)
        size = 1
        for k, v in value.items():
            kt = type(k)
            if kt is str and k.isascii():
                size += len(k) + 5
            elif kt is not str and kt is not int and kt is not bytes:
                raise InvalidValue(f"dict key of type {kt.__name__} is not storable")
            else:
                size += _check_scalar(k, max_int_bits)
            tv = type(v)
            if tv is list or tv is dict or tv is tuple:
                break
            if tv is str and v.isascii():
                size += len(v) + 5
            elif tv is int and -_U64 <= v < _U64:
                size += 9
            else:
                size += _check_scalar(v, max_int_bits)
        else:
            if size > max_bytes:
                raise InvalidValue(f"value larger than {max_bytes} bytes")
            return dict(value)
    elif t is list or t is tuple:
        size = 1
        for v in value:
            tv = type(v)
            if tv is list or tv is dict or tv is tuple:
                break
            size += _check_scalar(v, max_int_bits)
        else:
            if size > max_bytes:
                raise InvalidValue(f"value larger than {max_bytes} bytes")
            return list(value)
    else:
        if _check_scalar(value, max_int_bits) > max_bytes:
            raise InvalidValue(f"value larger than {max_bytes} bytes")
        return value
    raw = encode(value, max_bytes=max_bytes, max_depth=max_depth, max_int_bits=max_int_bits)
    return decode(raw)
