"""A running solo node with named accounts, and helpers to sign and send: the chain most
integration tests run against (the fixtures in tests/conftest.py build it)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tally import tx as txmod
from tally.crypto import get_suite
from tally.genesis import Genesis, Params, make_genesis
from tally.keys import NamedKey, generate
from tally.node import Node
from tally.protocol.versions import IDENTITY, LATEST_VERSION

CHAIN = "test-chain"
GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Chain:
    """A running solo node with named accounts, and helpers to sign and send."""

    def __init__(self, tmp: Path, suite_name: str, params: Params | None = None,
                 protocol_version: int = LATEST_VERSION, *,
                 keys_from: Chain | None = None, genesis_time: int = GENESIS_TIME) -> None:
        """``keys_from``: reuse another chain's validator and account keys (a copy of a
        chain, as a staging network or a reset would make one)."""
        self.suite_name = suite_name
        self.suite = get_suite(suite_name)
        names = ["admin", "issuer", "custodian", "regulator", "alice", "bob", "carol", "lender"]
        if keys_from is not None:
            self.validator = keys_from.validator
            self.keys: dict[str, NamedKey] = dict(keys_from.keys)
        else:
            self.validator = generate("validator-0", suite_name)
            self.keys = {n: generate(n, suite_name) for n in names}
        roles = {
            self.keys["admin"].address: ["admin"],
            self.keys["issuer"].address: ["issuer"],
            self.keys["custodian"].address: ["custodian"],
            self.keys["regulator"].address: ["regulator"],
        }
        self.genesis = self.make_genesis(roles, genesis_time, params, protocol_version)
        self.data_dir = tmp / "node"
        clock = itertools.count(genesis_time + 1000, 1000)
        self.node = Node(self.data_dir, self.genesis, self.validator, clock_ms=lambda: next(clock))
        self.node.start()
        self._nonces: dict[str, int] = {}

    def make_genesis(self, roles: dict[str, list[str]], genesis_time: int,
                     params: Params | None, protocol_version: int) -> Genesis:
        return make_genesis(CHAIN, self.suite, [(self.validator.name, self.validator.key)],
                            roles, genesis_time, params, protocol_version=protocol_version)

    def grant_tx(self, account: str, role: str, kind: str = "role.grant"
                 ) -> tuple[str, dict[str, Any]]:
        """The transaction that gives ``account`` a role (or takes it, ``role.revoke``): a
        committee proposal from protocol version 4 (one admin's seat passes it alone), the
        plain operation before."""
        if self.genesis.protocol_version >= IDENTITY:
            return "gov.propose", {"action": kind, "account": account, "role": role}
        return kind, {"account": account, "role": role}

    def add_to_committee(self, account: str) -> Any:
        """A second committee member: a seat from version 4, the admin role before."""
        if self.genesis.protocol_version >= IDENTITY:
            return self.ok("admin", "gov.propose", {"action": "committee.seat",
                                                    "account": account, "weight": 1})
        return self.ok("admin", "role.grant", {"account": account, "role": "admin"})

    def grant(self, account: str, role: str, by: str = "admin") -> Any:
        kind, payload = self.grant_tx(account, role)
        return self.ok(by, kind, payload)

    def addr(self, name: str) -> str:
        return self.keys[name].address

    def sign(self, name: str, kind: str, payload: dict[str, Any], *, nonce: int | None = None,
             expiry: int | None = None, chain: str = CHAIN, tier: int = 1) -> bytes:
        if nonce is None:
            nonce = self._nonces.get(name, 0)
            self._nonces[name] = nonce + 1
        return txmod.sign(self.keys[name].key, chain=chain, nonce=nonce,
                          expiry=expiry if expiry is not None else self.node.ledger.height + 100,
                          kind=kind, payload=payload, tier=tier)

    def send(self, name: str, kind: str, payload: dict[str, Any], **kw: Any):
        return self.node.submit_and_wait(self.sign(name, kind, payload, **kw), timeout=30)

    def ok(self, name: str, kind: str, payload: dict[str, Any]):
        receipt = self.send(name, kind, payload)
        assert receipt.ok, receipt
        return receipt

    def holding(self, asset: str, name: str) -> dict[str, int]:
        return self.node.reader.holding(asset, self.addr(name))

    def issue(self, asset: str = "BOND", quantity: int = 1000, to: str = "issuer",
              asset_class: str = "security"):
        return self.ok("issuer", "asset.issue", {"asset": asset, "class": asset_class,
                                                 "name": f"{asset} test asset",
                                                 "quantity": quantity, "to": self.addr(to)})

    def stop(self) -> None:
        self.node.stop()
