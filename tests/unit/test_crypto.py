"""The suite contract, checked for both suites: what code above the crypto layer relies on.

Suite-specific vectors live in test_crypto_gm.py; cross-implementation checks in
test_crypto_interop.py.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.crypto import SUITE_NAMES, PrivateKey, Suite, get_suite

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

# Sizes per suite: (public key, signature).
SIZES = {"intl": (32, 64), "gm": (65, 64)}


@pytest.fixture(params=SUITE_NAMES)
def suite(request: pytest.FixtureRequest) -> Suite:
    return get_suite(request.param)


def test_get_suite_returns_one_instance_per_name_and_rejects_unknown_names() -> None:
    assert get_suite("gm") is get_suite("gm")
    assert get_suite("intl").name == "intl"
    with pytest.raises(ValueError, match="unknown crypto suite"):
        get_suite("rsa")


def test_suite_metadata() -> None:
    intl, gm = get_suite("intl"), get_suite("gm")
    assert (intl.hash_name, intl.signature_name, intl.note_signature_type) == (
        "sha256",
        "ed25519",
        0x01,
    )
    assert (gm.hash_name, gm.signature_name, gm.note_signature_type) == ("sm3", "sm2-sm3", 0xFF)


def test_hash_is_the_named_algorithm(suite: Suite) -> None:
    data = b"tally" * 40
    assert suite.hash(data) == hashlib.new(suite.hash_name, data).digest()
    assert len(suite.hash(b"")) == suite.hash_size == 32


# --- RFC 8032 --------------------------------------------------------------------------


def test_ed25519_rfc8032_test_1() -> None:
    intl = get_suite("intl")
    key = intl.load_private_key(RFC8032_SECRET)
    assert key.public_key == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE  # Ed25519 is deterministic
    assert intl.verify(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)


def test_ed25519_rfc8032_tampering_is_rejected() -> None:
    intl = get_suite("intl")
    bad_signature = bytearray(RFC8032_SIGNATURE)
    bad_signature[10] ^= 0x01
    bad_key = bytearray(RFC8032_PUBLIC)
    bad_key[0] ^= 0x01
    assert not intl.verify(RFC8032_PUBLIC, b"\x00", RFC8032_SIGNATURE)
    assert not intl.verify(RFC8032_PUBLIC, b"", bytes(bad_signature))
    assert not intl.verify(bytes(bad_key), b"", RFC8032_SIGNATURE)


# --- sign, verify, keys ----------------------------------------------------------------


def test_sign_verify_and_sizes(suite: Suite) -> None:
    key = suite.generate_private_key()
    public_size, signature_size = SIZES[suite.name]
    signature = key.sign(b"transfer 10 to bob")
    assert len(key.public_key) == public_size
    assert len(signature) == signature_size
    assert key.suite is suite
    assert suite.verify(key.public_key, b"transfer 10 to bob", signature)


def test_tampered_message_signature_or_key_is_rejected(suite: Suite) -> None:
    key = suite.generate_private_key()
    other = suite.generate_private_key()
    message = b"transfer 10 to bob"
    signature = key.sign(message)
    for index in (0, len(signature) // 2, len(signature) - 1):
        damaged = bytearray(signature)
        damaged[index] ^= 0x80
        assert not suite.verify(key.public_key, message, bytes(damaged))
    assert not suite.verify(key.public_key, b"transfer 99 to bob", signature)
    assert not suite.verify(key.public_key, message + b"\x00", signature)
    assert not suite.verify(other.public_key, message, signature)


def test_private_key_round_trip(suite: Suite) -> None:
    key = suite.generate_private_key()
    raw = key.to_bytes()
    assert len(raw) == 32
    again = suite.load_private_key(raw)
    assert again.public_key == key.public_key
    assert suite.verify(key.public_key, b"m", again.sign(b"m"))


def test_generated_keys_differ(suite: Suite) -> None:
    assert suite.generate_private_key().to_bytes() != suite.generate_private_key().to_bytes()


def test_load_private_key_rejects_wrong_lengths(suite: Suite) -> None:
    for raw in (b"", b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(ValueError):
            suite.load_private_key(raw)


def test_address_is_the_suite_hash_of_the_public_key(suite: Suite) -> None:
    key = suite.generate_private_key()
    expected = hashlib.new(suite.hash_name, key.public_key).digest()[:20].hex()
    assert suite.address(key.public_key) == expected
    assert len(expected) == 40


def test_rfc8032_public_key_address() -> None:
    assert (
        get_suite("intl").address(RFC8032_PUBLIC)
        == (hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:40])
    )


def test_keys_and_signatures_do_not_cross_suites() -> None:
    intl, gm = get_suite("intl"), get_suite("gm")
    raw = bytes(range(1, 33))  # a valid Ed25519 seed and a valid SM2 scalar
    ed_key, sm2_key = intl.load_private_key(raw), gm.load_private_key(raw)
    message = b"same message"
    ed_signature, sm2_signature = ed_key.sign(message), sm2_key.sign(message)
    assert not gm.verify(sm2_key.public_key, message, ed_signature)
    assert not intl.verify(ed_key.public_key, message, sm2_signature)
    assert not gm.verify(ed_key.public_key, message, ed_signature)
    assert not intl.verify(sm2_key.public_key, message, sm2_signature)
    assert not intl.verify(sm2_key.public_key[1:33], message, sm2_signature)
    assert intl.address(ed_key.public_key) != gm.address(ed_key.public_key)


# --- verify never raises ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(SUITE_NAMES),
    public_key=st.binary(max_size=80),
    message=st.binary(max_size=64),
    signature=st.binary(max_size=80),
)
def test_verify_returns_a_bool_on_arbitrary_bytes(
    name: str, public_key: bytes, message: bytes, signature: bytes
) -> None:
    assert isinstance(get_suite(name).verify(public_key, message, signature), bool)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(SUITE_NAMES), data=st.data())
def test_verify_returns_false_for_right_sized_garbage(name: str, data: st.DataObject) -> None:
    # Right-sized inputs get past the length checks into the library itself.
    suite = get_suite(name)
    public_size, signature_size = SIZES[name]
    prefix = b"\x04" if name == "gm" else b""
    public_key = prefix + data.draw(
        st.binary(min_size=public_size - len(prefix), max_size=public_size - len(prefix))
    )
    signature = data.draw(st.binary(min_size=signature_size, max_size=signature_size))
    assert suite.verify(public_key, b"message", signature) is False


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(SUITE_NAMES), signature=st.binary(min_size=64, max_size=64))
def test_random_signature_under_a_real_key_is_rejected(name: str, signature: bytes) -> None:
    suite = get_suite(name)
    key = _fixed_key(name)
    assert suite.verify(key.public_key, b"message", signature) is False


@cache
def _fixed_key(name: str) -> PrivateKey:
    return get_suite(name).load_private_key(bytes(range(7, 39)))
