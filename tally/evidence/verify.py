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
import re
from dataclasses import dataclass, field
from typing import Any

import cbor2

from tally.crypto import Suite, get_suite
from tally.errors import VerificationFailed
from tally.log.checkpoint import (
    CosignatureVerifier,
    Misbehaviour,
    NoteError,
    NoteVerifier,
    find_conflict,
    parse_checkpoint,
    verify_quorum,
)
from tally.log.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

FORMAT = "tally-evidence/v1"
#: Must equal tally.tx.SIGNING_DOMAIN (a test checks it); copied, not imported, to keep
#: this verifier's dependencies to the log and crypto code.
TX_SIGNING_DOMAIN = b"tally/tx/v1\x00"
#: Must equal tally.protocol.versions.BOUND_TO_GENESIS (a test checks it), copied for the
#: same reason: from this protocol version on, every checkpoint names its genesis.
BOUND_TO_GENESIS = 3
BUNDLE_FIELDS = frozenset({"format", "chain_id", "suite", "genesis", "genesis_hash", "event",
                           "inclusion", "checkpoint", "transaction", "validator_updates"})
#: CometBFT applies a validator update made in block h from block h + 2 on: the set that
#: votes on (and cosigns the checkpoint of) block h is the one after block h - 2.
VALIDATOR_UPDATE_DELAY = 2
OPTIONAL_FIELDS = frozenset({"consistency", "log"})
COMMERCIAL_LEAF_FIELDS = frozenset({"tx", "data", "name", "time", "index", "height", "contract"})
LEAF_FIELDS = frozenset(
    {"height", "tx", "index", "type", "asset", "from", "to", "quantity", "data", "details", "time"}
)


class EvidenceError(VerificationFailed):
    """The bundle does not prove what it claims. ``reason`` is a stable code."""


@dataclass
class Verdict:
    """What the bundle proves, in words a person can read back."""

    event: dict[str, Any]
    facts: list[str] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    genesis_pinned: bool = False


