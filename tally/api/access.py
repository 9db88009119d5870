"""Who is asking, and may they read this (docs/access.md, decision 0032).

A node serves its API in one of two modes (``tally node run --access``):

* ``open`` (the default): anyone may read and submit; nothing here runs. Right for a
  development chain without members, never for a consortium chain with customers.
* ``authenticated``: every request but the OpenAPI document is signed with a registered
  account's key (:mod:`tally.protocol.access`). :class:`AccessGuard` checks the
  signature against the key registered on chain, the timestamp (within ``window_s`` of
  the node's clock), the nonce (never twice in that window) and that the account may act
  now (:class:`tally.exec.registry.Subject`); any failure is 401 ``UNAUTHENTICATED``.
  Each route then asks :func:`may_read` whether that :class:`Requester` may see what it
  is about to answer; no is 403 ``FORBIDDEN``, and lists and the event stream leave out
  what it may not see.

The visibility rules, in one place (:func:`may_read`):

* :data:`PUBLIC` chain data — status, genesis, blocks, checkpoints, inclusion and
  consistency proofs, validator updates, members, the committee, proposals, policies,
  contract records and sources, metrics — to any authenticated identity;
* an account's record, identity, claims, nonce and roles (:class:`Account`) to that
  account, to the accounts of the same member, and to regulators;
* an asset, its holders and its history (:class:`Asset`) to the members of its issuer
  and of its current holders, and to regulators (an unknown asset: the route's 404);
* a custody event (:class:`EventOf`: pages, the stream, evidence bundles) to the members
  of its parties — the accounts in its ``from`` and ``to``, which are the sender and
  recipient of a transfer, pledgor and pledgee, holder and issuer — and to whoever may
  see its asset; governance and validator events are public;
* a transaction and its receipt (:class:`TxOf`) to its sender's member and to whoever
  may see one of its events;
* a state proof (:class:`StateKey`) by the key's owner: an account's keys as the account,
  an asset's and its holdings' as the asset (or the holder), governance keys public;
* everything else (:data:`REGULATORS`: contract queries, the commercial log, unknown
  state keys) to regulators only, until rules for them are written.

A regulator (role ``regulator``) sees everything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.api.guard import send_error
from tally.crypto import get_suite
from tally.errors import Code, NotFound, TallyError
from tally.node import Node
from tally.protocol import access as wire

MODES = ("open", "authenticated")
#: Paths served without a signature in authenticated mode: the API's own description.
OPEN_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: Where the guard leaves the authenticated account for the routes.
SCOPE_KEY = "tally.requester"
REGULATOR_ROLE = "regulator"


@dataclass(frozen=True)
class Requester:
    """An authenticated identity: a registered, active account of a member."""

    address: str
    member: str
    roles: tuple[str, ...]

    @property
    def regulator(self) -> bool:
        return REGULATOR_ROLE in self.roles


def unauthenticated(message: str) -> TallyError:
    return TallyError(message, Code.UNAUTHENTICATED)


def forbidden(message: str) -> TallyError:
    return TallyError(message, Code.FORBIDDEN)


class ReplayCache:
    """The (account, nonce) pairs seen within the window, each kept until its request's
    timestamp leaves the window; at most ``capacity`` of them (then new requests are
    refused 503 until old ones expire, rather than forgetting one that could replay)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: tuple[str, str], expires: float, now: float) -> bool | None:
        """True: new, remembered. False: seen before (a replay). None: full."""
        while self._expiry and self._expiry[0][0] < now:
            _, old = heapq.heappop(self._expiry)
            self._seen.discard(old)
        if key in self._seen:
            return False
        if len(self._seen) >= self.capacity:
            return None
        self._seen.add(key)
        heapq.heappush(self._expiry, (expires, key))
        return True


