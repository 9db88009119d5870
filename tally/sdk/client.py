"""The Python SDK: a typed client for a Tally node, and signing accounts.

    client = TallyClient("http://127.0.0.1:26680")
    alice = client.account(tally.keys.load("alice.json"))
    receipt = alice.transfer("BOND-2030", to=bob_address, quantity=100)

Reads that matter can be *verified*: :meth:`TallyClient.verified_holding` checks the
node's answer against a checkpoint signed by the validators of the pinned genesis, so a
client need not trust the node it asks.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cbor2
import httpx

from tally import tx as txmod
from tally.crypto import Suite, get_suite
from tally.errors import Code, TallyError
from tally.evidence.verify import EvidenceError, validator_history
from tally.keys import NamedKey
from tally.state.trie import StateProof, StateProofError, verify_state_proof


class ApiError(TallyError):
    """The node refused a request; ``code`` is the node's error code."""


class NodeUnreachable(ApiError):
    """The node could not be reached, or the connection broke before it answered
    (code ``UNAVAILABLE``). For a submission this means *in doubt*: it may or may not
    have been admitted; read the account's nonce or the transaction id to find out."""


@dataclass(frozen=True)
class Receipt:
    tx: str
    height: int
    position: int
    code: str
    message: str
    events: list[int]
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def raise_for_code(self) -> Receipt:
        if not self.ok:
            raise ApiError(self.message, Code(self.code) if self.code in Code._value2member_map_
                           else Code.INVALID_REQUEST)
        return self


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


