"""The crypto-suite contract: what every suite (``intl``, ``gm``) must provide.

A chain fixes its suite in genesis and never changes it, so every hash, address,
signature and Merkle tree on that chain is made with the same algorithms. Code above
this layer never names an algorithm; it asks the chain's :class:`Suite`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class PrivateKey(ABC):
    """A signing key held in memory. Built once and reused, because deriving key
    material is far costlier than one signature."""

    suite: Suite

    @property
    @abstractmethod
    def public_key(self) -> bytes:
        """The public key in the suite's canonical encoding."""

    @abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (the suite hashes it as its standard prescribes)."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The raw private key (Ed25519 seed, SM2 scalar), 32 bytes."""


class Suite(ABC):
    """One set of algorithms: a hash, a signature scheme, and the derived conventions."""

    #: "intl" or "gm": the name written in genesis and in every transaction.
    name: str
    #: Name of the hash (``"sha256"``, ``"sm3"``).
    hash_name: str
    #: Length in bytes of hash outputs.
    hash_size: int = 32
    #: Signature algorithm name, for documents and bundles (``"ed25519"``, ``"sm2-sm3"``).
    signature_name: str
    #: The C2SP signed-note signature-type byte that goes into key IDs.
    note_signature_type: int

    @abstractmethod
    def hash(self, data: bytes) -> bytes:
        """The suite's hash of ``data``."""

    @abstractmethod
    def generate_private_key(self) -> PrivateKey:
        """A fresh key from the operating system's CSPRNG."""

    @abstractmethod
    def load_private_key(self, raw: bytes) -> PrivateKey:
        """Rebuild a key from :meth:`PrivateKey.to_bytes`."""

    @abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is valid. Never raises on malformed keys or
        signatures: those are simply invalid."""

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """One :meth:`verify` verdict per ``(public_key, message, signature)``, in order.

        A suite whose scheme verifies batches faster than one by one overrides this;
        the verdicts must be exactly those of :meth:`verify`, since validators that
        verify differently must still agree on every block."""
        return [self.verify(*item) for item in items]

    def address(self, public_key: bytes) -> str:
        """The account address of a public key: hex of the first 20 bytes of its hash.

        Addresses are derived, never chosen, so a transaction's signer key proves
        which account sent it.
        """
        return self.hash(public_key)[:20].hex()
