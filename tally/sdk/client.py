"""The Python SDK: typed clients for a Tally node, sync and async, and signing accounts.

    client = TallyClient("http://127.0.0.1:26680")
    alice = client.account(tally.keys.load("alice.json"))
    receipt = alice.transfer("BOND-2030", to=bob_address, quantity=100)   # waits
    tx_id = alice.nowait.transfer("BOND-2030", to=bob_address, quantity=1)  # admitted

    async with AsyncTallyClient("http://127.0.0.1:26680") as client:
        status = await client.status()

Every answer is typed (:mod:`tally.protocol.http`, the API's own response models, and the
one :class:`~tally.protocol.receipt.Receipt`). Every failure is a
:class:`~tally.errors.TallyError`: a refusal is the type :func:`tally.errors.error_for`
gives its code (``TxRejected``, ``NotFound``, ``ExecutionFailed``...), an unreachable node
is :class:`NodeUnreachable`, and a proven read whose proof does not verify is
:class:`~tally.errors.VerificationFailed`, never confused with an unreachable node.

Reads that matter can be *verified*: :meth:`TallyClient.verified_holding` checks the
node's answer against a checkpoint signed by the validators of the pinned genesis, so a
client need not trust the node it asks.

Both clients send the same :class:`~tally.sdk.calls.Call` objects (request and parser)
that :class:`~tally.sdk.calls.Endpoints` builds; they differ only in how they wait.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import httpx

from tally.crypto import Suite, get_suite
from tally.errors import TallyError, Unavailable
from tally.evidence.verify import Verdict
from tally.keys import NamedKey
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
from tally.sdk.account import Account, AsyncAccount
from tally.sdk.auth import SignedRequests
from tally.sdk.calls import (
    Call,
    Endpoints,
    NodeUnreachable,
    VerifiedHolding,
    VerifiedState,
    event_of_sse,
    raise_for_answer,
    verify_evidence,
    verify_holding,
    verify_state,
)

T = TypeVar("T")


def _unreachable(base_url: str, exc: Exception) -> NodeUnreachable:
    return NodeUnreachable(f"cannot reach the node at {base_url}: {exc}")


def _only_committed(results: list[Receipt | str | TallyError]) -> list[Receipt | TallyError]:
    return [Unavailable(f"transaction {r} was admitted but not committed in time")
            if isinstance(r, str) else r for r in results]


class _Base:
    def __init__(self, base_url: str, genesis_hash: str | None) -> None:
        self.api = Endpoints(base_url)
        self._pinned = genesis_hash
        self._genesis: GenesisDocument | None = None


def _auth(signer: NamedKey | None, chain: str | None) -> SignedRequests | None:
    return None if signer is None else SignedRequests(signer, chain)


def _verify(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    """A CA file's path as the TLS context that trusts it (httpx deprecates the path)."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


