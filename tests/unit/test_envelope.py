"""Private-data envelopes (tally.privacy.envelope, decision 0030), SM2 encryption and SM4
against the ``openssl`` command line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally import codec
from tally.crypto import get_suite, sm2, sm2_pke, sm4
from tally.errors import TallyError
from tally.privacy import (
    EnvelopeContext,
    EnvelopeError,
    check_private_disclosure,
    commit_private,
    erase,
    erased_recipients,
    generate_encryption_key,
    key_id,
    load_encryption_key,
    open_envelope,
    open_private,
    recipients_of,
    seal,
    seal_private,
)
from tally.privacy import envelope as env

SUITES = ("intl", "gm")
CTX = EnvelopeContext("tally-test-chain", "asset.transfer/memo")
FIELD = bytes(range(256))
# Keys are costly for gm (libcrypto key pairs): make a few once.
KEYS = {name: [generate_encryption_key(name) for _ in range(4)] for name in SUITES}


def publics(name: str, count: int) -> list[bytes]:
    return [key.public_key for key in KEYS[name][:count]]


def refused(reason: str, call, *args, **kwargs) -> EnvelopeError:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value
    assert isinstance(info.value, TallyError)
    return info.value


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("count", [1, 2, 4])
def test_round_trip_for_every_recipient(name: str, count: int) -> None:
    sealed = seal(name, FIELD, publics(name, count), CTX)
    assert sorted(recipients_of(sealed)) == sorted(k.key_id for k in KEYS[name][:count])
    for key in KEYS[name][:count]:
        assert open_envelope(name, sealed, key, CTX) == FIELD
    for key in KEYS[name][count:]:
        refused("not_a_recipient", open_envelope, name, sealed, key, CTX)


@pytest.mark.parametrize("name", SUITES)
def test_empty_and_largest_payloads(name: str) -> None:
    key = KEYS[name][0]
    for payload in (b"", bytes(env.MAX_PAYLOAD)):
        sealed = seal(name, payload, [key.public_key], CTX)
        assert len(sealed) <= env.MAX_ENVELOPE
        assert open_envelope(name, sealed, key, CTX) == payload
    refused("oversized", seal, name, bytes(env.MAX_PAYLOAD + 1), [key.public_key], CTX)


@pytest.mark.parametrize("name", SUITES)
def test_layout_is_canonical_cbor_with_fixed_wrap_sizes(name: str) -> None:
    sealed = seal(name, FIELD, publics(name, 2), CTX)
    value = codec.decode_canonical(sealed)
    assert value["v"] == 1 and value["suite"] == name
    assert len(value["ct"]) == 12 + 32 + len(FIELD) + 16
    assert [len(w) for w in value["wraps"]] == [80 if name == "intl" else 113] * 2
    assert [kid for kid, _ in value["to"]] == sorted(kid for kid, _ in value["to"])
    assert seal(name, FIELD, publics(name, 2), CTX) != sealed  # fresh keys and nonces


@pytest.mark.parametrize("name", SUITES)
def test_keys_serialise_and_key_ids_name_public_keys(name: str) -> None:
    key = KEYS[name][0]
    again = load_encryption_key(name, key.to_bytes())
    assert again.public_key == key.public_key and again.key_id == key.key_id
    assert key.key_id == key_id(name, key.public_key)
    assert key.key_id == get_suite(name).hash(b"tally/encryption-key/v1\x00" + key.public_key)
    assert len(key.public_key) == (32 if name == "intl" else 65)
    refused("bad_key", load_encryption_key, name, b"short")
    if name == "gm":
        refused("bad_key", load_encryption_key, name, bytes(32))  # scalar 0


def test_suites_do_not_mix() -> None:
    sealed = seal("intl", FIELD, publics("intl", 1), CTX)
    refused("wrong_suite", open_envelope, "gm", sealed, KEYS["gm"][0], CTX)
    refused("bad_key", open_envelope, "intl", sealed, KEYS["gm"][0], CTX)
    refused("bad_recipient_key", seal, "gm", FIELD, publics("intl", 1), CTX)
    refused("wrong_suite", seal, "rsa", FIELD, publics("intl", 1), CTX)


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITES)
def test_wrong_context_is_refused(name: str) -> None:
    sealed = seal(name, FIELD, publics(name, 1), CTX)
    key = KEYS[name][0]
    for other in (EnvelopeContext("other-chain", CTX.label),
                  EnvelopeContext(CTX.chain_id, "asset.transfer/amount")):
        refused("authentication_failed", open_envelope, name, sealed, key, other)
    refused("bad_context", open_envelope, name, sealed, key, "asset.transfer/memo")
    refused("bad_context", seal, name, FIELD, publics(name, 1), EnvelopeContext("", "x"))
    refused("bad_context", seal, name, FIELD, publics(name, 1),
            EnvelopeContext("c", "x" * (env.MAX_CONTEXT + 1)))


@pytest.mark.parametrize("name", SUITES)
def test_seal_refuses_bad_recipients_and_salts(name: str) -> None:
    refused("no_recipients", seal, name, FIELD, [], CTX)
    refused("duplicate_recipient", seal, name, FIELD, publics(name, 1) * 2, CTX)
    refused("too_many_recipients", seal, name, FIELD,
            [b"\x01" * 32] * (env.MAX_RECIPIENTS + 1), CTX)
    refused("bad_recipient_key", seal, name, FIELD, [b"\x01" * 7], CTX)
    refused("bad_salt", seal, name, FIELD, publics(name, 1), CTX, salt=b"short")
    refused("bad_payload", seal, name, "text", publics(name, 1), CTX)
    if name == "intl":  # a low-order X25519 point gives an all-zero secret
        refused("bad_recipient_key", seal, name, FIELD, [bytes(32)], CTX)
    else:  # not on the curve
        refused("bad_recipient_key", seal, name, FIELD, [b"\x04" + bytes(64)], CTX)


@pytest.mark.parametrize("name", SUITES)
def test_malformed_truncated_and_oversized_envelopes(name: str) -> None:
    sealed = seal(name, FIELD, publics(name, 2), CTX)
    key = KEYS[name][0]
    for cut in (0, 1, 10, len(sealed) // 2, len(sealed) - 1):
        refused("malformed", open_envelope, name, sealed[:cut], key, CTX)
    refused("malformed", open_envelope, name, sealed + b"\x00", key, CTX)
    refused("oversized", open_envelope, name, bytes(env.MAX_ENVELOPE + 1), key, CTX)
    refused("malformed", recipients_of, "not bytes")
    value = codec.decode_canonical(sealed)

    def variant(**changes: object) -> bytes:
        return codec.encode({**value, **changes})

    refused("unsupported_version", open_envelope, name, variant(v=2), key, CTX)
    refused("wrong_suite", open_envelope, name, variant(suite="rsa"), key, CTX)
    refused("malformed", open_envelope, name, codec.encode({**value, "extra": 1}), key, CTX)
    refused("malformed", open_envelope, name, variant(to=value["to"][::-1],
                                                     wraps=value["wraps"][::-1]), key, CTX)
    refused("malformed", open_envelope, name, variant(wraps=value["wraps"][:1]), key, CTX)
    refused("malformed", open_envelope, name, variant(ct=b"short"), key, CTX)
    refused("malformed", open_envelope, name, variant(kc=b"x"), key, CTX)
    refused("too_many_recipients", open_envelope, name, variant(to=[], wraps=[]), key, CTX)
    # a wrap moved to another recipient's slot no longer matches that slot's digest
    refused("wrap_mismatch", open_envelope, name, variant(wraps=value["wraps"][::-1]), key, CTX)
    # not canonical: the same map with its keys out of order
    import cbor2

    refused("malformed", open_envelope, name, cbor2.dumps(dict(reversed(value.items()))),
            key, CTX)


@pytest.mark.parametrize("name", SUITES)
def test_a_wrap_from_another_envelope_does_not_open(name: str) -> None:
    key = KEYS[name][0]
    first = codec.decode_canonical(seal(name, FIELD, [key.public_key], CTX))
    second = codec.decode_canonical(seal(name, b"other", [key.public_key], CTX))
    spliced = codec.encode({**first, "to": second["to"], "wraps": second["wraps"]})
    refused("key_commitment_mismatch", open_envelope, name, spliced, key, CTX)
    spliced = codec.encode({**first, "to": second["to"], "wraps": second["wraps"],
                            "kc": second["kc"]})
    refused("authentication_failed", open_envelope, name, spliced, key, CTX)


SEALED = {name: seal(name, FIELD, publics(name, 2), CTX) for name in SUITES}


@pytest.mark.parametrize("name", SUITES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_flipping_any_byte_is_refused(name: str, data: st.DataObject) -> None:
    sealed = SEALED[name]
    index = data.draw(st.integers(0, len(sealed) - 1))
    mask = data.draw(st.integers(1, 255))
    damaged = bytearray(sealed)
    damaged[index] ^= mask
    for key in KEYS[name][:2]:
        with pytest.raises(EnvelopeError):
            open_envelope(name, bytes(damaged), key, CTX)


@pytest.mark.parametrize("name", SUITES)
def test_flipping_every_byte_is_refused(name: str) -> None:
    sealed = SEALED[name]
    key = KEYS[name][1]
    reasons = set()
    for index in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[index] ^= 0x01
        with pytest.raises(EnvelopeError) as info:
            open_envelope(name, bytes(damaged), key, CTX)
        reasons.add(info.value.reason)
    assert {"malformed", "wrap_mismatch", "authentication_failed"} <= reasons


# --- erasure ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITES)
def test_erasure_removes_one_recipient_and_keeps_the_rest(name: str) -> None:
    keys = KEYS[name][:3]
    sealed = seal_private(name, FIELD, [k.public_key for k in keys], CTX)
    erased = erase(sealed.envelope, keys[0].key_id)
    refused("erased", open_envelope, name, erased, keys[0], CTX)
    for key in keys[1:]:
        opened = open_private(name, erased, key, CTX)
        assert opened.payload == FIELD and opened.salt == sealed.salt
    assert sorted(recipients_of(erased)) == sorted(k.key_id for k in keys[1:])
    assert erased_recipients(erased) == [keys[0].key_id]
    assert erase(erased, keys[0].key_id) == erased  # idempotent
    refused("not_a_recipient", erase, erased, KEYS[name][3].key_id)
    everyone = erased
    for key in keys[1:]:
        everyone = erase(everyone, key.key_id)
    assert recipients_of(everyone) == []
    for key in keys:
        refused("erased", open_envelope, name, everyone, key, CTX)
    # erasure never touches the commitment: the disclosure still checks
    check_private_disclosure(get_suite(name), sealed.commitment, FIELD, sealed.salt)
    # restoring an erased wrap is only possible with the original bytes
    value = codec.decode_canonical(erased)
    value["wraps"][[kid for kid, _ in value["to"]].index(keys[0].key_id)] = bytes(
        len(codec.decode_canonical(sealed.envelope)["wraps"][0]))
    refused("wrap_mismatch", open_envelope, name, codec.encode(value), keys[0], CTX)


# --- commitments and disclosure --------------------------------------------------------


@pytest.mark.parametrize("name", SUITES)
def test_commitment_and_disclosure(name: str) -> None:
    suite = get_suite(name)
    sealed = seal_private(name, FIELD, publics(name, 2), CTX)
    opened = open_private(name, sealed.envelope, KEYS[name][1], CTX)
    assert sealed.commitment == commit_private(suite, opened.payload, opened.salt)
    assert sealed.commitment == suite.hash(
        codec.encode({"v": 1, "private": FIELD, "salt": sealed.salt}))
    check_private_disclosure(suite, sealed.commitment, opened.payload, opened.salt)
    refused("disclosure_mismatch", check_private_disclosure, suite, sealed.commitment,
            FIELD[:-1], opened.salt)
    refused("disclosure_mismatch", check_private_disclosure, suite, sealed.commitment,
            FIELD, bytes(32))
    refused("bad_salt", commit_private, suite, FIELD, b"short")
    # the salt hides a guessable payload: two seals of one payload commit differently
    assert seal_private(name, FIELD, publics(name, 1), CTX).commitment != sealed.commitment
    # a caller-chosen salt is the one inside the envelope
    salt = bytes(range(32))
    envelope = seal(name, FIELD, publics(name, 1), CTX, salt=salt)
    assert open_private(name, envelope, KEYS[name][0], CTX).salt == salt


# --- SM2 encryption against the openssl command line -----------------------------------

openssl_cli = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True,
                          timeout=30).stdout


def _openssl_sm2_key(tmp_path: Path) -> tuple[Path, Path, bytes, bytes]:
    key_pem, pub_pem = tmp_path / "key.pem", tmp_path / "pub.pem"
    _openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem))
    _openssl("pkey", "-in", str(key_pem), "-pubout", "-out", str(pub_pem))
    text = _openssl("pkey", "-in", str(key_pem), "-text", "-noout").decode()
    match = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)pub:", text)
    assert match, text
    scalar = int(re.sub(r"[^0-9a-f]", "", match.group(1)), 16).to_bytes(32, "big")
    spki = _openssl("pkey", "-pubin", "-in", str(pub_pem), "-outform", "DER")
    return key_pem, pub_pem, scalar, spki[-65:]


@openssl_cli
def test_sm2_encryption_interoperates_with_openssl(tmp_path: Path) -> None:
    key_pem, pub_pem, scalar, point = _openssl_sm2_key(tmp_path)
    tally_key = sm2_pke.DecryptionKey(scalar)
    assert tally_key.public_key == point
    for message in (b"k" * 16, bytes(range(32)), b"x"):
        # Tally encrypts, openssl decrypts
        ciphertext = sm2_pke.encrypt(point, message)
        assert len(ciphertext) == 97 + len(message)
        (tmp_path / "ct.der").write_bytes(sm2_pke.to_der(ciphertext))
        assert _openssl("pkeyutl", "-decrypt", "-inkey", str(key_pem),
                        "-in", str(tmp_path / "ct.der")) == message
        # openssl encrypts, Tally decrypts
        (tmp_path / "msg.bin").write_bytes(message)
        der = _openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(pub_pem),
                       "-in", str(tmp_path / "msg.bin"))
        raw = sm2_pke.from_der(der)
        assert sm2_pke.to_der(raw) == der  # one encoding each way
        assert tally_key.decrypt(raw) == message


@openssl_cli
def test_gm_envelope_wrap_opens_with_openssl(tmp_path: Path) -> None:
    """An openssl-made SM2 key is an envelope recipient; openssl recovers the data key
    from its wrap, and that key opens the SM4-GCM ciphertext."""
    key_pem, _, scalar, point = _openssl_sm2_key(tmp_path)
    recipient = load_encryption_key("gm", scalar)
    assert recipient.public_key == point
    sealed = seal("gm", FIELD, [point], CTX)
    assert open_envelope("gm", sealed, recipient, CTX) == FIELD
    value = codec.decode_canonical(sealed)
    (tmp_path / "wrap.der").write_bytes(sm2_pke.to_der(value["wraps"][0]))
    data_key = _openssl("pkeyutl", "-decrypt", "-inkey", str(key_pem),
                        "-in", str(tmp_path / "wrap.der"))
    ad = CTX.associated_data("gm", value["kc"], value["to"])
    assert sm4.sm4_decrypt(data_key, value["ct"], ad)[32:] == FIELD


def test_sm2_decryption_refuses_bad_ciphertexts() -> None:
    key = sm2_pke.DecryptionKey(sm2.generate_private_scalar())
    ciphertext = sm2_pke.encrypt(key.public_key, b"0123456789abcdef")
    for index in (0, 1, 64, 65, 96, 97, len(ciphertext) - 1):
        damaged = bytearray(ciphertext)
        damaged[index] ^= 0x01
        with pytest.raises(sm2_pke.DecryptionError):
            key.decrypt(bytes(damaged))
    for bad in (b"", ciphertext[:97], ciphertext[:-1], b"\x04" + bytes(112)):
        with pytest.raises(sm2_pke.DecryptionError):
            key.decrypt(bad)
    other = sm2_pke.DecryptionKey(sm2.generate_private_scalar())
    with pytest.raises(sm2_pke.DecryptionError):
        other.decrypt(ciphertext)
    with pytest.raises(ValueError):
        sm2_pke.encrypt(b"\x04" + bytes(64), b"x")
    with pytest.raises(ValueError):
        sm2_pke.from_der(sm2_pke.to_der(ciphertext) + b"\x00")


# --- SM4 against the openssl command line ----------------------------------------------
# GB/T 32907's block example and RFC 8998's SM4-GCM vector are in test_crypto_gm.py;
# these tie the same cipher to an independent implementation.


@openssl_cli
def test_sm4_blocks_match_openssl_sm4_ecb() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    blocks = [key, bytes(16), bytes(range(16)), b"\xff" * 16]
    ours = b"".join(sm4.sm4_encrypt_block(key, block) for block in blocks)
    theirs = _openssl("enc", "-sm4-ecb", "-K", key.hex(), "-nopad", data=b"".join(blocks))
    assert ours == theirs


@openssl_cli
def test_sm4_gcm_encryption_is_openssl_sm4_ctr_from_counter_two() -> None:
    """GCM encrypts with CTR from ``nonce || 00000002`` (SP 800-38D §7.1): Tally's SM4-GCM
    ciphertext must equal openssl's SM4-CTR of the same plaintext and counter."""
    key = bytes(range(16, 32))
    nonce = bytes(range(12))
    plaintext = bytes(range(256)) + b"tail of a partial block"
    sealed = sm4._seal(key, nonce, plaintext, b"associated")
    theirs = _openssl("enc", "-sm4-ctr", "-K", key.hex(), "-iv", (nonce + b"\0\0\0\2").hex(),
                      data=plaintext)
    assert sealed[: -sm4.TAG_SIZE] == theirs
    # and the CTR keystream itself is Tally's block cipher on successive counters
    stream = b"".join(sm4.sm4_encrypt_block(key, nonce + (2 + i).to_bytes(4, "big"))
                      for i in range(3))
    assert _openssl("enc", "-sm4-ctr", "-K", key.hex(), "-iv", (nonce + b"\0\0\0\2").hex(),
                    data=bytes(48)) == stream
