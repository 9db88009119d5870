"""The API's wire types: what every route answers, as pydantic models.

The routers declare them as response models, so the OpenAPI document at /openapi.json
describes every answer; the SDK parses the same answers into the same models, so a field
means the same thing on both sides. This module imports pydantic and Tally's protocol
types only (no FastAPI), so a client may use it without the server's dependencies.

Models are frozen. Bytes travel as hex (ids, hashes, roots) or base64 (raw transactions,
leaves in evidence bundles), as each field says. Models whose records may grow keys in a
later protocol version (assets, contracts, evidence bundles) keep unknown keys
(``extra="allow"``) so that an older client still reads a newer node.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tally.protocol.header import BlockHeader
from tally.protocol.receipt import Receipt


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document the node sent (keys it did not send are left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class OpenModel(Model):
    """A record that a later protocol version may extend: unknown keys are kept."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="allow")


# --- errors -------------------------------------------------------------------------------


class ErrorModel(Model):
    """Every error answer: a stable code of :class:`tally.errors.Code` and words."""

    code: str = Field(description="a stable code (tally/errors.py)")
    message: str
    reason: str | None = Field(None, description="for VERIFICATION_FAILED: the verifier's "
                                                 "sub-code")


# --- transactions -------------------------------------------------------------------------


class TxSubmission(BaseModel):
    tx: str = Field(description="the signed transaction's wire bytes, base64")


class BatchSubmission(BaseModel):
    txs: list[str] = Field(description="signed transactions, base64 each", max_length=10_000)
    wait: bool = Field(False, description="wait until every transaction is committed")


class ReceiptModel(Model):
    """The outcome of a committed transaction (:class:`tally.protocol.receipt.Receipt`)."""

    tx: str = Field(description="transaction id, hex")
    height: int
    position: int = Field(description="its place in the block")
    code: str = Field(description="OK, or the code it failed with (its writes discarded)")
    message: str
    events: list[int] = Field(description="indexes of the custody-log events it caused")
    result: Any = Field(None, description="what it returned (a contract call's value)")

    def to_receipt(self) -> Receipt:
        return Receipt(self.tx, self.height, self.position, self.code, self.message,
                       list(self.events), self.result)


class PendingModel(Model):
    """A transaction admitted to the mempool, not yet committed."""

    tx: str = Field(description="transaction id, hex")
    status: Literal["pending"] = "pending"


class BatchResult(Model):
    results: list[ReceiptModel | PendingModel | ErrorModel] = Field(
        description="one per submitted transaction, in order")


class Event(Model):
    """A custody-log event: the fields of its leaf (docs/formats.md), decoded."""

    log_index: int = Field(description="its position in the custody log")
    type: str
    asset: str | None
    sender: str | None = Field(alias="from")
    to: str | None
    quantity: int
    data: Any = Field(description="the leaf's data (hex), or null")
    details: dict[str, Any] = Field(description="facts beyond the fixed fields")
    tx: str = Field(description="the transaction that caused it, hex")
    index: int = Field(description="its place among its transaction's events")
    height: int
    time: int = Field(description="block time, ms since the Unix epoch")


class Transaction(Model):
    """A committed transaction, decoded, with its receipt and events."""

    id: str
    chain: str
    suite: str
    tier: int
    sender: str
    signer: str = Field(description="public key, hex")
    nonce: int
    expiry: int
    kind: str
    payload: dict[str, Any]
    signature: str = Field(description="hex")
    raw: str = Field(description="the wire bytes, base64")
    receipt: ReceiptModel
    events: list[Event]


# --- chain --------------------------------------------------------------------------------


class Divergence(Model):
    height: int
    dissenters: list[str]


class Status(Model):
    chain_id: str
    suite: str
    genesis_hash: str
    height: int
    block_hash: str | None
    log_size: int
    state_root: str
    mempool: int | None = Field(description="transactions waiting (solo engine only)")
    engine: str
    engine_failure: str | None
    validator: str | None = Field(description="this node's validator name, if it is one")
    diverged: Divergence | None = Field(description="set once this node found its state "
                                                    "differs from the network's")


class GenesisValidator(Model):
    name: str
    public_key: str
    power: int
    consensus_key: str


class GenesisDocument(OpenModel):
    chain_id: str
    suite: str
    genesis_time_ms: int
    validators: list[GenesisValidator]
    roles: dict[str, list[str]]
    params: dict[str, int]
    hash: str = Field(description="the suite hash of the canonical CBOR document, hex")