class TallyClient(_Base):
    """A synchronous client (``httpx.Client``); safe to share between threads.

    ``signer``: sign every request with this account key (an authenticated node,
    docs/access.md); ``chain``: the chain id to sign for (learnt from the node when not
    given); ``verify``: TLS verification as httpx takes it (a CA file's path, an
    ``ssl.SSLContext``, ``True`` for the system's CAs)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0,
                 genesis_hash: str | None = None,
                 transport: httpx.BaseTransport | None = None,
                 signer: NamedKey | None = None, chain: str | None = None,
                 verify: ssl.SSLContext | str | bool = True) -> None:
        super().__init__(base_url, genesis_hash)
        self._http = httpx.Client(timeout=timeout, transport=transport,
                                  auth=_auth(signer, chain), verify=_verify(verify))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TallyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        try:
            response = self._http.send(call.request)
        except httpx.TransportError as exc:
            raise _unreachable(self.api.base_url, exc) from exc
        return call.finish(response)

    # --- chain facts ------------------------------------------------------------------

    def status(self) -> Status:
        return self.run(self.api.status())

    def genesis(self) -> GenesisDocument:
        """The genesis document, checked against the pinned hash when one was given."""
        if self._genesis is None:
            self._genesis = self.run(self.api.genesis(self._pinned))
        return self._genesis

    @property
    def suite(self) -> Suite:
        return get_suite(self.genesis().suite)

    @property
    def chain_id(self) -> str:
        return self.genesis().chain_id

    # --- transactions -----------------------------------------------------------------

    def submit(self, raw: bytes) -> str:
        """Submit a signed transaction; its id once admitted (not yet committed)."""
        return self.run(self.api.submit(raw))

    def submit_and_wait(self, raw: bytes) -> Receipt:
        """Submit and wait until its block is durable; a failure in the block is a
        receipt with its code (see ``Receipt.raise_for_code``), not an exception."""
        return self.run(self.api.submit_and_wait(raw))

    def submit_batch(self, raws: list[bytes]) -> list[str | TallyError]:
        """Submit many; per transaction, its id (admitted) or the error refusing it."""
        return [r for r in self.run(self.api.submit_batch(raws, wait=False))
                if not isinstance(r, Receipt)]

    def submit_batch_and_wait(self, raws: list[bytes]) -> list[Receipt | TallyError]:
        """Submit many and wait; per transaction, its receipt or the error refusing it."""
        return _only_committed(self.run(self.api.submit_batch(raws, wait=True)))

    def tx(self, tx_id: str) -> Transaction:
        return self.run(self.api.tx(tx_id))

    def receipt(self, tx_id: str) -> Receipt:
        return self.run(self.api.receipt(tx_id))

    def account(self, key: NamedKey) -> Account:
        """An account that signs with ``key`` and submits through this client."""
        return Account(self, key)

    def account_info(self, address: str) -> AccountInfo:
        return self.run(self.api.account_info(address))

    def next_nonce(self, address: str) -> int:
        return self.account_info(address).nonce

    # --- reads ------------------------------------------------------------------------

    def block(self, height: int | str = "latest") -> Block:
        return self.run(self.api.block(height))

    def checkpoint(self, height: int) -> str:
        return self.run(self.api.checkpoint(height))

    def asset(self, asset: str) -> Asset:
        return self.run(self.api.asset(asset))

    def history(self, asset: str, after: int = -1, limit: int = 1000) -> list[Event]:
        return self.run(self.api.history(asset, after, limit))

    def holding(self, asset: str, holder: str) -> StateProof:
        """A holding with its proof, unchecked; see :meth:`verified_holding`."""
        return self.run(self.api.holding(asset, holder))

    def state(self, key: str) -> StateProof:
        """Any state key's value or absence with its proof, unchecked."""
        return self.run(self.api.state(key))

    def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        return self.run(self.api.inclusion_proof(index, size))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        return self.run(self.api.consistency_proof(first, second))

    def events(self, after: int = -1, limit: int = 1000) -> list[Event]:
        return self.run(self.api.events(after, limit))

    def stream_events(self, after: int = -1) -> Iterator[Event]:
        """Committed events as they happen (server-sent events); runs until closed."""
        try:
            response = self._http.send(self.api.stream_events(after), stream=True)
        except httpx.TransportError as exc:
            raise _unreachable(self.api.base_url, exc) from exc
        try:
            if response.status_code >= 400:
                response.read()
            raise_for_answer(response)
            for line in response.iter_lines():
                event = event_of_sse(line)
                if event is not None:
                    yield event
        finally:
            response.close()

    def evidence(self, event_index: int, *, consistency: bool = False) -> EvidenceBundle:
        """The evidence bundle of a custody event, unchecked (``bundle.to_dict()`` is the
        JSON document ``tally verify`` reads); see :meth:`verified_evidence`."""
        return self.run(self.api.evidence(event_index, consistency))

    def contract(self, name: str) -> Contract:
        return self.run(self.api.contract(name))

    def contract_source(self, name: str, version: int | None = None) -> str:
        return self.run(self.api.contract_source(name, version))

    def query(self, contract: str, method: str, *args: Any) -> Any:
        """Run a contract's @view method against the latest block."""
        return self.run(self.api.query(contract, method, list(args)))

    def commercial_events(self, after: int = -1, contract: str | None = None,
                          limit: int = 1000) -> list[CommercialEvent]:
        return self.run(self.api.commercial_events(after, limit, contract))

    def commercial_evidence(self, index: int, *, consistency: bool = False) -> EvidenceBundle:
        return self.run(self.api.commercial_evidence(index, consistency))

    # --- verified reads: raise VerificationFailed when the proof does not hold --------

    def verified_state(self, key: str) -> VerifiedState:
        """A state value checked against a validator-signed checkpoint: trust no node."""
        return verify_state(self.state(key), self.genesis(), key)

    def verified_holding(self, asset: str, holder: str) -> VerifiedHolding:
        """A holding checked against a validator-signed checkpoint: trust no node."""
        return verify_holding(self.holding(asset, holder), self.genesis(), asset, holder)

    def verified_evidence(self, event_index: int, *, consistency: bool = False
                          ) -> tuple[EvidenceBundle, Verdict]:
        """An evidence bundle and what it proves, checked as ``tally verify`` would."""
        bundle = self.evidence(event_index, consistency=consistency)
        return bundle, verify_evidence(bundle, self.genesis().hash)

    # --- identities and governance (protocol version 4) -------------------------------

    def members(self, limit: int = 1000) -> list[Member]:
        return self.run(self.api.members(limit))

    def member(self, member_id: str) -> MemberDetail:
        return self.run(self.api.member(member_id))

    def identity(self, address: str) -> Identity:
        """Who a registered account is (NotFound if it is not registered)."""
        return self.run(self.api.identity(address))

    def claims(self, address: str, limit: int = 256) -> Claims:
        return self.run(self.api.claims(address, limit))

    def proposals(self, status: str = "open", limit: int = 256) -> list[Proposal]:
        return self.run(self.api.proposals(status, limit))

    def proposal(self, proposal_id: str) -> Proposal:
        return self.run(self.api.proposal(proposal_id))

    def policy(self, resource: str) -> Policy:
        return self.run(self.api.policy(resource))

    def may(self, account: str, resource: str) -> MayVerdict:
        """May ``account`` act on ``resource`` now, and why (tally.exec.policy.may)."""
        return self.run(self.api.may(account, resource))

    def committee(self) -> Committee:
        return self.run(self.api.committee())

    def alerts(self, status: str | None = None, limit: int = 1000) -> list[AlertModel]:
        """The node's alerts (a node run with ``--alerts``; docs/supervision.md)."""
        return self.run(self.api.alerts(status, limit))

    def acknowledge_alert(self, alert_id: int, by: str) -> AlertModel:
        """Acknowledge an open alert as ``by``; on an authenticated node the signer's
        address is recorded instead."""
        return self.run(self.api.acknowledge_alert(alert_id, by))