#: The deepest nesting of arrays and objects a bundle has is 4 (a validator update's
#: inclusion proof); anything deeper is refused before it is parsed.
MAX_DEPTH = 8
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def parse_bundle(data: str | bytes) -> dict[str, Any]:
    """A bundle's JSON, in the one form the spec accepts (docs/evidence.md, "Parsing").

    Bytes must be UTF-8 without a byte-order mark; duplicate object keys, numbers that
    are not integers (``58.0``, ``1e3``, ``NaN``), nesting deeper than ``MAX_DEPTH`` and
    integers of more than 4,300 digits are refused, each with reason ``format``. JSON's
    whitespace and the order of keys are not part of a bundle's meaning."""
    if isinstance(data, bytes):
        if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise EvidenceError("format", "the bundle starts with a byte-order mark")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise EvidenceError("format", "the bundle is not UTF-8") from None
    if data[:1] == "\ufeff":
        raise EvidenceError("format", "the bundle starts with a byte-order mark")
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", data)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise EvidenceError("format", f"the bundle nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(data, object_pairs_hook=_object, parse_float=_no_float,
                           parse_constant=_no_float)
    except EvidenceError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EvidenceError("format", f"the bundle is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EvidenceError("format", "the bundle is not a JSON object")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise EvidenceError("format", f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _no_float(text: str) -> Any:
    raise EvidenceError("format", f"{text} is not an integer: a bundle's numbers are integers")


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise EvidenceError("format", f"{what} must be a whole number")
    return value


def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None
                  ) -> Verdict:
    """Check a bundle completely. Returns a :class:`Verdict` or raises EvidenceError.

    Text and bytes are parsed strictly (:func:`parse_bundle`); a dict is held to the same
    types (integers are ``int``, never ``float`` or ``bool``)."""
    if isinstance(bundle, (str, bytes)):
        bundle = parse_bundle(bundle)
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

    # 2. The validator sets from genesis on, each change proven by the sets before it;
    #    then the event's checkpoint, signed by a quorum of the set of its height.
    history = validator_history(bundle["validator_updates"], genesis, suite, chain_id,
                                bytes.fromhex(actual_hash))
    checkpoint, signers = history.check(bundle["checkpoint"])

    # 3. The event is in its log at that checkpoint: the custody log itself, or the
    #    commercial log whose size and root the custody checkpoint names.
    commercial = bundle.get("log", "custody") == "commercial"
    if bundle.get("log", "custody") not in ("custody", "commercial"):
        raise EvidenceError("format", "log must be 'custody' or 'commercial'")
    tree = _commercial_tree(checkpoint) if commercial else (checkpoint.size, checkpoint.root)
    event = bundle["event"]
    _exact_fields(event, {"index", "leaf", "details"}, "event")
    index, leaf = _int(event["index"], "event index"), _b64(event["leaf"], "event leaf")
    inclusion = bundle["inclusion"]
    _exact_fields(inclusion, {"tree_size", "proof"}, "inclusion")
    if _int(inclusion["tree_size"], "inclusion tree_size") != tree[0]:
        raise EvidenceError("inclusion", "the proof is for another tree size than the checkpoint")
    proof = [_b64(h, "proof hash") for h in inclusion["proof"]]
    try:
        verify_inclusion(suite.hash, index, tree[0], leaf_hash(suite.hash, leaf), proof, tree[1])
    except ProofError as exc:
        raise EvidenceError("inclusion", str(exc)) from None

    # 4. What the leaf says, its details, and the transaction behind it.
    fields = _cbor(leaf, "event leaf")
    details: dict[str, Any] = {}
    if commercial:
        if not isinstance(fields, dict) or set(fields) != COMMERCIAL_LEAF_FIELDS or \
                event["details"] is not None:
            raise EvidenceError("leaf", "the leaf is not a Tally contract event")
    elif not isinstance(fields, dict) or set(fields) != LEAF_FIELDS:
        raise EvidenceError("leaf", "the leaf is not a Tally event")
    elif fields["details"] is not None:
        if event.get("details") is None:
            raise EvidenceError("details", "the leaf commits to details the bundle lacks")
        details_bytes = _b64(event["details"], "details")
        if suite.hash(details_bytes) != fields["details"]:
            raise EvidenceError("details", "the details do not hash to the leaf's details hash")
        details = _cbor(details_bytes, "details")
    elif event["details"] is not None:
        raise EvidenceError("details", "the bundle carries details the leaf does not name")
    signer_address = None
    if bundle["transaction"] is not None:
        signer_address = _check_transaction(_b64(bundle["transaction"], "transaction"),
                                            fields["tx"], chain_id, suite)

    if commercial:
        facts = [_describe_contract_event(fields, index, signer_address, suite)]
        facts.append(
            f"It is entry {index} of the commercial log, whose root at size {tree[0]} is named "
            f"by the custody checkpoint of height {_extension_int(checkpoint, 'height')} "
            f"signed by {', '.join(signers)}.")
    else:
        facts = [_describe(fields, details, index, signer_address)]
        facts.append(
            f"It is entry {index} of log {checkpoint.origin!r}, included in the checkpoint of "
            f"size {checkpoint.size} signed by {', '.join(signers)}."
        )

    if history.unbound:
        facts.append("The checkpoint does not name its genesis (protocol version 1 or 2): it "
                     "proves the event on a chain of this genesis's validators, not that no "
                     "copy of the chain reusing a validator's key made it.")
    if signer_address is None:
        facts.append(f"The bundle does not carry transaction {fields['tx'].hex()}, so it "
                     "does not show who requested the event.")
    if history.updates:
        facts.append(f"The validator set changed {len(history.updates)} time(s) since genesis; "
                     "each change was checked against the set before it.")

    # 5. Optionally: the log grew without rewriting that checkpoint.
    if "consistency" in bundle:
        _exact_fields(bundle["consistency"], {"checkpoint", "proof"}, "consistency")
        later, later_signers = history.check(bundle["consistency"]["checkpoint"])
        later_tree = _commercial_tree(later) if commercial else (later.size, later.root)
        proof2 = [_b64(h, "proof hash") for h in bundle["consistency"]["proof"]]
        try:
            verify_consistency(suite.hash, tree[0], later_tree[0], proof2, tree[1],
                               later_tree[1])
        except ProofError as exc:
            raise EvidenceError("consistency", str(exc)) from None
        facts.append(
            f"The log at the later checkpoint of size {later_tree[0]} (signed by "
            f"{', '.join(later_signers)}) still contains it unchanged."
        )
    pinned_ok = pinned is not None
    if not pinned_ok:
        facts.append(f"The genesis hash {actual_hash} was not pinned: compare it with the "
                     "consortium's published value.")
    described = jsonable(fields) | {"details": jsonable(details)}
    if commercial:
        described["data"] = jsonable(_cbor(fields["data"], "contract event data"))
    return Verdict(described, facts, signers, pinned_ok)


def _commercial_tree(checkpoint: Any) -> tuple[int, bytes]:
    """The commercial log's (size, root), as a custody checkpoint names it."""
    parts = _extension(checkpoint, "commercial").split(" ")
    if len(parts) != 2 or not parts[0].isdigit():
        raise EvidenceError("checkpoint", "malformed 'commercial' line")
    return int(parts[0]), _b64(parts[1], "commercial root")


