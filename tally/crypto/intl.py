"""The ``intl`` suite: Ed25519 signatures (RFC 8032) and SHA-256."""

from __future__ import annotations

import hashlib

import nacl.bindings
import nacl.exceptions
import nacl.signing

from tally.crypto.suite import PrivateKey, Suite


class Ed25519PrivateKey(PrivateKey):
    def __init__(self, suite: IntlSuite, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 private key is a 32-byte seed")
        self.suite = suite
        self._key = nacl.signing.SigningKey(seed)
        self._public = bytes(self._key.verify_key)

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def to_bytes(self) -> bytes:
        return bytes(self._key)


class IntlSuite(Suite):
    name = "intl"
    hash_name = "sha256"
    signature_name = "ed25519"
    note_signature_type = 0x01  # C2SP signed-note: Ed25519

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey(self, nacl.signing.SigningKey.generate().encode())

    def load_private_key(self, raw: bytes) -> Ed25519PrivateKey:
        return Ed25519PrivateKey(self, raw)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_key)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError):
            return False
        return True