class Header(Model):
    """A block header (:class:`tally.protocol.header.BlockHeader`), bytes as hex."""

    version: int | None = Field(None, description="protocol version; absent means 1")
    chain: str
    height: int
    prev: str
    time: int
    txs: str
    tx_count: int
    log_size: int
    log_root: str
    state: str
    commercial_size: int
    commercial_root: str
    receipts: str | None = Field(None, description="root of the block's receipts (version "
                                                   "3 on); absent before")

    def to_header(self) -> BlockHeader:
        """The protocol header, whose ``hash(suite.hash)`` is the block hash."""
        doc = self.model_dump(exclude={"version", "receipts"})
        for name in ("prev", "txs", "log_root", "state", "commercial_root"):
            doc[name] = bytes.fromhex(doc[name])
        receipts = None if self.receipts is None else bytes.fromhex(self.receipts)
        return BlockHeader(**doc, version=self.version or 1, receipts=receipts)


class Block(Model):
    height: int
    hash: str
    header: Header
    checkpoint: str = Field(description="the signed checkpoint (C2SP signed note)")
    txs: list[str] = Field(description="transaction ids, hex, in block order")


# --- custody ------------------------------------------------------------------------------


class Holding(Model):
    q: int = Field(description="units held")
    p: int = Field(description="units pledged")
    f: int = Field(description="units frozen")

    @property
    def free(self) -> int:
        return self.q - self.p - self.f


class Asset(OpenModel):
    asset: str
    name: str
    asset_class: str = Field(alias="class")
    issuer: str
    status: str
    supply: int
    metadata: Any
    issued_at: int
    holders: dict[str, Holding]
    controller: str | None = Field(None, description="the contract that issued it, if one "
                                                     "did")


class AccountInfo(Model):
    address: str
    nonce: int = Field(description="the next nonce it must use")
    roles: list[str]


# --- proofs -------------------------------------------------------------------------------


class Inclusion(Model):
    tree_size: int
    proof: list[str] = Field(description="audit path, base64")


class ValidatorUpdate(Model):
    """A validator-set change, with the evidence that it was committed."""

    index: int
    leaf: str
    details: str
    inclusion: Inclusion
    checkpoint: str


class StateProof(Model):
    """A state key's value or absence, proven against a signed checkpoint's state root."""

    key: str
    key_hex: str
    value: Any = Field(description="the value decoded, or null when absent")
    value_cbor: str | None = Field(description="its canonical CBOR, hex")
    state_root: str
    height: int
    checkpoint: str
    proof: dict[str, Any] = Field(description="the trie proof (tally.state.trie.StateProof)")
    validator_updates: list[ValidatorUpdate]


class InclusionProof(Model):
    index: int
    tree_size: int
    leaf_hash: str
    root: str
    proof: list[str] = Field(description="hex")


class ConsistencyProof(Model):
    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str] = Field(description="hex")


class BundleEvent(Model):
    index: int
    leaf: str = Field(description="the leaf bytes, base64")
    details: str | None


class BundleConsistency(Model):
    checkpoint: str
    proof: list[str]


class EvidenceBundle(OpenModel):
    """A self-contained evidence bundle (docs/evidence.md); ``tally verify`` checks it."""

    format: str
    log: str | None = Field(None, description="'commercial' for a contract event")
    chain_id: str
    suite: str
    genesis: str = Field(description="the genesis document, canonical CBOR, base64")
    genesis_hash: str
    event: BundleEvent
    inclusion: Inclusion
    checkpoint: str
    transaction: str | None
    validator_updates: list[ValidatorUpdate]
    consistency: BundleConsistency | None = None


# --- contracts ----------------------------------------------------------------------------


class ContractVersion(OpenModel):
    version: int
    code_id: str
    height: int
    proposal: str


class Contract(OpenModel):
    name: str
    address: str
    version: int
    code_id: str
    versions: list[ContractVersion]


class QueryRequest(BaseModel):
    method: str = Field(description="a @view method of the contract", max_length=64)
    args: list[Any] = Field(default_factory=list, description="its arguments")


class QueryResult(Model):
    result: Any


class CommercialEvent(Model):
    """A contract event: a leaf of the commercial (tier-2) log, decoded."""

    log_index: int
    contract: str
    name: str
    data: Any
    height: int
    tx: str
    index: int
    time: int


# --- identities and governance (protocol version 4) ----------------------------------------