class AccessGuard:
    """Authenticates every request of an ``authenticated`` node (a pure ASGI
    middleware, inside the body guard: the body it hashes is already bounded)."""

    def __init__(self, app: ASGIApp, *, node: Node, window_s: int, replay_capacity: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.node = node
        self.window_s = window_s
        self.clock = clock
        self.replays = ReplayCache(replay_capacity)
        self.suite = get_suite(node.genesis.suite_name)
        self.chain = node.genesis.chain_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
        try:
            who = await self.authenticate(scope, body)
        except TallyError as exc:
            status = 503 if exc.code is Code.UNAVAILABLE else 401
            await send_error(send, status, exc.code, exc.message, headers=[
                (b"www-authenticate", f'Tally-Signature chain="{self.chain}"'.encode()),
                (wire.CHAIN.lower().encode(), self.chain.encode())])
            return
        scope.setdefault("state", {})[SCOPE_KEY] = who
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def authenticate(self, scope: Scope, body: bytes) -> Requester:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope["headers"]}
        values = [headers.get(name.lower()) for name in wire.HEADERS]
        if any(v is None for v in values):
            missing = [n for n, v in zip(wire.HEADERS, values, strict=True) if v is None]
            raise unauthenticated(
                f"this node serves only signed requests: {', '.join(missing)} missing "
                f"(sign with a registered account's key for chain {self.chain}; "
                "docs/access.md)")
        account, stamp, nonce, signature_b64 = (str(v) for v in values)
        if not wire.ADDRESS_RE.match(account):
            raise unauthenticated(f"{wire.ACCOUNT} must be 40 lowercase hex digits")
        if not stamp.isdigit() or len(stamp) > 12:
            raise unauthenticated(f"{wire.TIMESTAMP} must be Unix seconds")
        if not wire.NONCE_RE.match(nonce):
            raise unauthenticated(f"{wire.NONCE} must be 16 to 64 characters of "
                                  "A-Z a-z 0-9 _ -")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise unauthenticated(f"{wire.SIGNATURE} must be base64") from None
        now = self.clock()
        timestamp = int(stamp)
        if abs(now - timestamp) > self.window_s:
            raise unauthenticated(
                f"{wire.TIMESTAMP} {timestamp} is {now - timestamp:+.0f} s from the node's "
                f"clock; a signed request must be within ±{self.window_s} s of it")
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        message = wire.canonical(chain=self.chain, method=scope["method"],
                                 target=target.decode("latin-1"),
                                 body_hash=self.suite.hash(body), account=account,
                                 timestamp=timestamp, nonce=nonce)
        identity = await asyncio.to_thread(self._identity, account)
        if identity is None:
            raise unauthenticated(f"account {account} is not registered on chain "
                                  f"{self.chain}")
        if not self.suite.verify(bytes.fromhex(identity["key"]), message, signature):
            raise unauthenticated(
                f"the signature does not verify with account {account}'s registered key "
                f"(signed for another chain than {self.chain}, another request, or "
                "another key?)")
        if not identity["active"]:
            raise unauthenticated(f"account {account} may not act: {identity['why_not']}")
        fresh = self.replays.add((account, nonce), timestamp + self.window_s, now)
        if fresh is None:
            raise TallyError("too many signed requests in the replay window: retry later",
                             Code.UNAVAILABLE)
        if not fresh:
            raise unauthenticated(f"{wire.NONCE} {nonce} was already used by account "
                                  f"{account}: a replayed request")
        return Requester(account, identity["member"], tuple(identity["roles"]))

    def _identity(self, address: str) -> dict[str, Any] | None:
        try:
            return self.node.reader.identity(address)
        except NotFound:
            return None


# --- what a requester may read ---------------------------------------------------------

@dataclass(frozen=True)
class _Public:
    pass


@dataclass(frozen=True)
class _Regulators:
    what: str


@dataclass(frozen=True)
class Account:
    address: str


@dataclass(frozen=True)
class Asset:
    asset: str


@dataclass(frozen=True)
class EventOf:
    event: dict[str, Any]


@dataclass(frozen=True)
class TxOf:
    tx_id: str


@dataclass(frozen=True)
class StateKey:
    key: str


PUBLIC = _Public()
Readable = _Public | _Regulators | Account | Asset | EventOf | TxOf | StateKey


def regulators(what: str) -> _Regulators:
    return _Regulators(what)


#: Event types any authenticated identity sees: governance, membership and validators.
PUBLIC_EVENT_PREFIXES = ("validator.", "gov.", "member.", "committee.", "upgrade.",
                         "params.", "role.define", "claim.topic")
