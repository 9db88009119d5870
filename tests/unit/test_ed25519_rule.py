"""The chain's Ed25519 rule (decision 0013): ZIP 215, minus small-order public keys, with
batch verification that answers exactly as verifying one by one.

What a user relies on: every signature libsodium accepted is still accepted (no past
block becomes invalid); the edge cases of "Taming the many EdDSAs" get the verdicts the
rule says; and no input makes a batch and a one-by-one verifier disagree, since that
would let two validators disagree about a block.
"""

from __future__ import annotations

import json
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing
import pytest
import tally_ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.crypto import get_suite

INTL = get_suite("intl")
VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "ed25519_speccheck.json").read_text())
P = 2**255 - 19
# The seven y values of the eight small-order points' encodings (the order-8 pair are
# speccheck's case-0 key without its sign bit, and p minus it).
ORDER_8_Y = int.from_bytes(bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "little")
SMALL_ORDER_Y = [0, 1, ORDER_8_Y, P - ORDER_8_Y, P - 1, P, P + 1]
SMALL_ORDER_KEYS = [(y | sign << 255).to_bytes(32, "little")
                    for y in SMALL_ORDER_Y for sign in (0, 1)]
IDENTITY = (1).to_bytes(32, "little")


def _case(case: dict) -> tuple[bytes, bytes, bytes]:
    return (bytes.fromhex(case["public_key"]), bytes.fromhex(case["message"]),
            bytes.fromhex(case["signature"]))


def _libsodium(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError):
        return False
    return True


def _signed(count: int, seed: int = 0) -> list[tuple[bytes, bytes, bytes]]:
    items = []
    for i in range(count):
        key = nacl.signing.SigningKey(((seed * 1000 + i) % 2**64).to_bytes(32, "little"))
        message = f"transfer {seed}/{i}".encode()
        items.append((bytes(key.verify_key), message, key.sign(message).signature))
    return items


# --- the edge cases ----------------------------------------------------------------------

@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"case{c['case']}")
def test_speccheck_verdicts(case: dict) -> None:
    key, message, signature = _case(case)
    expected = case["zip215"] and not tally_ed25519.is_small_order_point(key)
    assert INTL.verify(key, message, signature) is expected
    # What the table says of libsodium, on the PyNaCl this machine has.
    assert _libsodium(key, message, signature) is case["libsodium"]
    # libsodium's accepted set is inside Tally's: nothing accepted before is refused now.
    assert not case["libsodium"] or expected


def test_speccheck_tally_column() -> None:
    """The rule in one line: ZIP 215's verdicts, except the four small-order keys."""
    verdicts = "".join("V" if INTL.verify(*_case(c)) else "X" for c in VECTORS["cases"])
    assert verdicts == "XXVVVVXXXVXX"


def test_speccheck_cases_in_batches_get_their_single_verdicts() -> None:
    cases = [_case(c) for c in VECTORS["cases"]]
    singles = [INTL.verify(*c) for c in cases]
    assert INTL.verify_many(cases) == singles
    for case, single in zip(cases, singles, strict=True):
        # Alone among valid signatures, each edge case keeps its verdict and spoils none.
        items = _signed(20)
        items.insert(7, case)
        assert INTL.verify_many(items) == [True] * 7 + [single] + [True] * 13


# --- small-order keys --------------------------------------------------------------------

def test_small_order_keys_are_the_fourteen_encodings() -> None:
    for key in SMALL_ORDER_KEYS:
        assert tally_ed25519.is_small_order(key)
        assert tally_ed25519.is_small_order_point(key)
    assert len(set(SMALL_ORDER_KEYS)) == 14
    # No other encoding with a small y, or a small distance below p, is of small order.
    for y in range(64):
        for value in {y, P - y, P + y if P + y < 2**255 else y}:
            for sign in (0, 1):
                key = (value | sign << 255).to_bytes(32, "little")
                assert tally_ed25519.is_small_order(key) == tally_ed25519.is_small_order_point(key)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=32, max_size=32))
def test_small_order_table_agrees_with_decompressing(key: bytes) -> None:
    assert tally_ed25519.is_small_order(key) == tally_ed25519.is_small_order_point(key)


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS, ids=lambda k: k.hex()[:6] + k.hex()[-2:])
def test_universal_forgery_with_a_small_order_key_is_refused(key: bytes) -> None:
    """R = identity, s = 0 satisfies ZIP 215's equation for a small-order key and any
    message; Tally refuses it singly and in a batch."""
    forged = IDENTITY + bytes(32)
    assert INTL.verify(key, b"pay the attacker", forged) is False
    items = _signed(10)
    items.append((key, b"pay the attacker", forged))
    assert INTL.verify_many(items) == [True] * 10 + [False]


