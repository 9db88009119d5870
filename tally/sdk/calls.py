"""The SDK without a network: each API call as a request to send and a parser of its answer.

:class:`Endpoints` builds an ``httpx.Request`` for every route and pairs it with the
function that turns the answer into a typed value (or raises the typed error the node
answered with). :class:`~tally.sdk.client.TallyClient` sends these with ``httpx.Client``,
:class:`~tally.sdk.client.AsyncTallyClient` with ``httpx.AsyncClient``: both clients
share every request and every parser, and differ only in how they wait.

The verification of proven reads (:func:`verify_state`, :func:`verify_holding`,
:func:`verify_evidence`) lives here too: it needs no network once the answer is in hand.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import cbor2
import httpx
from pydantic import BaseModel, TypeAdapter

from tally.crypto import get_suite
from tally.errors import Code, TallyError, Unavailable, VerificationFailed, error_for
from tally.evidence.verify import EvidenceError, Verdict, validator_history, verify_bundle
from tally.protocol.http import (
    AccountInfo,
    AlertModel,
    Asset,
    Block,
    Claims,
    CommercialEvent,
    Committee,
    ConsistencyProof,
    Contract,
    Event,
    EvidenceBundle,
    GenesisDocument,
    Identity,
    InclusionProof,
    MayVerdict,
    Member,
    MemberDetail,
    Policy,
    Proposal,
    StateProof,
    Status,
    Transaction,
)
from tally.protocol.receipt import Receipt
from tally.state.trie import StateProof as TrieProof
from tally.state.trie import StateProofError, verify_state_proof

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class NodeUnreachable(Unavailable):
    """The node could not be reached, or the connection broke before it answered
    (code ``UNAVAILABLE``). For a submission this means *in doubt*: it may or may not
    have been admitted; read the account's nonce or the transaction id to find out."""


#: The SDK's former error class. Every error the SDK raises is a :class:`TallyError`
#: (refusals as :func:`tally.errors.error_for` types them, :class:`NodeUnreachable`,
#: :class:`~tally.errors.VerificationFailed`), so ``except ApiError`` still catches all.
ApiError = TallyError


