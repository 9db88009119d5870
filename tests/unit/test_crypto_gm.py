"""The ``gm`` suite against the standards' own examples, and its encoding rules."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tally.crypto import get_suite, sm2, sm4
from tally.crypto.gm import GmSuite

# --- SM3, GB/T 32905-2016 Appendix A ---------------------------------------------------


def test_sm3_example_1_abc() -> None:
    assert get_suite("gm").hash(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm3_example_2_abcd_times_16() -> None:
    assert get_suite("gm").hash(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


# --- SM2, GB/T 32918.5-2017 / GM/T 0003.5-2012 example on the recommended curve ----------

STD_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
STD_PUBLIC = bytes.fromhex(
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
STD_MESSAGE = b"message digest"
STD_ZA = bytes.fromhex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
STD_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
STD_K = bytes.fromhex("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
STD_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)


def test_sm2_standard_example_public_key() -> None:
    assert get_suite("gm").load_private_key(STD_D).public_key == STD_PUBLIC


def test_sm2_standard_example_z_and_e() -> None:
    gm = get_suite("gm")
    assert sm2.z_value(STD_PUBLIC) == STD_ZA
    assert gm.hash(STD_ZA + STD_MESSAGE) == STD_E


def test_sm2_standard_example_signature_verifies() -> None:
    gm = get_suite("gm")
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, STD_SIGNATURE)
    assert not gm.verify(STD_PUBLIC, b"message digesT", STD_SIGNATURE)


def test_sm2_signature_is_bound_to_the_distinguishing_id() -> None:
    # OpenSSL 3.0 alone uses an empty ID; Tally must always pass the default one.
    assert not sm2.verify(STD_PUBLIC, STD_MESSAGE, STD_SIGNATURE, distinguishing_id=b"")
    key = sm2.SigningKey(STD_D)
    signature = key.sign(b"m", distinguishing_id=b"ALICE123@YAHOO.COM")
    assert sm2.verify(STD_PUBLIC, b"m", signature, distinguishing_id=b"ALICE123@YAHOO.COM")
    assert not get_suite("gm").verify(STD_PUBLIC, b"m", signature)


def test_sm2_signatures_are_randomized() -> None:
    # A repeated nonce k would reveal the private key; fresh k shows as fresh r.
    key = get_suite("gm").load_private_key(STD_D)
    assert key.sign(b"same")[:32] != key.sign(b"same")[:32]


def test_sm2_sign_and_verify_from_many_threads() -> None:
    # Nodes verify on worker threads; libcrypto runs without the GIL, so shared key
    # objects must be safe to use concurrently.
    gm = get_suite("gm")
    key = gm.generate_private_key()

    def work(index: int) -> bool:
        message = index.to_bytes(4, "big")
        signature = key.sign(message)
        return gm.verify(key.public_key, message, signature) and not gm.verify(
            key.public_key, message + b"!", signature
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(64)))


# --- SM2 key and signature encodings -----------------------------------------------------

G = b"\x04" + sm2.GX.to_bytes(32, "big") + sm2.GY.to_bytes(32, "big")


def test_private_key_scalar_range() -> None:
    gm = get_suite("gm")
    assert gm.load_private_key((1).to_bytes(32, "big")).public_key == G
    top = gm.load_private_key((sm2.N - 2).to_bytes(32, "big"))  # -2G
    two_g = gm.load_private_key((2).to_bytes(32, "big")).public_key
    assert top.public_key[:33] == two_g[:33]
    assert int.from_bytes(top.public_key[33:], "big") == sm2.P - int.from_bytes(two_g[33:], "big")
    for d in (0, sm2.N - 1, sm2.N, 2**256 - 1):
        with pytest.raises(ValueError, match=r"\[1, n-2\]"):
            gm.load_private_key(d.to_bytes(32, "big"))


def test_generated_scalars_are_in_range() -> None:
    for _ in range(200):
        assert 1 <= int.from_bytes(sm2.generate_private_scalar(), "big") <= sm2.N - 2


def test_public_key_is_uncompressed_sec1_on_the_curve() -> None:
    key = get_suite("gm").generate_private_key()
    x = int.from_bytes(key.public_key[1:33], "big")
    y = int.from_bytes(key.public_key[33:], "big")
    assert key.public_key[0] == 0x04
    assert (y * y - (x**3 + sm2.A * x + sm2.B)) % sm2.P == 0


def test_verify_rejects_malformed_public_keys() -> None:
    gm = get_suite("gm")
    x, y = STD_PUBLIC[1:33], STD_PUBLIC[33:]
    off_curve = STD_PUBLIC[:-1] + bytes([STD_PUBLIC[-1] ^ 1])
    compressed = bytes([2 + (y[-1] & 1)]) + x
    malformed = [
        off_curve,
        compressed,
        b"\x03" + x + y,  # a valid point with the wrong prefix
        b"\x00",  # the point at infinity
        b"\x04" + b"\x00" * 64,
        b"\x04" + sm2.P.to_bytes(32, "big") + y,  # coordinate not reduced
        STD_PUBLIC + b"\x00",
        STD_PUBLIC[1:],
    ]
    for public_key in malformed:
        assert gm.verify(public_key, STD_MESSAGE, STD_SIGNATURE) is False


def test_verify_rejects_r_or_s_out_of_range() -> None:
    gm = get_suite("gm")
    r, s = STD_SIGNATURE[:32], STD_SIGNATURE[32:]
    for bad in (0, sm2.N, sm2.N + 1, 2**256 - 1):
        encoded = bad.to_bytes(32, "big")
        assert gm.verify(STD_PUBLIC, STD_MESSAGE, encoded + s) is False
        assert gm.verify(STD_PUBLIC, STD_MESSAGE, r + encoded) is False
    # r + s = n is excluded by the standard (t = 0)
    complement = (sm2.N - int.from_bytes(r, "big")).to_bytes(32, "big")
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, r + complement) is False


def test_verify_rejects_other_signature_encodings() -> None:
    gm = get_suite("gm")
    der = sm2.rs_to_der(STD_SIGNATURE)
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, der) is False  # DER is not Tally's encoding
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, STD_SIGNATURE + b"\x00") is False
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, STD_SIGNATURE[:63]) is False


def test_verify_returns_false_for_non_bytes() -> None:
    gm = get_suite("gm")
    assert gm.verify(STD_PUBLIC.hex(), STD_MESSAGE, STD_SIGNATURE) is False  # type: ignore[arg-type]
    assert gm.verify(STD_PUBLIC, None, STD_SIGNATURE) is False  # type: ignore[arg-type]
    assert gm.verify(STD_PUBLIC, STD_MESSAGE, 10**100) is False  # type: ignore[arg-type]
    assert gm.verify(bytearray(STD_PUBLIC), memoryview(STD_MESSAGE), STD_SIGNATURE) is True


def test_der_conversion_round_trip_and_strictness() -> None:
    high = (sm2.N - 1).to_bytes(32, "big")  # top bit set: DER needs a 0x00 pad
    low = (1).to_bytes(32, "big")
    for signature in (STD_SIGNATURE, high + low, low + high):
        assert sm2.der_to_rs(sm2.rs_to_der(signature)) == signature
    assert sm2.rs_to_der(low + low) == bytes.fromhex("3006020101020101")
    not_minimal = bytes.fromhex("300702020001020101")
    negative = bytes.fromhex("3006020181020101")
    trailing = sm2.rs_to_der(low + low) + b"\x00"
    zero = bytes.fromhex("3006020100020101")
    for der in (not_minimal, negative, trailing, zero, b"", b"\x30\x00", b"\x30"):
        with pytest.raises(ValueError):
            sm2.der_to_rs(der)


# --- SM4, GB/T 32907-2016 and RFC 8998 -------------------------------------------------

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_block_example() -> None:
    assert sm4.sm4_encrypt_block(SM4_KEY, SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_rfc8998_example() -> None:
    nonce = bytes.fromhex("00001234567800000000ABCD")
    associated = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    ciphertext_and_tag = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    assert sm4._seal(SM4_KEY, nonce, plaintext, associated) == ciphertext_and_tag
    # the public API's format is this with the nonce in front
    assert sm4.sm4_decrypt(SM4_KEY, nonce + ciphertext_and_tag, associated) == plaintext


def test_sm4_round_trip_and_layout() -> None:
    key = bytes(range(16))
    for plaintext in (b"", b"x", b"private data " * 100):
        sealed = sm4.sm4_encrypt(key, plaintext, b"header")
        assert len(sealed) == sm4.NONCE_SIZE + len(plaintext) + sm4.TAG_SIZE
        assert sm4.sm4_decrypt(key, sealed, b"header") == plaintext
    assert sm4.sm4_encrypt(key, b"same") != sm4.sm4_encrypt(key, b"same")  # fresh nonce


def test_sm4_tampering_raises_decryption_error() -> None:
    key = bytes(range(16))
    sealed = sm4.sm4_encrypt(key, b"custody record 42", b"ad")
    for index in (0, sm4.NONCE_SIZE, len(sealed) - sm4.TAG_SIZE - 1, len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[index] ^= 0x01
        with pytest.raises(sm4.DecryptionError):
            sm4.sm4_decrypt(key, bytes(damaged), b"ad")
    with pytest.raises(sm4.DecryptionError):
        sm4.sm4_decrypt(key, sealed, b"other ad")
    with pytest.raises(sm4.DecryptionError):
        sm4.sm4_decrypt(bytes(16), sealed, b"ad")
    with pytest.raises(sm4.DecryptionError):
        sm4.sm4_decrypt(key, sealed[:-1], b"ad")
    with pytest.raises(sm4.DecryptionError):
        sm4.sm4_decrypt(key, sealed[: sm4.NONCE_SIZE + sm4.TAG_SIZE - 1], b"ad")


def test_sm4_rejects_wrong_key_sizes() -> None:
    for key in (b"", bytes(15), bytes(32)):
        with pytest.raises(ValueError, match="16 bytes"):
            sm4.sm4_encrypt(key, b"x")
        with pytest.raises(ValueError, match="16 bytes"):
            sm4.sm4_decrypt(key, bytes(40))


def test_gm_suite_encrypts_with_sm4() -> None:
    gm = get_suite("gm")
    assert isinstance(gm, GmSuite)
    key = bytes(range(16))
    sealed = gm.encrypt(key, b"secret", b"ad")
    assert sm4.sm4_decrypt(key, sealed, b"ad") == b"secret"
    assert gm.decrypt(key, sm4.sm4_encrypt(key, b"secret"), b"") == b"secret"
