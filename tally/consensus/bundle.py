"""Bundles: many signed transactions carried through CometBFT as one of its transactions.

CometBFT's cost is per transaction it carries, whatever its size: an RPC call, a CheckTx
round trip on every node, a gossip message to every peer, a cache entry, a leaf of the
block's data hash. A node's API admits transactions in batches, so it hands them to
CometBFT as one bundle, and that cost is paid once per batch instead of once per
transfer (decision 0011).

A bundle is transport only. Each transaction in it was signed by its own client; every
node admits each one (signature, nonce, expiry) and executes, stores and proves each as a
transaction of its own. A Tally block lists the transactions, never the bundle, so
receipts, evidence and the block format do not know bundles exist.

Wire format: the canonical CBOR encoding of ``{"bundle": [tx, tx, ...]}``, each ``tx`` the
byte string of one signed transaction. Any other encoding of the same list is refused,
so one list of transactions has exactly one bundle.
"""

from __future__ import annotations

from collections.abc import Iterator

import cbor2

from tally import codec
from tally.errors import Code, TxRejected

#: How every bundle begins: a one-entry map (0xA1) whose key is the 6-byte text "bundle".
PREFIX = b"\xa1\x66bundle"
#: The most transactions in one bundle.
MAX_BUNDLE_TXS = 1000
#: The most bytes in one bundle: well inside CometBFT's mempool ``max_tx_bytes`` (1 MiB).
MAX_BUNDLE_BYTES = 512 * 1024


def is_bundle(raw: bytes) -> bool:
    return raw.startswith(PREFIX)


def encode_bundle(raws: list[bytes]) -> bytes:
    return cbor2.dumps({"bundle": list(raws)}, canonical=True)


def decode_bundle(raw: bytes) -> list[bytes]:
    """The transactions of a bundle, in order. Raises TxRejected (MALFORMED or
    OVERSIZE) for anything but the canonical encoding of 1 to MAX_BUNDLE_TXS byte
    strings."""
    if len(raw) > MAX_BUNDLE_BYTES:
        raise TxRejected(f"bundle of {len(raw)} bytes; the limit is {MAX_BUNDLE_BYTES}",
                         Code.OVERSIZE)
    if not is_bundle(raw):
        raise TxRejected("not a bundle", Code.MALFORMED)
    value = codec.decode_fast(raw)  # None: not canonical, or not plain; look closer
    canonical = value is not None
    if not canonical:
        try:
            value = codec.loads_untrusted(raw)
        except Exception as exc:
            raise TxRejected(f"undecodable bundle: {exc}", Code.MALFORMED) from None
    txs = value.get("bundle") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(txs, list) or not txs:
        raise TxRejected("a bundle is a non-empty list of transactions", Code.MALFORMED)
    if len(txs) > MAX_BUNDLE_TXS:
        raise TxRejected(f"bundle of {len(txs)} transactions; the limit is {MAX_BUNDLE_TXS}",
                         Code.OVERSIZE)
    if not all(type(tx) is bytes and tx for tx in txs):
        raise TxRejected("every entry of a bundle is a transaction's bytes", Code.MALFORMED)
    if not canonical and encode_bundle(txs) != raw:
        raise TxRejected("bundle is not canonically encoded", Code.MALFORMED)
    return txs


def bundle_size(raw: bytes) -> int:
    """How many transactions a bundle holds, read from its list header alone (for the
    proposer, whose mempool holds only bundles its CheckTx decoded in full)."""
    head = raw[len(PREFIX)] if len(raw) > len(PREFIX) else 0
    if 0x80 <= head <= 0x97:
        return head - 0x80
    if head == 0x98 and len(raw) > len(PREFIX) + 1:
        return raw[len(PREFIX) + 1]
    if head == 0x99 and len(raw) > len(PREFIX) + 2:
        return int.from_bytes(raw[len(PREFIX) + 1:len(PREFIX) + 3], "big")
    return MAX_BUNDLE_TXS + 1  # not a bundle this node would have admitted


def pack(raws: list[bytes], max_txs: int = 250, max_bytes: int = MAX_BUNDLE_BYTES // 2
         ) -> Iterator[bytes]:
    """What to hand CometBFT for these admitted transactions, in order: a transaction on
    its own stays as it is; more are packed into bundles of at most ``max_txs``
    transactions and about ``max_bytes``."""
    if len(raws) == 1:
        yield raws[0]
        return
    group: list[bytes] = []
    size = 0
    for raw in raws:
        if group and (len(group) >= max_txs or size + len(raw) > max_bytes):
            yield _one(group)
            group, size = [], 0
        group.append(raw)
        size += len(raw) + 3
    if group:
        yield _one(group)


def _one(group: list[bytes]) -> bytes:
    return group[0] if len(group) == 1 else encode_bundle(group)


__all__ = ["MAX_BUNDLE_BYTES", "MAX_BUNDLE_TXS", "PREFIX", "bundle_size", "decode_bundle",
           "encode_bundle", "is_bundle", "pack"]
