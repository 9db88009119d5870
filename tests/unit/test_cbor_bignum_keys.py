"""Bytes from strangers never make Python build a map of colliding keys (issue 13).

Python hashes an int modulo 2**61 - 1: bignum map keys that differ by multiples of it
all collide, and a map of n of them costs n**2 to build. `codec.loads_untrusted`, which
every decoder of a stranger's bytes goes through (a transaction, its body, a bundle, a
cosignature system transaction, a vote extension), refuses a bignum key before building
anything; everything else decodes as cbor2 decodes it."""

from __future__ import annotations

import time

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally import codec
from tally import tx as txmod
from tally.errors import Code, TallyError

M = (1 << 61) - 1
COLLIDING = {5 + i * M: 0 for i in range(1, 5000)}  # about 64 KiB of CBOR


def test_a_map_of_colliding_bignum_keys_is_refused_at_once() -> None:
    raw = cbor2.dumps(COLLIDING, canonical=True)
    started = time.process_time()
    with pytest.raises(ValueError, match="bignum"):
        codec.loads_untrusted(raw)
    assert time.process_time() - started < 0.05  # cbor2 alone: about 0.4 s here


@pytest.mark.parametrize("where", ["envelope", "body", "payload"])
def test_a_transaction_carrying_one_is_refused_malformed_before_its_signature(where: str
                                                                             ) -> None:
    body = {"chain": "c", "suite": "intl", "tier": 2, "signer": b"k" * 32, "nonce": 0,
            "expiry": 1, "kind": "contract.call",
            "payload": {"contract": "x", "method": "m", "args": [COLLIDING]}}
    if where == "envelope":
        raw = cbor2.dumps(COLLIDING)
    elif where == "body":
        raw = cbor2.dumps([cbor2.dumps(COLLIDING), b"s" * 64])
    else:
        raw = cbor2.dumps([cbor2.dumps(body, canonical=True), b"s" * 64])
    started = time.process_time()
    with pytest.raises(TallyError) as caught:
        txmod.decode(raw, max_size=1 << 20)
    assert caught.value.code == Code.MALFORMED
    assert time.process_time() - started < 0.05


scalars = st.one_of(st.integers(-(1 << 64) + 1, (1 << 64) - 1), st.integers(),
                    st.text(max_size=5), st.binary(max_size=5), st.booleans(), st.none())
keys = st.one_of(st.integers(-(1 << 64) + 1, (1 << 64) - 1), st.text(max_size=5),
                 st.binary(max_size=5))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@given(values)
def test_without_bignum_keys_it_decodes_as_cbor2_does(value) -> None:
    raw = cbor2.dumps(value, canonical=True)
    assert codec.loads_untrusted(raw) == cbor2.loads(raw)


@given(values, st.integers(1 << 64, 1 << 200))
def test_a_bignum_key_anywhere_is_found(value, big) -> None:
    raw = cbor2.dumps([value, {"k": [{big: 1}]}], canonical=True)
    with pytest.raises(ValueError):
        codec.loads_untrusted(raw)
