"""The ``gm`` suite: Chinese national cryptography (商用密码).

SM2 signatures with SM3 and the default distinguishing ID (:mod:`tally.crypto.sm2`),
SM3 hashing (GB/T 32905-2016), and SM4-GCM for data Tally encrypts
(:mod:`tally.crypto.sm4`). Encodings and interoperability: docs/crypto.md.
"""

from __future__ import annotations

from tally.crypto import sm2, sm4
from tally.crypto.sm3 import sm3
from tally.crypto.suite import PrivateKey, Suite


class Sm2PrivateKey(PrivateKey):
    """An SM2 private key; its libcrypto key pair is built once, here."""

    def __init__(self, suite: GmSuite, raw: bytes) -> None:
        self.suite = suite
        self._key = sm2.SigningKey(raw)

    @property
    def public_key(self) -> bytes:
        """The uncompressed SEC1 point ``0x04 || x || y`` (65 bytes)."""
        return self._key.public_key

    def sign(self, message: bytes) -> bytes:
        """A randomized SM2-with-SM3 signature, ``r || s`` (64 bytes), default ID."""
        return self._key.sign(message)

    def to_bytes(self) -> bytes:
        """The scalar ``d``, 32 bytes big-endian."""
        return self._key.to_bytes()


class GmSuite(Suite):
    name = "gm"
    hash_name = "sm3"
    signature_name = "sm2-sm3"
    # C2SP signed-note assigns no byte to SM2; 0xff is its byte for such types.
    # docs/decisions/0101-note-signature-type-for-sm2.md
    note_signature_type = 0xFF

    def __init__(self) -> None:
        # Fail at suite creation, not at the first signature, when libcrypto lacks SM2.
        sm2.SigningKey(sm2.generate_private_scalar())

    def hash(self, data: bytes) -> bytes:
        return sm3(data)

    def generate_private_key(self) -> Sm2PrivateKey:
        return Sm2PrivateKey(self, sm2.generate_private_scalar())

    def load_private_key(self, raw: bytes) -> Sm2PrivateKey:
        return Sm2PrivateKey(self, raw)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return sm2.verify(public_key, message, signature)

    def encrypt(self, key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """SM4-GCM: see :func:`tally.crypto.sm4.sm4_encrypt`."""
        return sm4.sm4_encrypt(key, plaintext, associated_data)

    def decrypt(self, key: bytes, sealed: bytes, associated_data: bytes = b"") -> bytes:
        """SM4-GCM: see :func:`tally.crypto.sm4.sm4_decrypt`; raises
        :class:`tally.crypto.sm4.DecryptionError` on any tampering."""
        return sm4.sm4_decrypt(key, sealed, associated_data)
