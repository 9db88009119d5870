"""Transactions: canonical encoding, and every way admission refuses bad input.

Each refusal must carry its own error code and change nothing: no block, no state, no
nonce consumed.
"""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally import codec
from tally import tx as txmod
from tally.errors import Code, TallyError
from tally.evidence.verify import TX_SIGNING_DOMAIN
from tests.support.chain import CHAIN, Chain

TRANSFER = "custody.transfer"


def snapshot(chain: Chain) -> tuple:
    node = chain.node
    return (node.ledger.height, node.ledger.state_root, node.ledger.log.size,
            node.status()["height"], node.engine.mempool_depth)


def refused(chain: Chain, raw: bytes) -> Code:
    before = snapshot(chain)
    with pytest.raises(TallyError) as info:
        chain.node.submit(raw)
    assert snapshot(chain) == before, "a refused transaction changed the node"
    return info.value.code


def transfer_payload(chain: Chain) -> dict:
    return {"asset": "BOND", "to": chain.addr("bob"), "quantity": 1}


def test_id_is_hash_of_body_and_signature_covers_domain(chain: Chain) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    tx = txmod.decode(raw, max_size=65536)
    assert tx.id == chain.suite.hash(tx.body)
    assert chain.suite.verify(tx.signer, txmod.SIGNING_DOMAIN + tx.body, tx.signature)
    assert not chain.suite.verify(tx.signer, tx.body, tx.signature)
    assert tx.sender == chain.addr("alice")
    assert txmod.SIGNING_DOMAIN == TX_SIGNING_DOMAIN  # the verifier's copy must agree


def test_encoding_is_deterministic_whatever_the_map_order(chain: Chain) -> None:
    payload = transfer_payload(chain)
    reordered = dict(reversed(list(payload.items())))
    body_a = txmod.encode_body(chain=CHAIN, suite=chain.suite_name, signer=b"k", nonce=1,
                               expiry=9, kind=TRANSFER, payload=payload)
    body_b = txmod.encode_body(chain=CHAIN, suite=chain.suite_name, signer=b"k", nonce=1,
                               expiry=9, kind=TRANSFER, payload=reordered)
    assert body_a == body_b


@pytest.mark.parametrize("raw", [b"", b"\xff", b"not cbor at all", cbor2.dumps(42),
                                 cbor2.dumps([b"x"]), cbor2.dumps([b"x", b"y", b"z"]),
                                 cbor2.dumps(["body", b"sig"]), cbor2.dumps({"a": 1})])
def test_malformed_bytes(chain: Chain, raw: bytes) -> None:
    assert refused(chain, raw) == Code.MALFORMED


def test_non_canonical_encoding_is_refused(chain: Chain) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    body, sig = cbor2.loads(raw)
    fields = cbor2.loads(body)
    # Same content, keys in a non-canonical order: a second encoding of the same meaning.
    items = sorted(fields.items(), reverse=True)
    noncanonical = b"\xa8" + b"".join(cbor2.dumps(k) + cbor2.dumps(v, canonical=True)
                                      for k, v in items)
    assert cbor2.loads(noncanonical) == fields
    assert refused(chain, cbor2.dumps([noncanonical, sig])) == Code.MALFORMED


@pytest.mark.parametrize("mutate", [
    lambda b: {**b, "nonce": -1},
    lambda b: {**b, "nonce": 1.5},
    lambda b: {**b, "nonce": 2**64},
    lambda b: {**b, "tier": 3},
    lambda b: {**b, "kind": "NoDots"},
    lambda b: {**b, "payload": [1, 2]},
    lambda b: {**b, "extra": 1},
    lambda b: {k: v for k, v in b.items() if k != "expiry"},
    lambda b: {**b, "signer": "text"},
])
def test_structurally_invalid_body(chain: Chain, mutate) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    body, _ = cbor2.loads(raw)
    bad_body = cbor2.dumps(mutate(cbor2.loads(body)), canonical=True)
    signature = chain.keys["alice"].key.sign(txmod.SIGNING_DOMAIN + bad_body)
    assert refused(chain, cbor2.dumps([bad_body, signature], canonical=True)) == Code.MALFORMED


def test_float_in_payload_is_refused(chain: Chain) -> None:
    with pytest.raises(ValueError):  # the client library will not even encode it
        chain.sign("alice", TRANSFER, {**transfer_payload(chain), "quantity": 1.0})
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain), nonce=0)
    body = cbor2.loads(cbor2.loads(raw)[0])
    body["payload"]["quantity"] = 1.0  # a hand-made transaction carrying a float
    bad_body = cbor2.dumps(body, canonical=True)
    signature = chain.keys["alice"].key.sign(txmod.SIGNING_DOMAIN + bad_body)
    assert refused(chain, cbor2.dumps([bad_body, signature], canonical=True)) == \
        Code.INVALID_PAYLOAD


def test_bad_signature(chain: Chain) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    body, sig = cbor2.loads(raw)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert refused(chain, cbor2.dumps([body, flipped], canonical=True)) == Code.BAD_SIGNATURE
    assert refused(chain, cbor2.dumps([body, b""], canonical=True)) == Code.BAD_SIGNATURE