def raise_for_answer(response: httpx.Response) -> None:
    """Raise the typed error a refusal carries: ``{"code", "message"[, "reason"]}``."""
    if response.status_code < 400:
        return
    try:
        err = response.json()
        code, message = err["code"], err.get("message", response.text)
    except (ValueError, KeyError, TypeError):
        raise Unavailable(f"HTTP {response.status_code}: {response.text}") from None
    if code == Code.VERIFICATION_FAILED:
        raise VerificationFailed(err.get("reason") or "node", message)
    raise error_for(code, message)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: the request to send, and how to read its answer."""

    request: httpx.Request
    parse: Callable[[httpx.Response], T]

    def finish(self, response: httpx.Response) -> T:
        raise_for_answer(response)
        return self.parse(response)


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate(response.json())


def _list_of(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
    return lambda response: adapter.validate_python(response.json())


def _text(response: httpx.Response) -> str:
    return response.text


def _receipt(response: httpx.Response) -> Receipt:
    return Receipt.from_dict(response.json())


def batch_results(response: httpx.Response) -> list[Receipt | str | TallyError]:
    """One item per submitted transaction: its receipt (committed), its id (admitted,
    pending) or the typed error that refused it."""
    out: list[Receipt | str | TallyError] = []
    for r in response.json()["results"]:
        if r.get("status") == "pending":
            out.append(r["tx"])
        elif "height" in r:
            out.append(Receipt.from_dict(r))
        else:
            out.append(error_for(r["code"], r["message"]))
    return out


def event_of_sse(line: str) -> Event | None:
    """The event a server-sent-events line carries, if it is a ``data:`` line."""
    if line.startswith("data: "):
        return Event.model_validate(json.loads(line[6:]))
    return None


def checked_genesis(pinned: str | None) -> Callable[[httpx.Response], GenesisDocument]:
    """Parse the genesis document, checking that it hashes to what it claims and to the
    pinned hash when one was given."""

    def parse(response: httpx.Response) -> GenesisDocument:
        doc = response.json()
        claimed = doc.pop("hash")
        actual = get_suite(doc["suite"]).hash(cbor2.dumps(doc, canonical=True)).hex()
        if actual != claimed or (pinned and pinned != actual):
            raise VerificationFailed("genesis_mismatch", "the node's genesis does not match "
                                     "the pinned genesis hash")
        return GenesisDocument.model_validate(doc | {"hash": actual})

    return parse


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Endpoints:
    """Every route of the node's API as a :class:`Call`; sends nothing itself."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None) -> httpx.Request:
        return httpx.Request(method, self.base_url + path, params=params, json=json)

    def _get(self, path: str, parse: Callable[[httpx.Response], T],
             params: dict[str, Any] | None = None) -> Call[T]:
        return Call(self.request("GET", path, params=params), parse)

    # chain
    def status(self) -> Call[Status]:
        return self._get("/v1/status", _model(Status))

    def genesis(self, pinned: str | None) -> Call[GenesisDocument]:
        return self._get("/v1/genesis", checked_genesis(pinned))

    def block(self, height: int | str) -> Call[Block]:
        return self._get(f"/v1/blocks/{height}", _model(Block))

    def checkpoint(self, height: int) -> Call[str]:
        return self._get(f"/v1/checkpoints/{height}", _text)

    # transactions
    def submit(self, raw: bytes) -> Call[str]:
        return Call(self.request("POST", "/v1/txs", params={"wait": "none"},
                                 json={"tx": _b64(raw)}), lambda r: r.json()["tx"])

    def submit_and_wait(self, raw: bytes) -> Call[Receipt]:
        return Call(self.request("POST", "/v1/txs", params={"wait": "commit"},
                                 json={"tx": _b64(raw)}), _receipt)

    def submit_batch(self, raws: list[bytes], *, wait: bool
                     ) -> Call[list[Receipt | str | TallyError]]:
        return Call(self.request("POST", "/v1/txs/batch",
                                 json={"txs": [_b64(r) for r in raws], "wait": wait}),
                    batch_results)

    def tx(self, tx_id: str) -> Call[Transaction]:
        return self._get(f"/v1/txs/{tx_id}", _model(Transaction))

    def receipt(self, tx_id: str) -> Call[Receipt]:
        return self._get(f"/v1/txs/{tx_id}/receipt", _receipt)

    # custody
    def asset(self, asset: str) -> Call[Asset]:
        return self._get(f"/v1/assets/{asset}", _model(Asset))

    def history(self, asset: str, after: int, limit: int) -> Call[list[Event]]:
        return self._get(f"/v1/assets/{asset}/history", _list_of(Event),
                         {"after": after, "limit": limit})

    def holding(self, asset: str, holder: str) -> Call[StateProof]:
        return self._get(f"/v1/assets/{asset}/holdings/{holder}", _model(StateProof))

    def account_info(self, address: str) -> Call[AccountInfo]:
        return self._get(f"/v1/accounts/{address}", _model(AccountInfo))

    # proofs
    def state(self, key: str) -> Call[StateProof]:
        return self._get("/v1/proofs/state", _model(StateProof), {"key": key})

    def inclusion_proof(self, index: int, size: int) -> Call[InclusionProof]:
        return self._get("/v1/proofs/inclusion", _model(InclusionProof),
                         {"index": index, "size": size})

    def consistency_proof(self, first: int, second: int) -> Call[ConsistencyProof]:
        return self._get("/v1/proofs/consistency", _model(ConsistencyProof),
                         {"first": first, "second": second})

    def evidence(self, event_index: int, consistency: bool) -> Call[EvidenceBundle]:
        return self._get(f"/v1/evidence/{event_index}", _model(EvidenceBundle),
                         {"consistency": consistency})

    def commercial_evidence(self, index: int, consistency: bool) -> Call[EvidenceBundle]:
        return self._get(f"/v1/commercial/evidence/{index}", _model(EvidenceBundle),
                         {"consistency": consistency})

    # events
    def events(self, after: int, limit: int) -> Call[list[Event]]:
        return self._get("/v1/events", _list_of(Event), {"after": after, "limit": limit})

    def stream_events(self, after: int) -> httpx.Request:
        """The request of the live stream; read its lines with :func:`event_of_sse`."""
        return self.request("GET", "/v1/events/stream", params={"after": after})

    def commercial_events(self, after: int, limit: int, contract: str | None
                          ) -> Call[list[CommercialEvent]]:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if contract:
            params["contract"] = contract
        return self._get("/v1/commercial/events", _list_of(CommercialEvent), params)

    # contracts
    def contract(self, name: str) -> Call[Contract]:
        return self._get(f"/v1/contracts/{name}", _model(Contract))

    def contract_source(self, name: str, version: int | None) -> Call[str]:
        return self._get(f"/v1/contracts/{name}/source", _text,
                         {"version": version} if version is not None else {})

    def query(self, contract: str, method: str, args: list[Any]) -> Call[Any]:
        return Call(self.request("POST", f"/v1/contracts/{contract}/query",
                                 json={"method": method, "args": args}),
                    lambda r: r.json()["result"])

    # identities and governance (protocol version 4); path parts are quoted, so that a
    # resource such as ``call:bond:transfer`` or a stray ``/`` names nothing else
    def members(self, limit: int) -> Call[list[Member]]:
        return self._get("/v1/members", _list_of(Member), {"limit": limit})

    def member(self, member_id: str) -> Call[MemberDetail]:
        return self._get(f"/v1/members/{_part(member_id)}", _model(MemberDetail))

    def identity(self, address: str) -> Call[Identity]:
        return self._get(f"/v1/accounts/{_part(address)}/identity", _model(Identity))

    def claims(self, address: str, limit: int) -> Call[Claims]:
        return self._get(f"/v1/accounts/{_part(address)}/claims", _model(Claims),
                         {"limit": limit})

    def proposals(self, status: str, limit: int) -> Call[list[Proposal]]:
        return self._get("/v1/proposals", _list_of(Proposal), {"status": status,
                                                               "limit": limit})

    def proposal(self, proposal_id: str) -> Call[Proposal]:
        return self._get(f"/v1/proposals/{_part(proposal_id)}", _model(Proposal))

    def policy(self, resource: str) -> Call[Policy]:
        return self._get(f"/v1/policies/{_part(resource)}", _model(Policy))

    def may(self, account: str, resource: str) -> Call[MayVerdict]:
        return self._get("/v1/may", _model(MayVerdict), {"account": account,
                                                         "resource": resource})

    def committee(self) -> Call[Committee]:
        return self._get("/v1/committee", _model(Committee))

    # supervision
    def alerts(self, status: str | None, limit: int) -> Call[list[AlertModel]]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return self._get("/v1/alerts", _list_of(AlertModel), params)

    def acknowledge_alert(self, alert_id: int, by: str) -> Call[AlertModel]:
        return Call(self.request("POST", f"/v1/alerts/{int(alert_id)}/ack", json={"by": by}),
                    _model(AlertModel))


