"""The standalone evidence verifier.

A court, an auditor or a regulator runs this with nothing but a bundle and, ideally,
the chain's genesis hash obtained out of band (from the consortium's public register,
say). It needs no node, no database and no network, and it imports nothing of Tally
beyond ``tally.log`` (RFC 9162 proofs, signed notes) and ``tally.crypto`` (the suites),
so it is small enough to audit.

What a valid bundle proves:
1. the genesis document hashes to the pinned genesis hash, so its validator keys are
   the consortium's;
2. validators holding more than two thirds of the voting power signed the checkpoint;
3. the event's leaf is in the log at that checkpoint (RFC 9162 inclusion proof);
4. the event's details and the signed transaction that caused it are the ones the leaf
   commits to, and the transaction's signature is valid;
5. optionally, the log at a later signed checkpoint still contains that checkpoint's
   log (consistency proof): nothing was rewritten since.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import cbor2

from tally.crypto import Suite, get_suite
from tally.log.checkpoint import NoteError, parse_checkpoint, verify_quorum
from tally.log.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

FORMAT = "tally-evidence/v1"
#: Must equal tally.tx.SIGNING_DOMAIN (a test checks it); copied, not imported, to keep
#: this verifier's dependencies to the log and crypto code.
TX_SIGNING_DOMAIN = b"tally/tx/v1\x00"
BUNDLE_FIELDS = frozenset({"format", "chain_id", "suite", "genesis", "genesis_hash", "event",
                           "inclusion", "checkpoint", "transaction"})
OPTIONAL_FIELDS = frozenset({"consistency"})
LEAF_FIELDS = frozenset(
    {"height", "tx", "index", "type", "asset", "from", "to", "quantity", "data", "details", "time"}
)


class EvidenceError(Exception):
    """The bundle does not prove what it claims. ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class Verdict:
    """What the bundle proves, in words a person can read back."""

    event: dict[str, Any]
    facts: list[str] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    genesis_pinned: bool = False