class Member(OpenModel):
    """A member institution (docs/identity.md)."""

    id: str
    name: str
    credit_code: str = Field(description="unified social credit code (GB 32100-2015)")
    status: str = Field(description="active, suspended or expelled")
    cas: list[str] = Field(description="fingerprints of its CA certificates (suite hash of "
                                       "the DER, hex)")
    height: int = Field(description="the height it was admitted at (0: genesis)")


class CaCertificate(Model):
    fingerprint: str
    pem: str | None = Field(description="the CA certificate, PEM")


class MemberDetail(Member):
    ca_certificates: list[CaCertificate]


class Identity(OpenModel):
    """Who a registered account is: never the person's data, the commitment to it."""

    address: str
    member: str
    kyc: int = Field(description="the KYC level its member attests, 0 to 5")
    status: str = Field(description="active, frozen, closed or rotated")
    commitment: str = Field(description="the commitment to the person's record, hex "
                                        "(tally account check-disclosure)")
    key: str = Field(description="the account's public key, hex")
    issuer: str = Field(description="the issuing CA key's fingerprint, hex ('' in genesis)")
    serial: int = Field(description="the certificate's serial (0 in genesis)")
    height: int = Field(description="the height it was registered at")
    roles: list[str]
    active: bool = Field(description="whether it may act now (its member active too)")
    why_not: str = Field(description="why it may not act, or ''")
    predecessor: str | None = Field(None, description="the account it was rotated from")
    successor: str | None = Field(None, description="the account it was rotated to")


class Claim(Model):
    topic: str
    value: int | str
    issuer: str
    height: int
    expires_ms: int = Field(description="block time it expires at (0: never)")
    expired: bool = Field(description="expired at the latest block's time")
    trusted: bool = Field(description="its issuer is still trusted for the topic")
    valid: bool = Field(description="it counts now (tally.exec.claims.valid_claim)")


class Claims(Model):
    address: str
    height: int = Field(description="the height the claims were read at")
    time: int = Field(description="that block's time, ms since the Unix epoch")
    claims: list[Claim]


class VotePolicy(Model):
    participation: int = Field(description="basis points of the seats' weight that must vote")
    win: int = Field(description="basis points of the weight that voted that must vote for")


class VoteTally(Model):
    votes_for: int = Field(alias="for", description="weight that voted for")
    against: int
    total: int = Field(description="the weight of every seat now")


class Proposal(OpenModel):
    id: str = Field(description="the id of the transaction that proposed it, hex")
    action: str
    args: dict[str, Any]
    proposer: str
    height: int
    expires: int = Field(description="the last height it may pass at")
    votes: dict[str, str] = Field(description="address: for | against")
    status: str = Field(description="open, passed, rejected, withdrawn or expired, as of "
                                    "as_of")
    as_of: int = Field(description="the height the status and tally were read at")
    tally: VoteTally
    vote_policy: VotePolicy | None = Field(description="the thresholds it is open under "
                                                       "(null once closed)")


class Policy(Model):
    resource: str
    kind: Literal["signer", "vote"]
    stored: bool = Field(description="false: the default applies")
    record: dict[str, Any] = Field(description="signer: {allow, deny?}; vote: {participation, "
                                               "win}")
    describe: str | None = Field(None, description="the signer policy in words")


class MayVerdict(Model):
    account: str
    resource: str
    allowed: bool
    reason: str


class Seat(Model):
    account: str
    weight: int
    active: bool = Field(description="its account may act (and so vote) now")


class Committee(Model):
    seats: list[Seat]
    total_weight: int
    actions: dict[str, VotePolicy] = Field(description="each committee action's vote policy")
    height: int


# --- supervision: alerts ------------------------------------------------------------------


class AlertModel(Model):
    """An alert a supervision rule raised on a committed block (docs/supervision.md)."""

    id: int
    rule: str = Field(description="the rule's name in the rules file")
    kind: str = Field(description="the rule's kind (large_transfer, velocity, concentration, "
                                  "flagged_party, frozen_party, python), or error: the rule "
                                  "raised")
    height: int = Field(description="the block the rule found it in")
    events: list[int] = Field(description="the custody-log indexes of the events that make "
                                          "it: `tally evidence export --event N` exports each")
    message: str
    status: Literal["open", "acknowledged"]
    created_at: float = Field(description="when it was stored, seconds since the Unix epoch")
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None


class AlertAck(BaseModel):
    """Who acknowledges an alert: a free-form name on an open node; on an authenticated
    node the address of the regulator that signed the request is recorded instead."""

    by: str = Field(min_length=1, max_length=200)
