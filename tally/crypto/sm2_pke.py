"""SM2 public-key encryption (GB/T 32918.4-2016) with SM3, through libcrypto.

Tally's encoding of a ciphertext is the standard's own byte string in the order of
GB/T 32918.4-2016 and GM/T 0009-2012, ``C1 || C3 || C2``:

* ``C1``: the ephemeral point ``k × G``, uncompressed SEC1 (65 bytes);
* ``C3``: ``SM3(x2 || M || y2)`` (32 bytes);
* ``C2``: ``M`` XOR the KDF stream (as long as ``M``).

So a ciphertext is exactly ``97 + len(M)`` bytes and has one encoding. OpenSSL 3 and
GmSSL exchange the same four values as DER ``SM2Cipher ::= SEQUENCE { XCoordinate
INTEGER, YCoordinate INTEGER, HASH OCTET STRING, CipherText OCTET STRING }`` (GM/T
0009 §7.2); :func:`to_der` and :func:`from_der` convert, and are what the ``openssl
pkeyutl -encrypt``/``-decrypt`` interoperability tests go through.

Keys are the signature keys' encodings (:mod:`tally.crypto.sm2`): a 32-byte scalar and a
65-byte uncompressed point. Tally keeps encryption keys apart from signing keys
(decision 0030), but the curve and encodings are the same.
"""

from __future__ import annotations

from functools import lru_cache

from tally.crypto import _openssl, sm2

C1_SIZE = 65
C3_SIZE = 32
OVERHEAD = C1_SIZE + C3_SIZE
#: Tally never encrypts more than this with SM2 directly (it wraps keys, not data).
MAX_PLAINTEXT = 1024


class DecryptionError(ValueError):
    """The ciphertext does not decrypt under this key: malformed, tampered, or for
    another key. SM2's C3 check cannot tell which."""


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_uint(value: int) -> bytes:
    return _der_tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big"))


def to_der(ciphertext: bytes) -> bytes:
    """The DER ``SM2Cipher`` of a ``C1 || C3 || C2`` ciphertext (``ValueError`` if it is
    shorter than 97 bytes or C1 is not an uncompressed point encoding)."""
    if len(ciphertext) < OVERHEAD or not sm2.is_public_key_encoding(ciphertext[:C1_SIZE]):
        raise ValueError("an SM2 ciphertext is C1 (65-byte point) || C3 (32) || C2")
    x = int.from_bytes(ciphertext[1:33], "big")
    y = int.from_bytes(ciphertext[33:65], "big")
    body = (
        _der_uint(x)
        + _der_uint(y)
        + _der_tlv(0x04, ciphertext[C1_SIZE:OVERHEAD])
        + _der_tlv(0x04, ciphertext[OVERHEAD:])
    )
    return _der_tlv(0x30, body)


def from_der(der: bytes) -> bytes:
    """``C1 || C3 || C2`` of a strict-DER ``SM2Cipher``; ``ValueError`` otherwise."""
    position = 0

    def item(tag: int) -> bytes:
        nonlocal position
        if der[position : position + 1] != bytes([tag]) or position + 2 > len(der):
            raise ValueError("unexpected DER tag")
        first = der[position + 1]
        position += 2
        if first < 0x80:
            size = first
        else:
            count = first & 0x7F
            if not 1 <= count <= 4 or position + count > len(der):
                raise ValueError("bad DER length")
            size = int.from_bytes(der[position : position + count], "big")
            if size < 0x80 or der[position] == 0:
                raise ValueError("DER length not minimally encoded")
            position += count
        body = der[position : position + size]
        if len(body) != size:
            raise ValueError("truncated DER")
        position += size
        return body

    def coordinate(body: bytes) -> bytes:
        if not body or body[0] & 0x80 or (len(body) > 1 and body[0] == 0 and not body[1] & 0x80):
            raise ValueError("DER INTEGER is negative or not minimally encoded")
        value = int.from_bytes(body, "big")
        if value >= sm2.P:
            raise ValueError("coordinate out of range")
        return value.to_bytes(32, "big")

    sequence = item(0x30)
    if position != len(der):
        raise ValueError("trailing bytes after the DER SM2Cipher")
    der, position = sequence, 0
    x = coordinate(item(0x02))
    y = coordinate(item(0x02))
    c3 = item(0x04)
    c2 = item(0x04)
    if position != len(der) or len(c3) != C3_SIZE:
        raise ValueError("an SM2Cipher holds x, y, a 32-byte hash and the ciphertext")
    return b"\x04" + x + y + c3 + c2


@lru_cache(maxsize=1024)
def _public_pkey(public_key: bytes) -> _openssl.EvpPkey | None:
    # Recipients repeat (the same parties and regulators), and decoding a point costs a
    # fair share of an encryption; an evicted entry is freed once no call holds it.
    return _openssl.sm2_pkey_from_public(public_key)


def encrypt(public_key: bytes, plaintext: bytes) -> bytes:
    """SM2-encrypt ``plaintext`` (1 to 1024 bytes) to ``public_key``: ``C1 || C3 || C2``.

    ``ValueError`` when the key is not a point on the curve."""
    if not 0 < len(plaintext) <= MAX_PLAINTEXT:
        raise ValueError(f"SM2 encrypts 1 to {MAX_PLAINTEXT} bytes here")
    if not sm2.is_public_key_encoding(public_key):
        raise ValueError("expected an uncompressed 65-byte SM2 public key")
    pkey = _public_pkey(bytes(public_key))
    if pkey is None:
        raise ValueError("the SM2 public key is not a point on the curve")
    return from_der(_openssl.sm2_encrypt_der(pkey, bytes(plaintext)))


class DecryptionKey:
    """An SM2 private key held as a libcrypto key pair, for decryption."""

    __slots__ = ("_scalar", "public_key", "_pkey")

    def __init__(self, raw: bytes) -> None:
        sm2.check_private_scalar(raw)
        self._scalar = bytes(raw)
        self.public_key: bytes = _openssl.sm2_public_from_private(self._scalar)
        self._pkey = _openssl.sm2_pkey_from_private(self._scalar, self.public_key)

    def to_bytes(self) -> bytes:
        return self._scalar

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext of ``C1 || C3 || C2``; :class:`DecryptionError` for anything that
        does not decrypt (never another exception for bytes input)."""
        if not OVERHEAD < len(ciphertext) <= OVERHEAD + MAX_PLAINTEXT:
            raise DecryptionError("an SM2 ciphertext is 98 to 1121 bytes here")
        try:
            der = to_der(bytes(ciphertext))
        except ValueError:
            raise DecryptionError("C1 is not an uncompressed point") from None
        plaintext = _openssl.sm2_decrypt_der(self._pkey, der)
        if plaintext is None or len(plaintext) != len(ciphertext) - OVERHEAD:
            raise DecryptionError("SM2 decryption failed")
        return plaintext
