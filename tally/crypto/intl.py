"""The ``intl`` suite: Ed25519 signatures (RFC 8032, verified under ZIP 215) and SHA-256.

Signing is RFC 8032's (PyNaCl). Verification follows ZIP 215 (decision 0013), the rule
CometBFT applies to its own validator signatures, through ``tally_ed25519`` (a small
Rust extension over ed25519-zebra, in ``native/ed25519``): it is the rule under which
verifying a batch of signatures gives exactly the answers of verifying each alone, so a
validator can verify a bundle's signatures together at about a third of the cost
without any chance of disagreeing with a validator that verified them one by one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import nacl.signing

from tally.crypto.suite import PrivateKey, Suite

try:
    import tally_ed25519
except ImportError as exc:  # pragma: no cover - an installation error, said plainly
    raise ImportError(
        "Tally's Ed25519 verifier (the tally_ed25519 extension) is not installed; "
        "`make setup` builds it, or `pip install ./native/ed25519` (needs Rust's cargo)"
    ) from exc


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
        try:
            return tally_ed25519.verify(public_key, message, signature)
        except TypeError:  # not bytes: a bytearray or memoryview is read, anything else fails
            parts = _as_bytes((public_key, message, signature))
            return parts is not None and tally_ed25519.verify(*parts)

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        try:
            return tally_ed25519.verify_batch(items)
        except TypeError:
            parts = [_as_bytes(item) for item in items]
            verdicts = iter(tally_ed25519.verify_batch([p for p in parts if p is not None]))
            return [p is not None and next(verdicts) for p in parts]


def _as_bytes(item: Sequence[object]) -> tuple[bytes, bytes, bytes] | None:
    """The item's three parts as bytes, or None when one is not bytes-like."""
    if len(item) != 3 or not all(isinstance(p, bytes | bytearray | memoryview) for p in item):
        return None
    key, message, signature = (bytes(p) for p in item)  # type: ignore[arg-type]
    return key, message, signature
