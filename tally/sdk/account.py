"""Signing accounts: build, sign and submit transactions, keeping track of the nonce.

The operations (``issue``, ``transfer``, ``pledge``... one per transaction kind) are
written once, in :class:`Operations`, which only builds payloads; what an operation
returns depends on who sends it:

* ``Account.transfer(...)`` waits for the block and returns the
  :class:`~tally.protocol.receipt.Receipt` (raising the typed error of a failure);
* ``Account.nowait.transfer(...)`` returns the transaction id once admitted;
* ``AsyncAccount`` offers the same two, to be awaited.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from tally import tx as txmod
from tally.errors import TallyError
from tally.keys import NamedKey
from tally.protocol.receipt import Receipt

if TYPE_CHECKING:
    from tally.protocol.http import GenesisDocument, Status


class TallyClient(Protocol):
    """What an :class:`Account` needs of its client (tally.sdk.client.TallyClient)."""

    @property
    def chain_id(self) -> str: ...
    def next_nonce(self, address: str) -> int: ...
    def status(self) -> Status: ...
    def submit(self, raw: bytes) -> str: ...
    def submit_and_wait(self, raw: bytes) -> Receipt: ...


class AsyncTallyClient(Protocol):
    """What an :class:`AsyncAccount` needs of its client (tally.sdk.client's async one)."""

    async def next_nonce(self, address: str) -> int: ...
    async def genesis(self) -> GenesisDocument: ...
    async def status(self) -> Status: ...
    async def submit(self, raw: bytes) -> str: ...
    async def submit_and_wait(self, raw: bytes) -> Receipt: ...

R = TypeVar("R")


class Operations(Generic[R]):
    """Every transaction kind as a method; ``_op`` decides how it is sent."""

    def _op(self, kind: str, payload: dict[str, Any], *, tier: int = 1, check: bool = True
            ) -> R:
        raise NotImplementedError

    # Custody operations, one method each, named as the transaction kinds.
    def issue(self, asset: str, *, asset_class: str, name: str, quantity: int,
              to: str | None = None, metadata_hash: bytes | None = None) -> R:
        payload: dict[str, Any] = {"asset": asset, "class": asset_class, "name": name,
                                   "quantity": quantity}
        if to:
            payload["to"] = to
        if metadata_hash:
            payload["metadata_hash"] = metadata_hash
        return self._op("asset.issue", payload)

    def transfer(self, asset: str, *, to: str, quantity: int, holder: str | None = None,
                 memo: str | None = None) -> R:
        payload: dict[str, Any] = {"asset": asset, "to": to, "quantity": quantity}
        if holder:
            payload["holder"] = holder
        if memo:
            payload["memo"] = memo
        return self._op("custody.transfer", payload)

    def pledge(self, asset: str, *, pledgee: str, quantity: int) -> R:
        return self._op("custody.pledge", {"asset": asset, "pledgee": pledgee,
                                           "quantity": quantity})

    def release(self, pledge_id: str) -> R:
        return self._op("custody.release", {"pledge": pledge_id})

    def enforce(self, pledge_id: str) -> R:
        return self._op("custody.enforce", {"pledge": pledge_id})

    def freeze(self, asset: str, *, holder: str, quantity: int, reason: str) -> R:
        return self._op("custody.freeze", {"asset": asset, "holder": holder,
                                           "quantity": quantity, "reason": reason})

    def unfreeze(self, freeze_id: str, reason: str | None = None) -> R:
        payload = {"freeze": freeze_id} | ({"reason": reason} if reason else {})
        return self._op("custody.unfreeze", payload)

    def redeem(self, asset: str, *, quantity: int) -> R:
        return self._op("asset.redeem", {"asset": asset, "quantity": quantity})

    def appoint_agent(self, agent: str) -> R:
        return self._op("custody.appoint_agent", {"agent": agent})

    def attest(self, digest: bytes, *, title: str, asset: str | None = None) -> R:
        payload: dict[str, Any] = {"hash": digest, "title": title}
        if asset:
            payload["asset"] = asset
        return self._op("document.attest", payload)

    def grant_role(self, account: str, role: str) -> R:
        """Protocol versions 1-3: an admin grants a role. From version 4 roles change only
        by proposal: ``propose("role.grant", account=..., role=...)``."""
        return self._op("role.grant", {"account": account, "role": role})

    # Identities (protocol version 4).
    def register_account(self, certificate: bytes, *, commitment: bytes, kyc: int,
                         chain: list[bytes] | None = None) -> R:
        """A registrar registers the account its member's CA certified (PEM or DER);
        ``commitment`` is :func:`tally.identity.commitment.commit` of the person's data."""
        payload: dict[str, Any] = {"certificate": certificate, "commitment": commitment,
                                   "kyc": kyc}
        if chain:
            payload["chain"] = list(chain)
        return self._op("account.register", payload)

    def freeze_account(self, account: str, reason: str = "") -> R:
        return self._op("account.freeze", {"account": account, "reason": reason})

    def unfreeze_account(self, account: str, reason: str = "") -> R:
        return self._op("account.unfreeze", {"account": account, "reason": reason})

    def close_account(self, account: str, reason: str = "") -> R:
        return self._op("account.close", {"account": account, "reason": reason})

    def rotate_key(self, certificate: bytes, *, assets: list[str] | None = None,
                   chain: list[bytes] | None = None) -> R:
        """This account moves to the key ``certificate`` certifies, taking ``assets``."""
        payload: dict[str, Any] = {"certificate": certificate, "assets": list(assets or [])}
        if chain:
            payload["chain"] = list(chain)
        return self._op("account.rotate", payload)

    def recover_account(self, account: str, certificate: bytes, *, reason: str,
                        assets: list[str] | None = None) -> R:
        return self._op("account.recover", {"account": account, "certificate": certificate,
                                            "reason": reason, "assets": list(assets or [])})

    def revoke_certificate(self, issuer: str, serial: int, reason: str = "") -> R:
        return self._op("cert.revoke", {"issuer": issuer, "serial": serial, "reason": reason})

    def issue_claim(self, subject: str, topic: str, value: int | str, *,
                    expires_ms: int | None = None) -> R:
        payload: dict[str, Any] = {"subject": subject, "topic": topic, "value": value}
        if expires_ms is not None:
            payload["expires_ms"] = expires_ms
        return self._op("claim.issue", payload)

    def revoke_claim(self, subject: str, topic: str, reason: str = "") -> R:
        return self._op("claim.revoke", {"subject": subject, "topic": topic, "reason": reason})

    # Governance and contracts.
    def propose(self, action: str, **args: Any) -> R:
        """Propose a committee action (validator.set, contract.deploy, contract.upgrade)."""
        return self._op("gov.propose", {"action": action, **args})

    def approve(self, proposal_id: str) -> R:
        return self._op("gov.approve", {"proposal": proposal_id})

    def vote(self, proposal_id: str, vote: str) -> R:
        """Version 4: vote ``for`` or ``against`` a proposal."""
        return self._op("gov.vote", {"proposal": proposal_id, "vote": vote})

    def withdraw(self, proposal_id: str) -> R:
        """Version 4: the proposer withdraws its open proposal."""
        return self._op("gov.withdraw", {"proposal": proposal_id})

    def call(self, contract: str, method: str, *args: Any, steps: int | None = None,
             check: bool = True) -> R:
        """Call a contract method in a transaction; the receipt's ``result`` is its return."""
        payload: dict[str, Any] = {"contract": contract, "method": method, "args": list(args)}
        if steps is not None:
            payload["steps"] = steps
        return self._op("contract.call", payload, tier=2, check=check)


class _Nonces:
    """The account's next nonce, read from the node once and then counted locally."""

    def __init__(self) -> None:
        self.next: int | None = None
        self.lock = threading.Lock()

    def take(self, committed: int) -> int:
        with self.lock:
            if self.next is None:
                self.next = committed
            nonce = self.next
            self.next += 1
            return nonce

    def forget(self) -> None:
        """Re-read it next time: the node refused the nonce or the transaction."""
        self.next = None


class Account(Operations[Receipt]):
    """An account that signs and submits through a :class:`TallyClient`; its operations
    wait for the block and return the receipt."""

    def __init__(self, client: TallyClient, key: NamedKey, *, expiry_window: int = 1000
                 ) -> None:
        self.client = client
        self.key = key
        self.expiry_window = expiry_window
        self._nonces = _Nonces()

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def nowait(self) -> Operations[str]:
        """The same operations, returning the transaction id once admitted."""
        return _NoWait(self)

    def sign(self, kind: str, payload: dict[str, Any], *, tier: int = 1) -> bytes:
        """Sign the next transaction (consumes a nonce locally)."""
        committed = None if self._nonces.next is not None else \
            self.client.next_nonce(self.address)
        nonce = self._nonces.take(committed or 0)
        return txmod.sign(self.key.key, chain=self.client.chain_id, nonce=nonce,
                          expiry=self.client.status().height + self.expiry_window,
                          kind=kind, payload=payload, tier=tier)

    def submit(self, kind: str, payload: dict[str, Any], *, tier: int = 1) -> str:
        """Sign and submit; the transaction id once admitted (not yet committed)."""
        try:
            return self.client.submit(self.sign(kind, payload, tier=tier))
        except TallyError:
            self._nonces.forget()
            raise

    def send(self, kind: str, payload: dict[str, Any], *, check: bool = True, tier: int = 1
             ) -> Receipt:
        """Sign, submit and wait for the block; with ``check`` a failed transaction raises
        its typed error, else its receipt is returned as it is."""
        try:
            receipt = self.client.submit_and_wait(self.sign(kind, payload, tier=tier))
        except TallyError:
            self._nonces.forget()
            raise
        return receipt.raise_for_code() if check else receipt

    def _op(self, kind: str, payload: dict[str, Any], *, tier: int = 1, check: bool = True
            ) -> Receipt:
        return self.send(kind, payload, tier=tier, check=check)


class _NoWait(Operations[str]):
    def __init__(self, account: Account) -> None:
        self.account = account

    def _op(self, kind: str, payload: dict[str, Any], *, tier: int = 1, check: bool = True
            ) -> str:
        return self.account.submit(kind, payload, tier=tier)


class AsyncAccount(Operations[Awaitable[Receipt]]):
    """An account that signs and submits through an :class:`AsyncTallyClient`; await its
    operations (``await alice.transfer(...)``, ``await alice.nowait.transfer(...)``)."""

    def __init__(self, client: AsyncTallyClient, key: NamedKey, *,
                 expiry_window: int = 1000) -> None:
        self.client = client
        self.key = key
        self.expiry_window = expiry_window
        self._nonces = _Nonces()

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def nowait(self) -> Operations[Awaitable[str]]:
        return _AsyncNoWait(self)

    async def sign(self, kind: str, payload: dict[str, Any], *, tier: int = 1) -> bytes:
        committed = None if self._nonces.next is not None else \
            await self.client.next_nonce(self.address)
        nonce = self._nonces.take(committed or 0)
        genesis, status = await self.client.genesis(), await self.client.status()
        return txmod.sign(self.key.key, chain=genesis.chain_id, nonce=nonce,
                          expiry=status.height + self.expiry_window, kind=kind,
                          payload=payload, tier=tier)

    async def submit(self, kind: str, payload: dict[str, Any], *, tier: int = 1) -> str:
        try:
            return await self.client.submit(await self.sign(kind, payload, tier=tier))
        except TallyError:
            self._nonces.forget()
            raise

    async def send(self, kind: str, payload: dict[str, Any], *, check: bool = True,
                   tier: int = 1) -> Receipt:
        try:
            receipt = await self.client.submit_and_wait(
                await self.sign(kind, payload, tier=tier))
        except TallyError:
            self._nonces.forget()
            raise
        return receipt.raise_for_code() if check else receipt

    def _op(self, kind: str, payload: dict[str, Any], *, tier: int = 1, check: bool = True
            ) -> Awaitable[Receipt]:
        return self.send(kind, payload, tier=tier, check=check)


class _AsyncNoWait(Operations[Awaitable[str]]):
    def __init__(self, account: AsyncAccount) -> None:
        self.account = account

    def _op(self, kind: str, payload: dict[str, Any], *, tier: int = 1, check: bool = True
            ) -> Awaitable[str]:
        return self.account.submit(kind, payload, tier=tier)