def test_unsigned_and_foreign_signed(chain: Chain) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    body, _ = cbor2.loads(raw)
    foreign = chain.keys["bob"].key.sign(txmod.SIGNING_DOMAIN + body)  # Bob signs Alice's tx
    assert refused(chain, cbor2.dumps([body, foreign], canonical=True)) == Code.BAD_SIGNATURE


def test_wrong_chain(chain: Chain) -> None:
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain), chain="other-chain")
    assert refused(chain, raw) == Code.WRONG_CHAIN


def test_wrong_suite(chain: Chain) -> None:
    from tally.crypto import get_suite

    other = get_suite("gm" if chain.suite_name == "intl" else "intl").generate_private_key()
    raw = txmod.sign(other, chain=CHAIN, nonce=0, expiry=100, kind=TRANSFER,
                     payload=transfer_payload(chain))
    assert refused(chain, raw) == Code.WRONG_SUITE


def test_unknown_kind(chain: Chain) -> None:
    raw = chain.sign("alice", "custody.teleport", transfer_payload(chain))
    assert refused(chain, raw) == Code.UNKNOWN_KIND


def test_oversize(chain: Chain) -> None:
    limit = chain.genesis.params.max_tx_bytes
    raw = chain.sign("alice", "document.attest",
                     {"hash": b"\x00" * 32, "title": "x" * 150, "padding": b"\x00" * limit})
    assert len(raw) > limit
    assert refused(chain, raw) == Code.OVERSIZE


def test_replayed_and_skipped_nonce(chain: Chain) -> None:
    chain.issue("BOND", 100, to="alice")
    first = chain.sign("alice", TRANSFER, transfer_payload(chain), nonce=0)
    assert chain.node.submit_and_wait(first).ok
    # The same bytes again: the duplicate is refused at admission.
    assert refused(chain, first) == Code.NONCE_REPLAYED
    # A new transaction reusing nonce 0.
    again = chain.sign("alice", TRANSFER, {**transfer_payload(chain), "quantity": 2}, nonce=0)
    assert refused(chain, again) == Code.NONCE_REPLAYED
    skipped = chain.sign("alice", TRANSFER, transfer_payload(chain), nonce=5)
    assert refused(chain, skipped) == Code.NONCE_GAP
    assert chain.node.reader.account(chain.addr("alice"))["nonce"] == 1


def test_duplicate_while_waiting(chain: Chain) -> None:
    chain.node.engine.stop()  # hold blocks back so the first copy stays in the pool
    raw = chain.sign("alice", TRANSFER, transfer_payload(chain))
    chain.node.submit(raw)
    with pytest.raises(TallyError) as info:
        chain.node.submit(raw)
    assert info.value.code == Code.DUPLICATE


def test_expired_and_too_far_ahead(chain: Chain) -> None:
    chain.issue("BOND", 100, to="alice")
    height = chain.node.ledger.height
    expired = chain.sign("alice", TRANSFER, transfer_payload(chain), nonce=0, expiry=height)
    assert refused(chain, expired) == Code.EXPIRED
    window = chain.genesis.params.max_expiry_window
    far = chain.sign("alice", TRANSFER, transfer_payload(chain), nonce=0,
                     expiry=height + 2 + window)
    assert refused(chain, far) == Code.EXPIRED


def test_error_codes_are_distinct() -> None:
    admission = [Code.MALFORMED, Code.OVERSIZE, Code.BAD_SIGNATURE, Code.WRONG_CHAIN,
                 Code.NONCE_REPLAYED, Code.NONCE_GAP, Code.EXPIRED, Code.UNKNOWN_KIND]
    assert len(set(admission)) == len(admission)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_random_bytes_never_crash_admission(intl_chain: Chain, data: bytes) -> None:
    before = snapshot(intl_chain)
    with pytest.raises(TallyError):
        intl_chain.node.submit(data)
    assert snapshot(intl_chain) == before


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255))
def test_any_byte_change_of_a_signed_tx_is_refused(intl_chain: Chain, position: int,
                                                   value: int) -> None:
    raw = bytearray(intl_chain.sign("alice", TRANSFER, transfer_payload(intl_chain), nonce=0))
    raw[position % len(raw)] ^= value
    before = snapshot(intl_chain)
    with pytest.raises(TallyError):
        intl_chain.node.submit(bytes(raw))
    assert snapshot(intl_chain) == before


def test_codec_refuses_floats_and_foreign_types() -> None:
    with pytest.raises(ValueError):
        codec.encode({"a": 1.5})
    with pytest.raises(ValueError):
        codec.encode({"a": {1, 2}})
    assert codec.decode(codec.encode({"b": 1, "a": [b"x", None, True]})) == {
        "a": [b"x", None, True], "b": 1}


_KEYS = st.text(max_size=6) | st.integers(-2, 30) | st.binary(max_size=3)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary(max_size=8)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_fast_canonical_encoding_equals_cbor2_canonical(value) -> None:
    """Decoding checks canonicity with a fast path, which remembers its verdict on each
    map's keys; both the first and the remembered verdict must agree with RFC 8949
    §4.2.1."""
    expected = cbor2.dumps(value, canonical=True)
    assert codec.canonical_bytes(value) == expected
    assert codec.canonical_bytes(value) == expected