class TallyClient:
    def __init__(self, base_url: str, *, timeout: float = 60.0,
                 genesis_hash: str | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._genesis: dict[str, Any] | None = None
        self._pinned = genesis_hash

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TallyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"cannot reach the node at {self._http.base_url}: {exc}",
                                  Code.UNAVAILABLE) from exc
        if response.status_code >= 400:
            try:
                err = response.json()
                code = Code(err["code"]) if err.get("code") in Code._value2member_map_ \
                    else Code.INVALID_REQUEST
                raise ApiError(err.get("message", response.text), code)
            except (ValueError, KeyError):
                raise ApiError(f"HTTP {response.status_code}: {response.text}",
                               Code.UNAVAILABLE) from None
        if response.headers.get("content-type", "").startswith("text/plain"):
            return response.text
        return response.json()

    # --- chain facts ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/v1/status")

    def genesis(self) -> dict[str, Any]:
        """The genesis document, checked against the pinned hash when one was given."""
        if self._genesis is None:
            doc: dict[str, Any] = self._request("GET", "/v1/genesis")
            claimed = doc.pop("hash")
            suite = get_suite(doc["suite"])
            actual = suite.hash(cbor2.dumps(doc, canonical=True)).hex()
            if actual != claimed or (self._pinned and self._pinned != actual):
                raise ApiError("the node's genesis does not match the pinned genesis hash",
                               Code.UNAVAILABLE)
            self._genesis = doc
        return self._genesis

    @property
    def suite(self) -> Suite:
        return get_suite(self.genesis()["suite"])

    @property
    def chain_id(self) -> str:
        return self.genesis()["chain_id"]

    # --- transactions -----------------------------------------------------------------

    def submit(self, raw: bytes, *, wait: bool = True) -> Receipt | str:
        body = {"tx": base64.b64encode(raw).decode()}
        result = self._request("POST", "/v1/txs", json=body,
                               params={"wait": "commit" if wait else "none"})
        return Receipt(**result) if wait else result["tx"]

    def submit_batch(self, raws: list[bytes], *, wait: bool = False) -> list[Receipt | str | ApiError]:
        body = {"txs": [base64.b64encode(r).decode() for r in raws], "wait": wait}
        out: list[Receipt | str | ApiError] = []
        for r in self._request("POST", "/v1/txs/batch", json=body)["results"]:
            if "status" in r:
                out.append(r["tx"])
            elif "height" in r:
                out.append(Receipt(**r))
            else:
                out.append(ApiError(r["message"], Code(r["code"])))
        return out

    def tx(self, tx_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/txs/{tx_id}")

    def receipt(self, tx_id: str) -> Receipt:
        return Receipt(**self._request("GET", f"/v1/txs/{tx_id}/receipt"))

    def account(self, key: NamedKey) -> Account:
        return Account(self, key)

    def next_nonce(self, address: str) -> int:
        return self._request("GET", f"/v1/accounts/{address}")["nonce"]

    # --- reads ------------------------------------------------------------------------

    def block(self, height: int | str = "latest") -> dict[str, Any]:
        return self._request("GET", f"/v1/blocks/{height}")

    def checkpoint(self, height: int) -> str:
        return self._request("GET", f"/v1/checkpoints/{height}")

    def asset(self, asset: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/assets/{asset}")

    def history(self, asset: str, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/assets/{asset}/history",
                             params={"after": after, "limit": limit})

    def events(self, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/events", params={"after": after, "limit": limit})

    def stream_events(self, after: int = -1) -> Iterator[dict[str, Any]]:
        """Committed events as they happen (server-sent events); runs until closed."""
        with self._http.stream("GET", "/v1/events/stream", params={"after": after},
                               timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    def evidence(self, event_index: int, *, consistency: bool = False) -> dict[str, Any]:
        return self._request("GET", f"/v1/evidence/{event_index}",
                             params={"consistency": consistency})

    def contract(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/contracts/{name}")

    def contract_source(self, name: str, version: int | None = None) -> str:
        params = {"version": version} if version is not None else {}
        return self._request("GET", f"/v1/contracts/{name}/source", params=params)

    def query(self, contract: str, method: str, *args: Any) -> Any:
        """Run a contract's @view method against the latest block."""
        return self._request("POST", f"/v1/contracts/{contract}/query",
                             json={"method": method, "args": list(args)})["result"]

    def commercial_events(self, after: int = -1, contract: str | None = None
                          ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"after": after}
        if contract:
            params["contract"] = contract
        return self._request("GET", "/v1/commercial/events", params=params)

    def commercial_evidence(self, index: int, *, consistency: bool = False) -> dict[str, Any]:
        return self._request("GET", f"/v1/commercial/evidence/{index}",
                             params={"consistency": consistency})

    def verified_holding(self, asset: str, holder: str) -> VerifiedHolding:
        """A holding checked against a validator-signed checkpoint: trust no node."""
        answer = self._request("GET", f"/v1/assets/{asset}/holdings/{holder}")
        return self._verify_state_answer(answer, asset, holder)

    def _verify_state_answer(self, answer: dict[str, Any], asset: str, holder: str
                             ) -> VerifiedHolding:
        genesis = self.genesis()
        suite = get_suite(genesis["suite"])
        try:
            history = validator_history(answer["validator_updates"], genesis, suite,
                                        genesis["chain_id"])
            checkpoint, signers = history.check(answer["checkpoint"])
        except EvidenceError as exc:
            raise ApiError(f"the node's checkpoint does not verify: {exc}",
                           Code.UNAVAILABLE) from None
        state_line = [e for e in checkpoint.extensions if e.startswith("state ")]
        if len(state_line) != 1:
            raise ApiError("the checkpoint carries no state root", Code.UNAVAILABLE)
        root = base64.b64decode(state_line[0][6:])
        key = f"holding/{asset}/{holder}".encode()
        value = bytes.fromhex(answer["value_cbor"]) if answer["value_cbor"] else None
        try:
            verify_state_proof(suite.hash, root, key, value,
                               StateProof.from_dict(answer["proof"]))
        except StateProofError as exc:
            raise ApiError(f"the node's state proof is invalid: {exc}", Code.UNAVAILABLE) from None
        record = cbor2.loads(value) if value is not None else {"q": 0, "p": 0, "f": 0}
        height = int(next(e for e in checkpoint.extensions if e.startswith("height "))[7:])
        return VerifiedHolding(asset, holder, record["q"], record["p"], record["f"], height,
                               signers)


class Account:
    """An account that signs and submits transactions, keeping track of its nonce."""

    def __init__(self, client: TallyClient, key: NamedKey, *, expiry_window: int = 1000) -> None:
        self.client = client
        self.key = key
        self.expiry_window = expiry_window
        self._nonce: int | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.key.address

    def sign(self, kind: str, payload: dict[str, Any], *, tier: int = 1) -> bytes:
        """Sign the next transaction (consumes a nonce locally)."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self.client.next_nonce(self.address)
            nonce = self._nonce
            self._nonce += 1
        height = self.client.status()["height"]
        return txmod.sign(self.key.key, chain=self.client.chain_id, nonce=nonce,
                          expiry=height + self.expiry_window, kind=kind, payload=payload,
                          tier=tier)

    def send(self, kind: str, payload: dict[str, Any], *, check: bool = True, tier: int = 1
             ) -> Receipt:
        try:
            receipt = self.client.submit(self.sign(kind, payload, tier=tier), wait=True)
        except ApiError:
            self._nonce = None  # re-read it: the node refused the nonce or the transaction
            raise
        assert isinstance(receipt, Receipt)
        return receipt.raise_for_code() if check else receipt

    # Custody operations, one method each, named as the transaction kinds.
    def issue(self, asset: str, *, asset_class: str, name: str, quantity: int,
              to: str | None = None, metadata_hash: bytes | None = None) -> Receipt:
        payload: dict[str, Any] = {"asset": asset, "class": asset_class, "name": name,
                                   "quantity": quantity}
        if to:
            payload["to"] = to
        if metadata_hash:
            payload["metadata_hash"] = metadata_hash
        return self.send("asset.issue", payload)

    def transfer(self, asset: str, *, to: str, quantity: int, holder: str | None = None,
                 memo: str | None = None) -> Receipt:
        payload: dict[str, Any] = {"asset": asset, "to": to, "quantity": quantity}
        if holder:
            payload["holder"] = holder
        if memo:
            payload["memo"] = memo
        return self.send("custody.transfer", payload)

    def pledge(self, asset: str, *, pledgee: str, quantity: int) -> Receipt:
        return self.send("custody.pledge", {"asset": asset, "pledgee": pledgee,
                                            "quantity": quantity})

    def release(self, pledge_id: str) -> Receipt:
        return self.send("custody.release", {"pledge": pledge_id})

    def enforce(self, pledge_id: str) -> Receipt:
        return self.send("custody.enforce", {"pledge": pledge_id})

    def freeze(self, asset: str, *, holder: str, quantity: int, reason: str) -> Receipt:
        return self.send("custody.freeze", {"asset": asset, "holder": holder,
                                            "quantity": quantity, "reason": reason})

    def unfreeze(self, freeze_id: str, reason: str | None = None) -> Receipt:
        payload = {"freeze": freeze_id} | ({"reason": reason} if reason else {})
        return self.send("custody.unfreeze", payload)

    def redeem(self, asset: str, *, quantity: int) -> Receipt:
        return self.send("asset.redeem", {"asset": asset, "quantity": quantity})

    def appoint_agent(self, agent: str) -> Receipt:
        return self.send("custody.appoint_agent", {"agent": agent})

    def attest(self, digest: bytes, *, title: str, asset: str | None = None) -> Receipt:
        payload: dict[str, Any] = {"hash": digest, "title": title}
        if asset:
            payload["asset"] = asset
        return self.send("document.attest", payload)

    def grant_role(self, account: str, role: str) -> Receipt:
        return self.send("role.grant", {"account": account, "role": role})

    # Governance and contracts.
    def propose(self, action: str, **args: Any) -> Receipt:
        """Propose a committee action (validator.set, contract.deploy, contract.upgrade)."""
        return self.send("gov.propose", {"action": action, **args})

    def approve(self, proposal_id: str) -> Receipt:
        return self.send("gov.approve", {"proposal": proposal_id})

    def call(self, contract: str, method: str, *args: Any, steps: int | None = None,
             check: bool = True) -> Receipt:
        """Call a contract method in a transaction; the receipt's ``result`` is its return."""
        payload: dict[str, Any] = {"contract": contract, "method": method, "args": list(args)}
        if steps is not None:
            payload["steps"] = steps
        return self.send("contract.call", payload, tier=2, check=check)