# --- batches answer as singles do --------------------------------------------------------

def _spoil(item: tuple[bytes, bytes, bytes], how: int, at: int) -> tuple[bytes, bytes, bytes]:
    key, message, signature = item
    if how == 0:
        return item
    if how == 1:
        return key, message + b"!", signature
    if how == 2:
        spoiled = bytearray(signature)
        spoiled[at % 64] ^= 1 << (at % 8)
        return key, message, bytes(spoiled)
    if how == 3:
        spoiled = bytearray(key)
        spoiled[at % 32] ^= 1 << (at % 8)
        return bytes(spoiled), message, signature
    if how == 4:
        return key, message, signature[:32] + (P + 19 + at).to_bytes(32, "little")[:32]  # s ≥ L
    if how == 5:
        return SMALL_ORDER_KEYS[at % 14], message, IDENTITY + bytes(32)
    return key, message, signature[:63]  # wrong length


@settings(max_examples=60, deadline=None)
@given(spoils=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 10_000)),
                       min_size=1, max_size=40))
def test_batch_verdicts_equal_single_verdicts(spoils: list[tuple[int, int]]) -> None:
    items = [_spoil(item, how, at)
             for item, (how, at) in zip(_signed(len(spoils), seed=len(spoils)), spoils,
                                        strict=True)]
    singles = [INTL.verify(*item) for item in items]
    assert INTL.verify_many(items) == singles
    # Every unspoiled signature verifies; a spoiled one may not (a flipped key bit can
    # still give a valid point, but never one that verifies this signature).
    assert all(single for single, (how, _at) in zip(singles, spoils, strict=True) if how == 0)
    assert not any(single for single, (how, _at) in zip(singles, spoils, strict=True) if how)


@settings(max_examples=100, deadline=None)
@given(message=st.binary(max_size=300), tamper=st.integers(0, 64 * 8 - 1))
def test_every_libsodium_signature_verifies_and_tampering_fails_in_both(
        message: bytes, tamper: int) -> None:
    key = nacl.signing.SigningKey(b"k" * 32)
    public = bytes(key.verify_key)
    signature = key.sign(message).signature
    assert INTL.verify(public, message, signature) and _libsodium(public, message, signature)
    spoiled = bytearray(signature)
    spoiled[tamper // 8] ^= 1 << (tamper % 8)
    assert INTL.verify(public, message, bytes(spoiled)) is False
    assert _libsodium(public, message, bytes(spoiled)) is False


def test_one_bad_signature_in_a_large_batch_is_found() -> None:
    items = _signed(250)
    key, message, signature = items[123]
    items[123] = (key, message + b"x", signature)
    assert INTL.verify_many(items) == [True] * 123 + [False] + [True] * 126


def test_the_same_batch_gets_the_same_verdicts_from_a_fresh_process() -> None:
    """Verdicts never depend on the process: another one verifying the same mixed batch
    (with its own hash-map order, hence its own pairing of coefficients and signatures)
    answers the same, item by item."""
    import subprocess
    import sys

    items = _signed(30)
    items[4] = (items[4][0], b"changed", items[4][2])
    script = ("import sys, json, tally_ed25519 as e; items = [tuple(bytes.fromhex(p) for p in i) "
              "for i in json.load(sys.stdin)]; print(json.dumps(e.verify_batch(items)))")
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, input=json.dumps([[p.hex() for p in i] for i in items]))
    assert json.loads(out.stdout) == INTL.verify_many(items) == [i != 4 for i in range(30)]


# --- inputs that are not bytes -----------------------------------------------------------

def test_non_bytes_inputs_are_invalid_not_errors() -> None:
    (key, message, signature), = _signed(1)
    assert INTL.verify(bytearray(key), memoryview(message), bytearray(signature)) is True
    for bad in (None, "text", 32, [1, 2]):
        assert INTL.verify(bad, message, signature) is False  # type: ignore[arg-type]
        assert INTL.verify(key, bad, signature) is False  # type: ignore[arg-type]
    mixed = [(key, message, signature), (None, message, signature),
             (bytearray(key), message, signature), (key, message), (key, message, 7)]
    assert INTL.verify_many(mixed) == [True, False, True, False, False]  # type: ignore[arg-type]
    assert INTL.verify_many([]) == []


def test_gm_suite_verify_many_is_its_verify() -> None:
    gm = get_suite("gm")
    key = gm.generate_private_key()
    items = [(key.public_key, b"m%d" % i, key.sign(b"m%d" % i)) for i in range(3)]
    items[1] = (key.public_key, b"other", items[1][2])
    assert gm.verify_many(items) == [True, False, True]