def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None
                  ) -> Verdict:
    """Check a bundle completely. Returns a :class:`Verdict` or raises EvidenceError."""
    if isinstance(bundle, (str, bytes)):
        try:
            bundle = json.loads(bundle)
        except ValueError as exc:
            raise EvidenceError("format", f"the bundle is not JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise EvidenceError("format", f"not a {FORMAT} bundle")
    # Every field is accounted for: a bundle carries nothing the verifier did not check.
    keys = set(bundle)
    if not BUNDLE_FIELDS <= keys <= BUNDLE_FIELDS | OPTIONAL_FIELDS:
        raise EvidenceError("format", "unexpected or missing fields: "
                            + ", ".join(sorted(keys ^ BUNDLE_FIELDS - OPTIONAL_FIELDS)))
    try:
        return _verify(bundle, genesis_hash)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise EvidenceError("format", f"missing or mistyped field: {exc!r}") from None


def _verify(bundle: dict[str, Any], pinned: str | None) -> Verdict:
    # 1. The trust anchor: genesis and its validators.
    genesis_bytes = _b64(bundle["genesis"], "genesis")
    genesis = _cbor(genesis_bytes, "genesis")
    suite = _suite(genesis.get("suite"))
    if bundle.get("suite") != suite.name:
        raise EvidenceError("genesis", "the bundle's suite differs from its genesis suite")
    actual_hash = suite.hash(genesis_bytes).hex()
    if bundle["genesis_hash"] != actual_hash:
        raise EvidenceError("genesis", "the genesis document does not hash to genesis_hash")
    if pinned is not None and pinned.lower() != actual_hash:
        raise EvidenceError(
            "genesis", f"genesis hash {actual_hash} is not the pinned {pinned.lower()}"
        )
    chain_id = genesis["chain_id"]
    if bundle["chain_id"] != chain_id:
        raise EvidenceError("genesis", "the bundle's chain id differs from its genesis")
    keyset = {
        v["name"]: (bytes.fromhex(v["public_key"]), int(v["power"])) for v in genesis["validators"]
    }

    # 2. The checkpoint, signed by a quorum of the validators.
    checkpoint, signers = _quorum_checkpoint(bundle["checkpoint"], keyset, suite, chain_id)

    # 3. The event is in the log at that checkpoint.
    event = bundle["event"]
    _exact_fields(event, {"index", "leaf", "details"}, "event")
    index, leaf = event["index"], _b64(event["leaf"], "event leaf")
    inclusion = bundle["inclusion"]
    _exact_fields(inclusion, {"tree_size", "proof"}, "inclusion")
    if inclusion["tree_size"] != checkpoint.size:
        raise EvidenceError("inclusion", "the proof is for another tree size than the checkpoint")
    proof = [_b64(h, "proof hash") for h in inclusion["proof"]]
    try:
        verify_inclusion(suite.hash, index, checkpoint.size, leaf_hash(suite.hash, leaf), proof,
                         checkpoint.root)
    except ProofError as exc:
        raise EvidenceError("inclusion", str(exc)) from None

    # 4. What the leaf says, its details, and the transaction behind it.
    fields = _cbor(leaf, "event leaf")
    if not isinstance(fields, dict) or set(fields) != LEAF_FIELDS:
        raise EvidenceError("leaf", "the leaf is not a Tally event")
    details: dict[str, Any] = {}
    if fields["details"] is not None:
        if event.get("details") is None:
            raise EvidenceError("details", "the leaf commits to details the bundle lacks")
        details_bytes = _b64(event["details"], "details")
        if suite.hash(details_bytes) != fields["details"]:
            raise EvidenceError("details", "the details do not hash to the leaf's details hash")
        details = _cbor(details_bytes, "details")
    signer_address = None
    if bundle.get("transaction") is not None:
        signer_address = _check_transaction(_b64(bundle["transaction"], "transaction"),
                                            fields["tx"], chain_id, suite)

    facts = [_describe(fields, details, index, signer_address)]
    facts.append(
        f"It is entry {index} of log {checkpoint.origin!r}, included in the checkpoint of "
        f"size {checkpoint.size} signed by {', '.join(signers)}."
    )

    # 5. Optionally: the log grew without rewriting that checkpoint.
    if "consistency" in bundle:
        _exact_fields(bundle["consistency"], {"checkpoint", "proof"}, "consistency")
        later, later_signers = _quorum_checkpoint(
            bundle["consistency"]["checkpoint"], keyset, suite, chain_id)
        proof2 = [_b64(h, "proof hash") for h in bundle["consistency"]["proof"]]
        try:
            verify_consistency(suite.hash, checkpoint.size, later.size, proof2, checkpoint.root,
                               later.root)
        except ProofError as exc:
            raise EvidenceError("consistency", str(exc)) from None
        facts.append(
            f"The log at the later checkpoint of size {later.size} (signed by "
            f"{', '.join(later_signers)}) still contains it unchanged."
        )
    pinned_ok = pinned is not None
    if not pinned_ok:
        facts.append(f"The genesis hash {actual_hash} was not pinned: compare it with the "
                     "consortium's published value.")
    return Verdict(_jsonable(fields) | {"details": _jsonable(details)}, facts, signers, pinned_ok)


def _quorum_checkpoint(note: str, keyset: dict[str, tuple[bytes, int]], suite: Suite,
                       chain_id: str) -> tuple[Any, list[str]]:
    try:
        result = verify_quorum(note, keyset, suite)
    except (NoteError, ValueError) as exc:
        raise EvidenceError("checkpoint", str(exc)) from None
    expected_origin = f"tally/{chain_id}/custody"
    if result.checkpoint.origin != expected_origin:
        raise EvidenceError("checkpoint", f"origin {result.checkpoint.origin!r} is not "
                                          f"{expected_origin!r}")
    parse_checkpoint(result.checkpoint.body(), suite.hash_size)
    return result.checkpoint, result.signers


def _check_transaction(raw: bytes, tx_id: bytes, chain_id: str, suite: Suite) -> str:
    envelope = _cbor(raw, "transaction")
    if not (isinstance(envelope, list) and len(envelope) == 2):
        raise EvidenceError("transaction", "not a Tally transaction")
    body_bytes, signature = envelope
    if suite.hash(body_bytes) != tx_id:
        raise EvidenceError("transaction", "the transaction is not the one the event names")
    body = _cbor(body_bytes, "transaction body")
    if body.get("chain") != chain_id:
        raise EvidenceError("transaction", "the transaction is for another chain")
    if not suite.verify(body["signer"], TX_SIGNING_DOMAIN + body_bytes, signature):
        raise EvidenceError("transaction", "the transaction's signature does not verify")
    return suite.address(body["signer"])


def _describe(f: dict[str, Any], details: dict[str, Any], index: int,
              signer: str | None) -> str:
    when = dt.datetime.fromtimestamp(f["time"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    what = f["type"]
    parts = [f"Event {index} ({what}) at height {f['height']}, {when}:"]
    if f["quantity"]:
        parts.append(f"{f['quantity']} units of {f['asset']}")
    elif f["asset"]:
        parts.append(f"asset {f['asset']}")
    if f["from"]:
        parts.append(f"from {f['from']}")
    if f["to"]:
        parts.append(f"to {f['to']}")
    if f["data"] is not None:
        parts.append(f"document hash {f['data'].hex()}")
    if details:
        parts.append("details " + json.dumps(_jsonable(details), sort_keys=True))
    text = " ".join(parts) + "."
    if signer:
        text += f" Requested by transaction {f['tx'].hex()} signed by account {signer}."
    return text


def _suite(name: Any) -> Suite:
    try:
        return get_suite(name)
    except (ValueError, TypeError):
        raise EvidenceError("genesis", f"unknown crypto suite {name!r}") from None


def _exact_fields(value: Any, fields: set[str], what: str) -> None:
    if not isinstance(value, dict) or set(value) != fields:
        raise EvidenceError("format", f"{what} must have exactly the fields "
                                      f"{', '.join(sorted(fields))}")


def _b64(text: Any, what: str) -> bytes:
    """Strict base64: one text for one byte string (no ignored padding bits)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise EvidenceError("format", f"{what} is not base64") from None
    if base64.b64encode(data).decode() != text:
        raise EvidenceError("format", f"{what} is not in canonical base64")
    return data


def _cbor(data: bytes, what: str) -> Any:
    try:
        value = cbor2.loads(data)
    except Exception:
        raise EvidenceError("format", f"{what} is not CBOR") from None
    if cbor2.dumps(value, canonical=True) != data:
        raise EvidenceError("format", f"{what} is not canonical CBOR")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
