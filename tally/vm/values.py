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

from typing import Any

import cbor2

from .errors import InvalidValue

_SMALL_HEADS = [[bytes((major << 5 | n,)) for n in range(24)] for major in range(8)]
_TRUE = b"\xf5"
_FALSE = b"\xf4"
_NULL = b"\xf6"
_U64 = 1 << 64


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return _SMALL_HEADS[major][n]
    m = major << 5
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


class _Encoder:
    """One encoding walk with its running size, so limits cut the walk short."""

    __slots__ = ("parts", "size", "max_bytes", "max_depth", "max_int_bits")

    def __init__(self, max_bytes: int, max_depth: int, max_int_bits: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_int_bits = max_int_bits

    def put(self, b: bytes) -> None:
        self.size += len(b)
        if self.size > self.max_bytes:
            raise InvalidValue(f"value larger than {self.max_bytes} bytes")
        self.parts.append(b)

    def encode(self, v: Any, depth: int) -> None:
        t = type(v)
        if t is int:
            if v.bit_length() > self.max_int_bits:
                raise InvalidValue(f"integer larger than {self.max_int_bits} bits")
            if v >= 0:
                if v < _U64:
                    self.put(_head(0, v))
                else:
                    raw = v.to_bytes((v.bit_length() + 7) // 8, "big")
                    self.put(b"\xc2" + _head(2, len(raw)) + raw)
            else:
                m = -1 - v
                if m < _U64:
                    self.put(_head(1, m))
                else:
                    raw = m.to_bytes((m.bit_length() + 7) // 8, "big")
                    self.put(b"\xc3" + _head(2, len(raw)) + raw)
        elif t is str:
            try:
                raw = v.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidValue("string is not valid Unicode (lone surrogate)") from None
            self.put(_head(3, len(raw)))
            self.put(raw)
        elif t is bytes:
            self.put(_head(2, len(v)))
            self.put(v)
        elif t is bool:
            self.put(_TRUE if v else _FALSE)
        elif v is None:
            self.put(_NULL)
        elif t is list or t is tuple:
            if depth >= self.max_depth:
                raise InvalidValue(f"value nested deeper than {self.max_depth}")
            self.put(_head(4, len(v)))
            for item in v:
                self.encode(item, depth + 1)
        elif t is dict:
            if depth >= self.max_depth:
                raise InvalidValue(f"value nested deeper than {self.max_depth}")
            self.put(_head(5, len(v)))
            parts = self.parts
            first = len(parts)
            pairs = []
            for key, item in v.items():
                kt = type(key)
                if kt is not str and kt is not int and kt is not bytes:
                    raise InvalidValue(f"dict key of type {kt.__name__} is not storable")
                start = len(parts)
                self.encode(key, depth + 1)
                key_end = len(parts)
                self.encode(item, depth + 1)
                enc_key = b"".join(parts[start:key_end])
                pairs.append((len(enc_key), enc_key, b"".join(parts[start:])))
                del parts[start:]
                parts.append(pairs[-1][2])
            # Canonical order: shorter encoded key first, then bytewise (as cbor2 does).
            pairs.sort(key=lambda p: (p[0], p[1]))
            del parts[first:]
            parts.extend(p[2] for p in pairs)
        elif t is float:
            raise InvalidValue("float values are not allowed (use integers)")
        else:
            raise InvalidValue(f"value of type {t.__name__} is not storable")


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
    # Fast paths for the values contracts store most: small ints and short strings.
    if t is int and 0 <= value < 24:
        return _SMALL_HEADS[0][value]
    if t is str and len(value) < 24 and value.isascii():
        return _SMALL_HEADS[3][len(value)] + value.encode("ascii")
    enc = _Encoder(max_bytes, max_depth, max_int_bits)
    enc.encode(value, 0)
    return b"".join(enc.parts)


def decode(data: bytes) -> Any:
    """Decode a value written by :func:`encode` (a fresh object every time)."""
    first = data[0]
    if first < 24 and len(data) == 1:
        return first
    return cbor2.loads(data)


def is_scalar(value: Any) -> bool:
    """Immutable values may be cached and shared; lists and dicts are copied."""
    t = type(value)
    return t is int or t is str or t is bytes or t is bool or value is None