#: State keys any authenticated identity may prove: membership and governance.
PUBLIC_STATE_PREFIXES = ("member/", "ca/", "policy/", "proposal/", "topic/",
                         "contract/", "contract_src/", "issuerkey/", "revoked/", "serial/")
#: State keys that belong to the account named right after the prefix.
ACCOUNT_STATE_PREFIXES = ("account/", "role/", "nonce/", "claim/", "agent/")


@dataclass
class Viewer:
    """One requester's view, with the lookups of one answer memoised."""

    node: Node
    who: Requester
    _members: dict[str, str | None] = field(default_factory=dict)
    _assets: dict[str, bool] = field(default_factory=dict)

    def member_of(self, address: Any) -> str | None:
        if not isinstance(address, str) or not wire.ADDRESS_RE.match(address):
            return None
        if address not in self._members:
            try:
                self._members[address] = self.node.reader.identity(address)["member"]
            except TallyError:
                self._members[address] = None
        return self._members[address]

    def ours(self, addresses: Iterable[Any]) -> bool:
        return any(a == self.who.address or self.member_of(a) == self.who.member
                   for a in addresses if a)

    def may_read(self, what: Readable) -> bool:
        if self.who.regulator or isinstance(what, _Public):
            return True
        match what:
            case Account(address):
                return self.ours([address])
            case Asset(asset):
                return self._asset(asset)
            case EventOf(event):
                kind = str(event.get("type", ""))
                if kind.startswith(PUBLIC_EVENT_PREFIXES):
                    return True
                if self.ours([event.get("from"), event.get("to")]):
                    return True
                asset = event.get("asset")
                return isinstance(asset, str) and self._asset(asset)
            case TxOf(tx_id):
                tx = self.node.reader.transaction(tx_id)
                return self.ours([tx["sender"]]) or any(
                    self.may_read(EventOf(e)) for e in tx["events"])
            case StateKey(key):
                return self._state_key(key)
        return False

    def _asset(self, asset: str) -> bool:
        if asset not in self._assets:
            try:
                record = self.node.reader.asset(asset)
            except NotFound:
                self._assets[asset] = True  # nothing to see: the route answers 404
            else:
                self._assets[asset] = self.ours([record.get("issuer"),
                                                 *record.get("holders", {})])
        return self._assets[asset]

    def _state_key(self, key: str) -> bool:
        if key.startswith(PUBLIC_STATE_PREFIXES):
            return True
        for prefix in ACCOUNT_STATE_PREFIXES:
            if key.startswith(prefix):
                return self.ours([key[len(prefix):].split("/", 1)[0]])
        if key.startswith("asset/"):
            return self._asset(key[len("asset/"):])
        if key.startswith("holding/"):
            parts = key.split("/")
            if len(parts) == 3:
                return self.ours([parts[2]]) or self._asset(parts[1])
        return False


def requester(request: Request) -> Requester | None:
    """The authenticated identity of a request; None on an ``open`` node."""
    return request.scope.get("state", {}).get(SCOPE_KEY)


def _describe(what: Readable) -> str:
    match what:
        case Account(address):
            return f"account {address}'s records"
        case Asset(asset):
            return f"asset {asset!r}"
        case EventOf(event):
            return f"event {event.get('log_index')}"
        case TxOf(tx_id):
            return f"transaction {tx_id}"
        case StateKey(key):
            return f"state key {key!r}"
        case _Regulators(name):
            return name
    return "this"


def check(request: Request, what: Readable) -> None:
    """Refuse (403 ``FORBIDDEN``) a read the request's identity may not make; nothing
    on an ``open`` node. Call it from a route's worker thread (it may read state)."""
    who = requester(request)
    if who is None:
        return
    if not Viewer(request.app.state.node, who).may_read(what):
        scope = ("only regulators may read it" if isinstance(what, _Regulators) else
                 "it is visible to the members party to it and to regulators")
        raise forbidden(f"account {who.address} (member {who.member}) may not read "
                        f"{_describe(what)}: {scope}")


def visible(request: Request, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of a list the request's identity may see (all on an ``open`` node)."""
    who = requester(request)
    if who is None:
        return events
    viewer = Viewer(request.app.state.node, who)
    return [e for e in events if viewer.may_read(EventOf(e))]
