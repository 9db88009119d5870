"""SM2 digital signatures with SM3 (GB/T 32918.2-2016, GM/T 0003.2-2012).

Tally's encodings, fixed for every ``gm`` chain (docs/crypto.md):

* private key: the scalar ``d`` as 32 big-endian bytes, ``1 <= d <= n - 2``
  (``n - 1`` is excluded by the standard because signing divides by ``1 + d``);
* public key: the uncompressed SEC1 point ``0x04 || x || y`` (65 bytes);
* signature: ``r || s`` as two 32-byte big-endian integers (64 bytes), each in
  ``[1, n - 1]``. Fixed length, so one signature has exactly one encoding.

The signer's distinguishing ID is the standard's default ``"1234567812345678"``. It
enters every signature through ``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)``
and ``e = SM3(Z || M)``; a verifier using another ID rejects the signature.

The elliptic-curve arithmetic runs in OpenSSL 3's libcrypto (constant-time, see
:mod:`tally.crypto._openssl`). This module owns what OpenSSL does not decide for us:
encodings, ranges, and the rule that verification never raises.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from tally.crypto import _openssl
from tally.crypto.sm3 import sm3

# --- the curve (GB/T 32918.5-2017, "recommended curve"; OpenSSL's SM2) -----------------

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

#: The default distinguishing ID of GM/T 0009-2012, used by Tally for every signer.
DEFAULT_ID = b"1234567812345678"

PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 65
SIGNATURE_SIZE = 64

# ENTL is the ID's length in bits as two bytes.
_MAX_ID_SIZE = 0xFFFF // 8
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _int32(value: int) -> bytes:
    return value.to_bytes(32, "big")


# --- keys ------------------------------------------------------------------------------


def check_private_scalar(raw: bytes) -> int:
    """The scalar ``d`` of a 32-byte private key; ``ValueError`` unless ``1 <= d <= n-2``."""
    if len(raw) != PRIVATE_KEY_SIZE:
        raise ValueError("an SM2 private key is a 32-byte big-endian scalar")
    d = int.from_bytes(raw, "big")
    if not 1 <= d <= N - 2:
        raise ValueError("an SM2 private key scalar must lie in [1, n-2]")
    return d


def generate_private_scalar() -> bytes:
    """A uniformly random private key from the OS CSPRNG, already in range."""
    return _int32(secrets.randbelow(N - 2) + 1)


def is_public_key_encoding(public_key: bytes) -> bool:
    """Whether ``public_key`` has the shape of an uncompressed point with coordinates
    below ``p``. (Whether the point is on the curve is OpenSSL's check.)"""
    return (
        len(public_key) == PUBLIC_KEY_SIZE
        and public_key[0] == 0x04
        and int.from_bytes(public_key[1:33], "big") < P
        and int.from_bytes(public_key[33:], "big") < P
    )


def z_value(public_key: bytes, distinguishing_id: bytes = DEFAULT_ID) -> bytes:
    """``Z_A``, the hash binding a signer's ID and key to the curve (GB/T 32918.2 §5.5).

    OpenSSL computes Z itself when signing and verifying; this function exists so that
    the value is visible, documented and checked against the standard's example.
    """
    if not is_public_key_encoding(public_key):
        raise ValueError("expected an uncompressed 65-byte SM2 public key")
    if len(distinguishing_id) > _MAX_ID_SIZE:
        raise ValueError("an SM2 distinguishing ID is at most 8191 bytes")
    entl = (8 * len(distinguishing_id)).to_bytes(2, "big")
    return sm3(
        entl + distinguishing_id + _int32(A) + _int32(B) + _int32(GX) + _int32(GY) + public_key[1:]
    )


@lru_cache(maxsize=1024)
def _public_pkey(public_key: bytes) -> _openssl.EvpPkey | None:
    # Decoding a point costs about as much as a tenth of a verification, and a chain
    # sees the same few hundred signers over and over. An evicted entry is freed by
    # EvpPkey.__del__ once no verification still holds it.
    return _openssl.sm2_pkey_from_public(public_key)


# --- signature encoding ----------------------------------------------------------------


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # room for a sign bit
    return b"\x02" + bytes([len(body)]) + body


def rs_to_der(signature: bytes) -> bytes:
    """DER ``ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`` of a 64-byte
    ``r || s``: the form OpenSSL, GmSSL and the ``openssl`` command exchange."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


def der_to_rs(der: bytes) -> bytes:
    """The 64-byte ``r || s`` of a DER SM2 signature; ``ValueError`` unless ``der`` is
    strict DER with both integers in ``[1, n - 1]``."""

    def integer(at: int) -> tuple[int, int]:
        if der[at : at + 1] != b"\x02" or at + 2 > len(der):
            raise ValueError("expected a DER INTEGER")
        size = der[at + 1]
        body = der[at + 2 : at + 2 + size]
        if size == 0 or size > 33 or len(body) != size:
            raise ValueError("bad DER INTEGER length")
        if body[0] & 0x80 or (size > 1 and body[0] == 0 and not body[1] & 0x80):
            raise ValueError("DER INTEGER is negative or not minimally encoded")
        return int.from_bytes(body, "big"), at + 2 + size

    if len(der) < 2 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("expected a DER SEQUENCE spanning the whole signature")
    r, at = integer(2)
    s, at = integer(at)
    if at != len(der):
        raise ValueError("trailing bytes after the DER signature")
    if not (1 <= r < N and 1 <= s < N):
        raise ValueError("r and s must lie in [1, n-1]")
    return _int32(r) + _int32(s)


# --- sign and verify -------------------------------------------------------------------


class SigningKey:
    """An SM2 private key held as a libcrypto key pair, built once per key."""

    __slots__ = ("_scalar", "public_key", "_pkey")

    def __init__(self, raw: bytes) -> None:
        check_private_scalar(raw)
        self._scalar = bytes(raw)
        #: The uncompressed SEC1 public point, 65 bytes.
        self.public_key: bytes = _openssl.sm2_public_from_private(self._scalar)
        self._pkey = _openssl.sm2_pkey_from_private(self._scalar, self.public_key)

    def to_bytes(self) -> bytes:
        return self._scalar

    def sign(self, message: bytes, distinguishing_id: bytes = DEFAULT_ID) -> bytes:
        """A fresh randomized signature ``r || s`` of ``message`` (OpenSSL draws k)."""
        if len(distinguishing_id) > _MAX_ID_SIZE:
            raise ValueError("an SM2 distinguishing ID is at most 8191 bytes")
        der = _openssl.sm2_sign_der(self._pkey, distinguishing_id, bytes(message))
        return der_to_rs(der)


def verify(
    public_key: bytes,
    message: bytes,
    signature: bytes,
    distinguishing_id: bytes = DEFAULT_ID,
) -> bool:
    """Whether ``signature`` (``r || s``) is valid for ``message`` under ``public_key``.

    Returns False, never raises, for anything malformed: wrong lengths, a point off the
    curve, ``r`` or ``s`` outside ``[1, n - 1]``, an oversized ID, or a non-bytes value.
    """
    if not all(isinstance(value, _BYTES_LIKE) for value in (public_key, message, signature)):
        return False
    public_key, message, signature = bytes(public_key), bytes(message), bytes(signature)
    if len(signature) != SIGNATURE_SIZE or len(distinguishing_id) > _MAX_ID_SIZE:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    if not is_public_key_encoding(public_key):
        return False
    pkey = _public_pkey(public_key)
    if pkey is None:  # not on the curve
        return False
    return _openssl.sm2_verify_der(pkey, distinguishing_id, message, rs_to_der(signature))