def _describe_contract_event(f: dict[str, Any], index: int, signer: str | None,
                             suite: Suite) -> str:
    when = dt.datetime.fromtimestamp(f["time"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    data = json.dumps(jsonable(_cbor(f["data"], "contract event data")), sort_keys=True)
    text = (f"Contract event {index}: contract {f['contract']!r} emitted {f['name']!r} "
            f"{data} at height {f['height']}, {when}.")
    if signer:
        text += f" Requested by transaction {f['tx'].hex()} signed by account {signer}."
    return text


class ValidatorHistory:
    """The validator set at every height: genesis plus proven ``validator.update`` events.

    Checkpoints name their height and the hash of the validator set after their block,
    so every checkpoint is checked twice: signed by a quorum of the set that voted on its
    block, and consistent with every update up to it (none may be left out).
    """

    def __init__(self, genesis_docs: list[dict[str, Any]], suite: Suite, chain_id: str,
                 genesis_hash: bytes | None = None, bound: bool = False) -> None:
        self.genesis_docs = sorted(genesis_docs, key=lambda v: v["name"])
        self.suite = suite
        self.origin = f"tally/{chain_id}/custody"
        self.updates: list[tuple[int, dict[str, Any]]] = []  # (height, details), log order
        #: The genesis every checkpoint must name, and whether it must name it (a chain
        #: born at protocol version 3 or later) or may not (an older chain's checkpoints).
        self.genesis_hash = genesis_hash
        self.bound = bound
        #: Set when a checkpoint was accepted without naming its genesis.
        self.unbound = False

    def set_after(self, height: int) -> list[dict[str, Any]]:
        docs = {v["name"]: v for v in self.genesis_docs}
        for update_height, details in self.updates:
            if update_height <= height:
                apply_validator_update(docs, details)
        return [docs[n] for n in sorted(docs)]

    def check(self, note: str) -> tuple[Any, list[str]]:
        body = note.split("\n\n", 1)[0] + "\n"
        try:
            claimed = parse_checkpoint(body, self.suite.hash_size)
        except (NoteError, ValueError) as exc:
            raise EvidenceError("checkpoint", str(exc)) from None
        height = _extension_int(claimed, "height")
        signing = self.set_after(height - VALIDATOR_UPDATE_DELAY)
        keyset = {v["name"]: (bytes.fromhex(v["public_key"]), int(v["power"])) for v in signing}
        try:
            result = verify_quorum(note, keyset, self.suite)
        except (NoteError, ValueError) as exc:
            raise EvidenceError("checkpoint", str(exc)) from None
        if result.checkpoint.origin != self.origin:
            raise EvidenceError("checkpoint", f"origin {result.checkpoint.origin!r} is not "
                                              f"{self.origin!r}")
        self.check_genesis(result.checkpoint)
        expected = self.suite.hash(cbor2.dumps(self.set_after(height), canonical=True))
        if _extension_bytes(result.checkpoint, "validators") != expected:
            raise EvidenceError("validators", f"the validator set at height {height} differs "
                                              "from the one the bundle's updates give")
        return result.checkpoint, result.signers


    def check_genesis(self, checkpoint: Any) -> None:
        """A checkpoint names the genesis of its chain (protocol version 3 on), so that
        a copy of the chain (same chain id, a validator key reused) cannot pass its
        checkpoints off as this chain's."""
        named = any(e.startswith("genesis ") for e in checkpoint.extensions)
        if not named and not self.bound:
            self.unbound = True
            return
        if not named:
            raise EvidenceError("genesis", "the checkpoint does not name its genesis, which "
                                           "every checkpoint of this chain does")
        if self.genesis_hash is None or \
                _extension_bytes(checkpoint, "genesis") != self.genesis_hash:
            raise EvidenceError("genesis", "the checkpoint was made on a chain with another "
                                           "genesis")


def binds_genesis(genesis: dict[str, Any]) -> bool:
    """Whether every checkpoint of a chain with this genesis document names its genesis."""
    version = genesis.get("protocol_version", 1)
    return type(version) is int and version >= BOUND_TO_GENESIS


def apply_validator_update(docs: dict[str, dict[str, Any]], details: dict[str, Any]) -> None:
    """The effect of one validator.update event (as tally.exec.governance applies it)."""
    name, power = details["name"], details["power"]
    if power == 0:
        docs.pop(name, None)
    else:
        docs[name] = {"name": name, "public_key": details["public_key"],
                      "consensus_key": details["consensus_key"], "power": power}


def genesis_validator_docs(genesis: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": v["name"], "public_key": v["public_key"],
             "consensus_key": v.get("consensus_key", ""), "power": int(v["power"])}
            for v in genesis["validators"]]


def validator_history(updates: Any, genesis: dict[str, Any], suite: Suite, chain_id: str,
                      genesis_hash: bytes) -> ValidatorHistory:
    history = ValidatorHistory(genesis_validator_docs(genesis), suite, chain_id,
                               genesis_hash, binds_genesis(genesis))
    if not isinstance(updates, list):
        raise EvidenceError("format", "validator_updates must be a list")
    # First learn every update, then check each one's proof: a checkpoint's signing set
    # depends only on updates at least two blocks older, so the checks are well founded
    # whatever their order, and two updates in one block are both known when either's
    # checkpoint is compared with the set it names.
    parsed = []
    last_index = -1
    for item in updates:
        _exact_fields(item, {"index", "leaf", "details", "inclusion", "checkpoint"},
                      "validator update")
        _exact_fields(item["inclusion"], {"tree_size", "proof"}, "validator update inclusion")
        index, leaf = item["index"], _b64(item["leaf"], "validator update leaf")
        if type(index) is not int or index <= last_index:
            raise EvidenceError("validators", "validator updates must be in log order")
        last_index = index
        fields = _cbor(leaf, "validator update leaf")
        details_bytes = _b64(item["details"], "validator update details")
        if not isinstance(fields, dict) or fields.get("type") != "validator.update" or \
                fields.get("details") != suite.hash(details_bytes):
            raise EvidenceError("validators", f"entry {index} is not a validator update")
        history.updates.append((fields["height"], _cbor(details_bytes, "update details")))
        parsed.append((index, leaf, item))
    for index, leaf, item in parsed:
        checkpoint, _ = history.check(item["checkpoint"])
        if _int(item["inclusion"]["tree_size"], "update tree_size") != checkpoint.size:
            raise EvidenceError("validators", "update proof and checkpoint sizes differ")
        try:
            verify_inclusion(suite.hash, index, checkpoint.size, leaf_hash(suite.hash, leaf),
                             [_b64(h, "proof hash") for h in item["inclusion"]["proof"]],
                             checkpoint.root)
        except ProofError as exc:
            raise EvidenceError("validators", f"update {index}: {exc}") from None
    return history


def _extension(checkpoint: Any, name: str) -> str:
    values = [e[len(name) + 1:] for e in checkpoint.extensions if e.startswith(name + " ")]
    if len(values) != 1:
        raise EvidenceError("checkpoint", f"the checkpoint has no single '{name}' line")
    return values[0]


def _extension_int(checkpoint: Any, name: str) -> int:
    text = _extension(checkpoint, name)
    if not text.isdigit() or (text != "0" and text.startswith("0")):
        raise EvidenceError("checkpoint", f"'{name}' is not a number")
    return int(text)


def _extension_bytes(checkpoint: Any, name: str) -> bytes:
    return _b64(_extension(checkpoint, name), f"checkpoint {name}")


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
        parts.append("details " + json.dumps(jsonable(details), sort_keys=True))
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


def jsonable(value: Any) -> Any:
    """Decoded CBOR as JSON: bytes become hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def find_misbehaviour(genesis_bytes: bytes, note_a: str, note_b: str) -> Misbehaviour | None:
    """Two validly signed checkpoints of the chain's log that cannot both be true (same
    size, different roots) are proof that every validator who signed both equivocated.
    Returns that proof, naming the signers, or None when the notes do not conflict."""
    genesis = _cbor(genesis_bytes, "genesis")
    suite = _suite(genesis.get("suite"))
    # Two notes of two chains do not conflict: a note made on a copy of the chain (same
    # chain id, a reused key) must not make an honest validator look like an equivocator.
    history = ValidatorHistory([], suite, genesis.get("chain_id", ""), suite.hash(genesis_bytes),
                               binds_genesis(genesis))
    for note in (note_a, note_b):
        try:
            history.check_genesis(parse_checkpoint(note.split("\n\n", 1)[0] + "\n",
                                                    suite.hash_size))
        except (NoteError, ValueError) as exc:
            raise EvidenceError("checkpoint", str(exc)) from None
    verifiers: list[Any] = []
    for v in genesis_validator_docs(genesis):
        key = bytes.fromhex(v["public_key"])
        verifiers += [NoteVerifier(v["name"], key, suite),
                      CosignatureVerifier(v["name"], key, suite)]
    try:
        return find_conflict(note_a, note_b, verifiers, hash_size=suite.hash_size)
    except (NoteError, ValueError) as exc:
        raise EvidenceError("checkpoint", str(exc)) from None