class AsyncTallyClient(_Base):
    """An asynchronous client (``httpx.AsyncClient``): the same calls, awaited."""

    def __init__(self, base_url: str, *, timeout: float = 60.0,
                 genesis_hash: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 signer: NamedKey | None = None, chain: str | None = None,
                 verify: ssl.SSLContext | str | bool = True) -> None:
        super().__init__(base_url, genesis_hash)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport,
                                       auth=_auth(signer, chain), verify=_verify(verify))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTallyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        try:
            response = await self._http.send(call.request)
        except httpx.TransportError as exc:
            raise _unreachable(self.api.base_url, exc) from exc
        return call.finish(response)

    async def status(self) -> Status:
        return await self.run(self.api.status())

    async def genesis(self) -> GenesisDocument:
        if self._genesis is None:
            self._genesis = await self.run(self.api.genesis(self._pinned))
        return self._genesis

    async def submit(self, raw: bytes) -> str:
        return await self.run(self.api.submit(raw))

    async def submit_and_wait(self, raw: bytes) -> Receipt:
        return await self.run(self.api.submit_and_wait(raw))

    async def submit_batch(self, raws: list[bytes]) -> list[str | TallyError]:
        return [r for r in await self.run(self.api.submit_batch(raws, wait=False))
                if not isinstance(r, Receipt)]

    async def submit_batch_and_wait(self, raws: list[bytes]) -> list[Receipt | TallyError]:
        return _only_committed(await self.run(self.api.submit_batch(raws, wait=True)))

    async def tx(self, tx_id: str) -> Transaction:
        return await self.run(self.api.tx(tx_id))

    async def receipt(self, tx_id: str) -> Receipt:
        return await self.run(self.api.receipt(tx_id))

    def account(self, key: NamedKey) -> AsyncAccount:
        return AsyncAccount(self, key)

    async def account_info(self, address: str) -> AccountInfo:
        return await self.run(self.api.account_info(address))

    async def next_nonce(self, address: str) -> int:
        return (await self.account_info(address)).nonce

    async def block(self, height: int | str = "latest") -> Block:
        return await self.run(self.api.block(height))

    async def checkpoint(self, height: int) -> str:
        return await self.run(self.api.checkpoint(height))

    async def asset(self, asset: str) -> Asset:
        return await self.run(self.api.asset(asset))

    async def history(self, asset: str, after: int = -1, limit: int = 1000) -> list[Event]:
        return await self.run(self.api.history(asset, after, limit))

    async def holding(self, asset: str, holder: str) -> StateProof:
        return await self.run(self.api.holding(asset, holder))

    async def state(self, key: str) -> StateProof:
        return await self.run(self.api.state(key))

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        return await self.run(self.api.inclusion_proof(index, size))

    async def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        return await self.run(self.api.consistency_proof(first, second))

    async def events(self, after: int = -1, limit: int = 1000) -> list[Event]:
        return await self.run(self.api.events(after, limit))

    async def stream_events(self, after: int = -1) -> AsyncIterator[Event]:
        try:
            response = await self._http.send(self.api.stream_events(after), stream=True)
        except httpx.TransportError as exc:
            raise _unreachable(self.api.base_url, exc) from exc
        try:
            if response.status_code >= 400:
                await response.aread()
            raise_for_answer(response)
            async for line in response.aiter_lines():
                event = event_of_sse(line)
                if event is not None:
                    yield event
        finally:
            await response.aclose()

    async def evidence(self, event_index: int, *, consistency: bool = False
                       ) -> EvidenceBundle:
        return await self.run(self.api.evidence(event_index, consistency))

    async def contract(self, name: str) -> Contract:
        return await self.run(self.api.contract(name))

    async def contract_source(self, name: str, version: int | None = None) -> str:
        return await self.run(self.api.contract_source(name, version))

    async def query(self, contract: str, method: str, *args: Any) -> Any:
        return await self.run(self.api.query(contract, method, list(args)))

    async def commercial_events(self, after: int = -1, contract: str | None = None,
                                limit: int = 1000) -> list[CommercialEvent]:
        return await self.run(self.api.commercial_events(after, limit, contract))

    async def commercial_evidence(self, index: int, *, consistency: bool = False
                                  ) -> EvidenceBundle:
        return await self.run(self.api.commercial_evidence(index, consistency))

    async def verified_state(self, key: str) -> VerifiedState:
        return verify_state(await self.state(key), await self.genesis(), key)

    async def verified_holding(self, asset: str, holder: str) -> VerifiedHolding:
        return verify_holding(await self.holding(asset, holder), await self.genesis(),
                              asset, holder)

    async def verified_evidence(self, event_index: int, *, consistency: bool = False
                                ) -> tuple[EvidenceBundle, Verdict]:
        bundle = await self.evidence(event_index, consistency=consistency)
        return bundle, verify_evidence(bundle, (await self.genesis()).hash)

    # --- identities and governance (protocol version 4) -------------------------------

    async def members(self, limit: int = 1000) -> list[Member]:
        return await self.run(self.api.members(limit))

    async def member(self, member_id: str) -> MemberDetail:
        return await self.run(self.api.member(member_id))

    async def identity(self, address: str) -> Identity:
        """Who a registered account is (NotFound if it is not registered)."""
        return await self.run(self.api.identity(address))

    async def claims(self, address: str, limit: int = 256) -> Claims:
        return await self.run(self.api.claims(address, limit))

    async def proposals(self, status: str = "open", limit: int = 256) -> list[Proposal]:
        return await self.run(self.api.proposals(status, limit))

    async def proposal(self, proposal_id: str) -> Proposal:
        return await self.run(self.api.proposal(proposal_id))

    async def policy(self, resource: str) -> Policy:
        return await self.run(self.api.policy(resource))

    async def may(self, account: str, resource: str) -> MayVerdict:
        """May ``account`` act on ``resource`` now, and why (tally.exec.policy.may)."""
        return await self.run(self.api.may(account, resource))

    async def committee(self) -> Committee:
        return await self.run(self.api.committee())

    async def alerts(self, status: str | None = None, limit: int = 1000
                     ) -> list[AlertModel]:
        return await self.run(self.api.alerts(status, limit))

    async def acknowledge_alert(self, alert_id: int, by: str) -> AlertModel:
        return await self.run(self.api.acknowledge_alert(alert_id, by))
