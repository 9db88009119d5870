"""The transaction format: build, sign, decode, and the checks that need no state.

Wire form (canonical CBOR)::

    [ body: bstr, signature: bstr ]

``body`` is itself the canonical CBOR encoding of a map::

    {"chain": str, "suite": str, "tier": uint, "signer": bstr, "nonce": uint,
     "expiry": uint, "kind": str, "payload": map}

The transaction id is the suite hash of ``body`` (the bytes without the signature); the
signature covers ``SIGNING_DOMAIN || body``, so a Tally signature can never be replayed
as a signature over some other protocol's bytes. The sender's address is derived from
``signer``, the public key, so no one can send in another account's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import cbor2

from tally import codec
from tally.crypto import PrivateKey, Suite, get_suite
from tally.errors import Code, TxRejected

SIGNING_DOMAIN = b"tally/tx/v1\x00"
BODY_FIELDS = frozenset({"chain", "suite", "tier", "signer", "nonce", "expiry", "kind", "payload"})
TIERS = (1, 2)
MAX_UINT64 = 2**64 - 1
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded transaction whose structure (not yet its signature) has been checked."""

    chain: str
    suite: str
    tier: int
    signer: bytes
    nonce: int
    expiry: int
    kind: str
    payload: dict[str, Any]
    body: bytes
    signature: bytes
    raw: bytes
    id: bytes
    sender: str
    #: The payload as its operation parsed it, set once by the executor's stateless check
    #: (tally.exec.executor) so that execution does not parse it again. It lives and dies
    #: with this object: nothing outlives a transaction that was refused or dropped.
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def id_hex(self) -> str:
        return self.id.hex()


def encode_body(
    *,
    chain: str,
    suite: str,
    signer: bytes,
    nonce: int,
    expiry: int,
    kind: str,
    payload: dict[str, Any],
    tier: int = 1,
) -> bytes:
    return codec.encode(
        {
            "chain": chain,
            "suite": suite,
            "tier": tier,
            "signer": signer,
            "nonce": nonce,
            "expiry": expiry,
            "kind": kind,
            "payload": payload,
        }
    )


def sign(
    key: PrivateKey,
    *,
    chain: str,
    nonce: int,
    expiry: int,
    kind: str,
    payload: dict[str, Any],
    tier: int = 1,
) -> bytes:
    """Build and sign a transaction; returns its wire bytes."""
    body = encode_body(
        chain=chain,
        suite=key.suite.name,
        signer=key.public_key,
        nonce=nonce,
        expiry=expiry,
        kind=kind,
        payload=payload,
        tier=tier,
    )
    signature = key.sign(SIGNING_DOMAIN + body)
    return codec.encode_trusted([body, signature])


def decode(raw: bytes, *, max_size: int) -> Transaction:
    """Decode wire bytes and check their structure. Raises :class:`TxRejected`.

    The size limit is checked first, before any parsing work is spent on the input.
    """
    if not isinstance(raw, (bytes, bytearray)):
        raise TxRejected("a transaction must be bytes", Code.MALFORMED)
    raw = bytes(raw)
    if len(raw) > max_size:
        raise TxRejected(
            f"transaction is {len(raw)} bytes; the limit is {max_size}", Code.OVERSIZE
        )
    envelope = codec.decode_fast(raw)  # None: not canonical, or not plain; look closer
    canonical = envelope is not None
    if not canonical:
        try:
            envelope = codec.loads_untrusted(raw)
        except Exception:  # cbor2 raises several types; all mean "not CBOR"
            raise TxRejected("transaction is not valid CBOR", Code.MALFORMED) from None
    if (
        not isinstance(envelope, list)
        or len(envelope) != 2
        or not isinstance(envelope[0], bytes)
        or not isinstance(envelope[1], bytes)
    ):
        raise TxRejected("a transaction is a CBOR array [body bytes, signature bytes]")
    # An array of two byte strings has one canonical form, which plain encoding gives.
    if not canonical and cbor2.dumps(envelope) != raw:
        raise TxRejected("transaction is not in canonical (deterministic) CBOR form")
    body_bytes, signature = envelope
    body = codec.decode_canonical(body_bytes, "transaction body")
    if not isinstance(body, dict) or set(body) != BODY_FIELDS:
        raise TxRejected(
            "transaction body must be a map with exactly the fields "
            + ", ".join(sorted(BODY_FIELDS))
        )
    chain, suite_name, tier = body["chain"], body["suite"], body["tier"]
    signer, nonce, expiry = body["signer"], body["nonce"], body["expiry"]
    kind, payload = body["kind"], body["payload"]
    _require(isinstance(chain, str) and 0 < len(chain) <= 64, "chain must be a short string")
    _require(isinstance(suite_name, str), "suite must be a string")
    _require(type(tier) is int and tier in TIERS, "tier must be 1 or 2")
    _require(isinstance(signer, bytes) and 0 < len(signer) <= 128, "signer must be key bytes")
    _require(_is_uint(nonce), "nonce must be an unsigned 64-bit integer")
    _require(_is_uint(expiry), "expiry must be an unsigned 64-bit integer")
    _require(
        isinstance(kind, str) and len(kind) <= 64 and _KIND_RE.match(kind) is not None,
        "kind must look like 'module.action'",
    )
    _require(isinstance(payload, dict), "payload must be a map")
    try:
        suite = get_suite(suite_name)
    except ValueError:
        raise TxRejected(f"unknown crypto suite {suite_name!r}", Code.WRONG_SUITE) from None
    return Transaction(
        chain=chain,
        suite=suite_name,
        tier=tier,
        signer=signer,
        nonce=nonce,
        expiry=expiry,
        kind=kind,
        payload=payload,
        body=body_bytes,
        signature=signature,
        raw=raw,
        id=suite.hash(body_bytes),
        sender=suite.address(signer),
    )


def check_signature(tx: Transaction, suite: Suite) -> None:
    if not suite.verify(*signed_message(tx)):
        raise bad_signature()


def signed_message(tx: Transaction) -> tuple[bytes, bytes, bytes]:
    """``(public key, message, signature)``: what a verifier checks, one or many at a time."""
    return tx.signer, SIGNING_DOMAIN + tx.body, tx.signature


def bad_signature() -> TxRejected:
    return TxRejected("signature does not verify against the signer key", Code.BAD_SIGNATURE)


def check_envelope(tx: Transaction, *, chain: str, suite: Suite) -> None:
    """The checks that need the chain's identity but no state: chain id, suite, signature."""
    if tx.chain != chain:
        raise TxRejected(
            f"transaction is for chain {tx.chain!r}, this is {chain!r}", Code.WRONG_CHAIN
        )
    if tx.suite != suite.name:
        raise TxRejected(
            f"transaction uses suite {tx.suite!r}; this chain uses {suite.name!r}",
            Code.WRONG_SUITE,
        )
    check_signature(tx, suite)


def _is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_UINT64


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TxRejected(message, Code.MALFORMED)
