"""The block header: what a block commits to, typed, with the protocol version that made it.

A header is a canonical-CBOR map (RFC 8949 §4.2.1); the block hash is the chain suite's
hash of those bytes (docs/formats.md). Its fields::

    version          the protocol version whose rules executed the block (absent: 1)
    chain            the chain id
    height           1, 2, ...
    prev             the previous block's hash (the genesis hash for block 1)
    time             block time, milliseconds since the Unix epoch (the engine's clock)
    txs, tx_count    RFC 9162 root of the block's transaction ids, and their number
    log_size         size of the custody log (tier 1) after the block
    log_root         its root
    state            the state trie root after the block
    commercial_size  size of the commercial log (tier 2) after the block
    commercial_root  its root
    receipts         (version 3 on) RFC 9162 root of the block's receipt leaves, one per
                     transaction in block order: canonical CBOR of
                     ``[tx id, code, message, first event or null, event count, result]``
                     (:func:`receipt_leaf`), so a stored receipt cannot be edited unseen

Version 1 headers have no ``version`` key: they are exactly the headers chains wrote
before the protocol was versioned, so their hashes, and every checkpoint and bundle that
names them, stay valid. From version 2 on the key is present, so a header says which
rules made its block. Decoding is strict: a header with a key too many or too few, or a
field of the wrong type, is refused (:class:`HeaderError`), because ``tally audit`` and
replay read stored headers back and must not guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tally import codec
from tally.errors import Code, TallyError
from tally.protocol.versions import BOUND_TO_GENESIS

#: The fields every version has, and their types.
_FIELDS: dict[str, type] = {
    "chain": str, "height": int, "prev": bytes, "time": int, "txs": bytes, "tx_count": int,
    "log_size": int, "log_root": bytes, "state": bytes, "commercial_size": int,
    "commercial_root": bytes,
}


#: The field version 3 adds.
_RECEIPTS: dict[str, type] = {"receipts": bytes}
RECEIPTS_FROM = BOUND_TO_GENESIS


def receipt_leaf(tx_id: bytes, code: str, message: str, first_event: int | None,
                 event_count: int, result: bytes | None) -> bytes:
    """One transaction's receipt as the header's ``receipts`` root commits to it: what the
    ``txs`` table stores of it (``result`` is the canonical CBOR of the return value)."""
    return codec.encode_trusted([tx_id, code, message, first_event, event_count, result])


class HeaderError(TallyError):
    """A stored or received header is not a well-formed header of any known version."""

    code = Code.MALFORMED


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain: str
    height: int
    prev: bytes
    time: int
    txs: bytes
    tx_count: int
    log_size: int
    log_root: bytes
    state: bytes
    commercial_size: int
    commercial_root: bytes
    version: int = 1
    receipts: bytes | None = None

    def to_doc(self) -> dict[str, Any]:
        """The map that is encoded: version 1 without the ``version`` key, versions before
        3 without ``receipts``."""
        doc = asdict(self)
        if self.version == 1:
            del doc["version"]
        if self.receipts is None:
            del doc["receipts"]
        return doc

    def encode(self) -> bytes:
        return codec.encode_trusted(self.to_doc())

    def hash(self, hash_fn: Callable[[bytes], bytes]) -> bytes:
        """The block hash: the suite hash of the canonical header bytes."""
        return hash_fn(self.encode())

    @classmethod
    def from_doc(cls, doc: Any) -> BlockHeader:
        if not isinstance(doc, dict):
            raise HeaderError("a block header is a map")
        version = doc.get("version", 1)
        if type(version) is not int or version < 1 or ("version" in doc and version == 1):
            raise HeaderError(f"bad header version {version!r}")
        fields = _FIELDS | (_RECEIPTS if version >= RECEIPTS_FROM else {})
        expected = set(fields) | ({"version"} if "version" in doc else set())
        if set(doc) != expected:
            raise HeaderError(f"header fields {sorted(doc)} are not those of version "
                              f"{version}: {sorted(expected)}")
        for name, kind in fields.items():
            if type(doc[name]) is not kind:
                raise HeaderError(f"header field {name!r} must be {kind.__name__}")
        return cls(**doc)

    @classmethod
    def decode(cls, raw: bytes) -> BlockHeader:
        try:
            doc = codec.decode(raw)
        except Exception as exc:  # cbor2 raises several types on garbage
            raise HeaderError(f"a block header must be CBOR: {exc}") from None
        return cls.from_doc(doc)
