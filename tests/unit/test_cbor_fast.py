"""The native canonical-CBOR decoder agrees with the reference on every input it accepts.

``tally_cbor.loads_canonical`` (``native/cbor``) is a fast path in front of
``codec.decode_canonical_reference`` (cbor2: decode, re-encode canonically, compare),
decision 0016. The chain's rule is the reference's, so the property a validator relies
on is one-sided and exact: whenever the fast path returns a value, the reference accepts
the same bytes and returns an equal value of the same types; whenever the reference
refuses, the fast path returns None. Returning None on something the reference accepts
(a float, a tag) only costs speed.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally import codec
from tally.consensus.bundle import decode_bundle, encode_bundle
from tally.errors import TxRejected

fast = codec.decode_fast


def reference(data: bytes) -> Any:
    """The reference's verdict: the value, or the TxRejected it raised."""
    try:
        return codec.decode_canonical_reference(data)
    except TxRejected as exc:
        return exc


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``True == 1`` must not pass), with
    map keys in the same order."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def agrees(data: bytes) -> Any:
    """Assert the one-sided agreement for ``data``; return the fast path's answer."""
    got = fast(data)
    ref = reference(data)
    if got is not None:
        assert not isinstance(ref, TxRejected), f"fast path accepted what the reference refuses: {data.hex()}"
        assert same(got, ref), f"fast path decoded {data.hex()} differently"
    return got


# Integers at every boundary of the argument sizes, both signs.
edges = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
integers = st.one_of(
    st.sampled_from(edges + [-1 - e for e in edges]),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
)
scalars = st.one_of(integers, st.binary(max_size=300), st.text(max_size=300),
                    st.booleans(), st.none())
plain = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=30),
                               st.dictionaries(st.text(max_size=30), children, max_size=30)),
    max_leaves=60,
)
containers = st.one_of(st.lists(plain, max_size=30),
                       st.dictionaries(st.text(max_size=30), plain, max_size=30))


@settings(max_examples=500, deadline=None)
@given(containers)
def test_every_plain_canonical_value_takes_the_fast_path(value: Any) -> None:
    data = cbor2.dumps(value, canonical=True)
    got = agrees(data)
    assert got is not None
    assert same(got, cbor2.loads(data))


@settings(max_examples=1500, deadline=None)
@given(containers, st.data())
def test_mutated_encodings_never_split_the_verdicts(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(cbor2.dumps(value, canonical=True))
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
        at = data.draw(st.integers(0, len(encoded)))
        byte = data.draw(st.integers(0, 255))
        if op == "flip" and at < len(encoded):
            encoded[at] = byte
        elif op == "insert":
            encoded.insert(at, byte)
        elif op == "delete" and at < len(encoded):
            del encoded[at]
        elif op == "truncate":
            del encoded[at:]
        elif op == "append":
            encoded.append(byte)
    agrees(bytes(encoded))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64).map(lambda b: b"\x82" + b))
def test_random_bytes_never_split_the_verdicts(data: bytes) -> None:
    agrees(data)


NON_CANONICAL = {
    "integer not in its shortest form": "81" "1805",
    "length not in its shortest form": "81" "5801" "61",
    "16-bit argument that fits in 8": "81" "1900ff",
    "32-bit argument that fits in 16": "81" "1a0000ffff",
    "64-bit argument that fits in 32": "81" "1b00000000ffffffff",
    "negative integer not in its shortest form": "81" "3817",
    "indefinite-length array": "9f" "01" "ff",
    "indefinite-length byte string inside": "81" "5f" "4161" "ff",
    "indefinite-length map": "bf" "6161" "01" "ff",
    "keys out of canonical order": "a2" "6162" "01" "6161" "02",
    "longer key before a shorter one": "a2" "626161" "01" "6162" "02",
    "repeated key": "a2" "6161" "01" "6161" "02",
    "trailing bytes": "81" "01" "00",
    "truncated": "82" "01",
    "declared length beyond the input": "9b" "ffffffffffffffff",
    "map declared longer than the input": "bb" "ffffffffffffffff",
    "reserved additional information": "81" "1c",
    "invalid UTF-8 in a text string": "81" "62" "c328",
}


@pytest.mark.parametrize("hex_data", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_or_malformed_input_is_left_to_the_reference(hex_data: str) -> None:
    data = bytes.fromhex(hex_data)
    assert fast(data) is None
    assert isinstance(reference(data), TxRejected)


OUTSIDE_THE_SUBSET = {
    "a float": [1.5],
    "a tag (bignum)": [2**70],
    "an integer map key": {1: "a"},
    "a byte-string map key": {b"k": 1},
    "a top-level integer": 5,
    "a top-level null": None,
}


@pytest.mark.parametrize("value", OUTSIDE_THE_SUBSET.values(), ids=OUTSIDE_THE_SUBSET.keys())
def test_canonical_values_outside_the_subset_fall_back_to_the_reference(value: Any) -> None:
    data = cbor2.dumps(value, canonical=True)
    assert fast(data) is None
    assert same(codec.decode_canonical(data), cbor2.loads(data))  # the reference decides


def test_nesting_deeper_than_max_depth_is_left_to_the_reference() -> None:
    def nested(depth: int) -> list[Any]:
        value: list[Any] = []
        for _ in range(depth - 1):
            value = [value]
        return value

    assert same(fast(cbor2.dumps(nested(16))), nested(16))
    deep = cbor2.dumps(nested(17))
    assert fast(deep) is None
    assert same(codec.decode_canonical(deep), nested(17))


def test_only_bytes_take_the_fast_path() -> None:
    data = cbor2.dumps([1, 2])
    assert codec.decode_canonical(bytearray(data)) == [1, 2]  # via the reference
    with pytest.raises(TypeError):
        fast(bytearray(data))


def test_bundles_decode_the_same_on_both_paths() -> None:
    raws = [bytes([i]) * (i + 1) for i in range(1, 40)]
    bundle = encode_bundle(raws)
    assert fast(bundle) == {"bundle": raws}
    assert decode_bundle(bundle) == raws
    # The same list in a non-canonical encoding (a 16-bit list length) is refused.
    body = cbor2.dumps(raws)
    assert body[0] == 0x98
    longer = bundle[:8] + b"\x99\x00" + body[1:]
    assert cbor2.loads(longer) == {"bundle": raws}
    with pytest.raises(TxRejected, match="canonical"):
        decode_bundle(longer)