def _part(text: str) -> str:
    """One path segment, percent-encoded."""
    return quote(text, safe=":")


# --- verified reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedState:
    """A state value (None: proven absent) checked against a validator-signed checkpoint."""

    key: str
    value: Any
    height: int
    signers: list[str]


@dataclass(frozen=True)
class VerifiedHolding:
    asset: str
    holder: str
    held: int
    pledged: int
    frozen: int
    height: int
    signers: list[str]

    @property
    def free(self) -> int:
        return self.held - self.pledged - self.frozen


def verify_state(answer: StateProof, genesis: GenesisDocument, key: str) -> VerifiedState:
    """Check a state answer for ``key`` against the checkpoint it carries, whose signers
    must be the validators of the (pinned) genesis as changed by the updates it proves.
    Raises :class:`~tally.errors.VerificationFailed` when anything does not verify."""
    doc = genesis.model_dump(mode="json", by_alias=True, exclude={"hash"})
    suite = get_suite(genesis.suite)
    try:
        history = validator_history([u.to_dict() for u in answer.validator_updates], doc,
                                    suite, genesis.chain_id, bytes.fromhex(genesis.hash))
        checkpoint, signers = history.check(answer.checkpoint)
    except EvidenceError as exc:
        raise VerificationFailed(exc.reason, f"the node's checkpoint does not verify: {exc}"
                                 ) from None
    state_line = [e for e in checkpoint.extensions if e.startswith("state ")]
    if len(state_line) != 1:
        raise VerificationFailed("no_state_root", "the checkpoint carries no state root")
    root = base64.b64decode(state_line[0][6:])
    value = bytes.fromhex(answer.value_cbor) if answer.value_cbor else None
    try:
        verify_state_proof(suite.hash, root, key.encode(), value,
                           TrieProof.from_dict(answer.proof))
    except StateProofError as exc:
        raise VerificationFailed(exc.reason, f"the node's state proof is invalid: {exc}"
                                 ) from None
    height = int(next(e for e in checkpoint.extensions if e.startswith("height "))[7:])
    return VerifiedState(key, cbor2.loads(value) if value is not None else None, height,
                         signers)


def verify_holding(answer: StateProof, genesis: GenesisDocument, asset: str, holder: str
                   ) -> VerifiedHolding:
    proven = verify_state(answer, genesis, f"holding/{asset}/{holder}")
    record = proven.value if proven.value is not None else {"q": 0, "p": 0, "f": 0}
    return VerifiedHolding(asset, holder, record["q"], record["p"], record["f"],
                           proven.height, proven.signers)


def verify_evidence(bundle: EvidenceBundle | dict[str, Any], genesis_hash: str | None
                    ) -> Verdict:
    """Check an evidence bundle completely (what ``tally verify`` does)."""
    doc = bundle.to_dict() if isinstance(bundle, EvidenceBundle) else bundle
    try:
        return verify_bundle(doc, genesis_hash=genesis_hash)
    except EvidenceError as exc:
        raise VerificationFailed(exc.reason, f"the evidence bundle does not verify: {exc}"
                                 ) from None
