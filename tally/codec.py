"""Canonical encoding: deterministic CBOR (RFC 8949 §4.2.1).

Everything that is hashed or signed (transactions, events, headers, state values) is
encoded here, so that one value has exactly one byte string on every node. Decoding is
strict: bytes that are not the canonical encoding of what they decode to are refused,
which closes the door on malleable encodings with the same meaning.
"""

from __future__ import annotations

from typing import Any

import cbor2

from tally.errors import Code, TxRejected

try:
    from tally_cbor import loads_canonical as decode_fast
except ImportError as exc:  # pragma: no cover - the README's commands build it
    raise ImportError(
        "Tally's canonical-CBOR decoder (the tally_cbor extension) is not installed; "
        "`make setup` builds it, or `pip install ./native/cbor` (needs Rust's cargo)"
    ) from exc

# decode_fast(data): the value of ``data`` if it is the canonical encoding of an array or
# a map within a plain subset of CBOR (integers, strings, arrays, maps with text keys,
# booleans, null); ``None`` for anything else, and then the reference path must decide.
# A fast path only (decision 0016): whatever it accepts, decode_canonical_reference
# accepts with the same value, so the chain's rule stays the reference's.

#: Nesting deeper than this is refused before decoding finishes.
MAX_DEPTH = 16


def encode(value: Any) -> bytes:
    """Canonical bytes of ``value`` (map keys sorted by their encoding, shortest forms).

    Floats are refused: consensus state never holds them.
    """
    _reject_floats(value, 0)
    return cbor2.dumps(value, canonical=True)


def encode_trusted(value: Any) -> bytes:
    """Canonical bytes of a value built by Tally itself (no float scan: hot path)."""
    return cbor2.dumps(value, canonical=True)


#: Tags 2 and 3: an unsigned or negative bignum (RFC 8949 §3.4.3).
_BIGNUM_TAGS = (0xC2, 0xC3)


def loads_untrusted(data: bytes) -> Any:
    """cbor2's decoding of bytes a stranger sent, refusing first (``ValueError``) a map
    keyed by a bignum.

    Python hashes an int as its value modulo 2**61 - 1, so bignum keys that differ by
    multiples of it all collide, and building a map of n of them costs n**2: a 64 KiB
    transaction of 5,000 such keys held admission 0.4 s (issue 13), a 1 MiB one minutes,
    before its signature could be checked. Keys within 64 bits collide at most sixteen to
    a value (eight of each sign), which costs nothing. The structural scan runs only when the bytes hold a
    bignum tag byte at all."""
    if _BIGNUM_TAGS[0] in data or _BIGNUM_TAGS[1] in data:
        _refuse_bignum_keys(data)
    return cbor2.loads(data)


def _refuse_bignum_keys(data: bytes) -> None:
    """Walk the CBOR items of ``data`` (no values are built) and raise ValueError at a map
    key that is a bignum; malformed bytes are left for the decoder to refuse."""
    n = len(data)
    i = 0
    # per open container: [items left, is a map, items seen]
    stack: list[list[Any]] = [[1, False, 0]]
    while stack and i < n:
        top = stack[-1]
        if top[0] == 0:
            stack.pop()
            continue
        is_key = top[1] and top[2] % 2 == 0
        top[0] -= 1
        top[2] += 1
        head = data[i]
        major, info = head >> 5, head & 31
        i += 1
        if info < 24:
            arg = info
        elif info < 28:
            width = 1 << (info - 24)
            arg = int.from_bytes(data[i:i + width], "big")
            i += width
        else:
            return  # indefinite lengths and reserved values: not canonical, refused later
        if major == 2 or major == 3:
            i += arg
        elif major == 4:
            stack.append([arg, False, 0])
        elif major == 5:
            stack.append([2 * arg, True, 0])
        elif major == 6:
            if is_key and head in _BIGNUM_TAGS:
                raise ValueError("a map key is a bignum (keys must fit in 64 bits)")
            top[0] += 1  # a tag wraps the next item, which takes this item's place
            top[2] -= 1


def decode(data: bytes) -> Any:
    """Decode bytes that were produced by :func:`encode`, without a canonicity check.

    For Tally's own stored values, which were written canonically.
    """
    return cbor2.loads(data)


def _text_key(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def _keys_in_canonical_order(keys: tuple[Any, ...]) -> bool:
    """True when every key is text and they are strictly increasing in canonical order
    (shorter encoding first, then bytewise)."""
    if any(type(key) is not str for key in keys):
        return False
    encoded = [_text_key(key) for key in keys]
    return all(a < b for a, b in zip(encoded, encoded[1:], strict=False))


#: Verdicts of `_keys_in_canonical_order` by key tuple. Transactions of one kind share
#: their maps' keys, so the verdict is nearly always a lookup; it is a pure function of
#: the keys, so remembering it changes no result. Cleared when full (keys are untrusted).
_KEY_ORDER: dict[tuple[Any, ...], bool] = {}
_KEY_ORDER_ENTRIES = 4096


def _in_canonical_order(value: Any) -> bool:
    """True when every map in ``value`` already lists its (text) keys in canonical order,
    so that plain encoding is the canonical encoding. Checking is far cheaper than
    sorting, and decoded canonical input always passes."""
    if type(value) is dict:
        keys = tuple(value)
        in_order = _KEY_ORDER.get(keys)
        if in_order is None:
            in_order = _keys_in_canonical_order(keys)
            if len(_KEY_ORDER) >= _KEY_ORDER_ENTRIES:
                _KEY_ORDER.clear()
            _KEY_ORDER[keys] = in_order
        if not in_order:
            return False
        for item in value.values():
            if type(item) in (dict, list, float) and not _in_canonical_order(item):
                return False
        return True
    if type(value) is list:
        return all(_in_canonical_order(x) for x in value if type(x) in (dict, list, float))
    return type(value) is not float  # floats have their own shortest-form rule: slow path


def canonical_bytes(value: Any) -> bytes:
    """The canonical encoding of a decoded value, taking the fast path when its maps are
    already in canonical key order."""
    if _in_canonical_order(value):
        return cbor2.dumps(value)
    return cbor2.dumps(value, canonical=True)


def decode_canonical(data: bytes, what: str = "value") -> Any:
    """Decode untrusted bytes and insist they are the canonical encoding.

    Raises :class:`TxRejected` with ``TX_MALFORMED`` otherwise. Floats and other
    non-consensus types are not scanned for here: every field a transaction carries is
    type-checked by its parser (``tally.tx``, ``tally.exec.payload``), which refuses them.
    """
    if type(data) is bytes:
        value = decode_fast(data)
        if value is not None:
            return value
    return decode_canonical_reference(data, what)


def decode_canonical_reference(data: bytes, what: str = "value") -> Any:
    """:func:`decode_canonical` by cbor2 alone: decode, re-encode canonically, compare.

    The definition of what the chain accepts; the native fast path only ever agrees
    with it (tests/unit/test_cbor_fast.py)."""
    try:
        value = loads_untrusted(data)
    except Exception as exc:  # cbor2 raises several types; all mean "not CBOR"
        raise TxRejected(f"{what} is not valid CBOR: {exc}", Code.MALFORMED) from None
    try:
        canonical = canonical_bytes(value)
    except Exception:  # a value cbor2 decodes but cannot encode (e.g. odd tags)
        canonical = None
    if canonical != data:
        raise TxRejected(f"{what} is not in canonical (deterministic) CBOR form", Code.MALFORMED)
    return value


def _reject_floats(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}")
    if isinstance(value, (bool, int, str, bytes)) or value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _reject_floats(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_floats(key, depth + 1)
            _reject_floats(item, depth + 1)
        return
    if isinstance(value, float):
        raise ValueError("floating-point numbers are not allowed in consensus data")
    raise ValueError(f"values of type {type(value).__name__} are not allowed")
