"""A protocol-version-4 chain run by four founding members, each with its own CA made by
the ``openssl`` command line: the chain identity and governance tests run against.

Members and their genesis accounts (the rest of :class:`Chain`'s keys are customers,
unregistered until a test registers them with :meth:`Consortium.register`)::

    bank       admin (roles admin, registrar; a seat), issuer (role issuer)
    broker     broker (admin, registrar; a seat)
    custody    custodian (custodian, registrar; a seat)
    regulator  regulator (regulator; a seat)

Four seats of weight 1: under MAJORITY a proposal passes with three votes for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tally.genesis import Genesis, Params, make_genesis
from tally.identity import commitment
from tally.identity.credit_code import check_character
from tally.keys import generate
from tally.protocol.receipt import Receipt
from tally.protocol.versions import IDENTITY
from tests.support.chain import CHAIN, Chain
from tests.support.openssl_ca import Ca, OpensslPki

#: member id -> (name, the first 17 characters of its credit code)
FOUNDERS = {"bank": ("Bank A", "91310000100000001"), "broker": ("Broker B", "91310000200000002"),
            "custody": ("Custodian C", "91310000300000003"),
            "regulator": ("Regulator R", "11100000400000004")}
#: genesis account name -> (member, roles)
STAFF = {"admin": ("bank", ["admin", "registrar"]), "issuer": ("bank", ["issuer"]),
         "broker": ("broker", ["admin", "registrar"]),
         "custodian": ("custody", ["custodian", "registrar"]),
         "regulator": ("regulator", ["regulator"])}
SEATS = ("admin", "broker", "custodian", "regulator")
KEY_ALGORITHM = {"intl": "ed25519", "gm": "sm2"}


def credit_code(body: str) -> str:
    return body + check_character(body)


class Consortium(Chain):
    """A version-4 chain of :data:`FOUNDERS` (see the module docstring)."""

    def __init__(self, tmp: Path, suite_name: str, pki: OpensslPki) -> None:
        self.pki = pki
        algorithm = KEY_ALGORITHM[suite_name]
        self.cas: dict[str, Ca] = {m: pki.root(f"{name} CA", algorithm)
                                   for m, (name, _) in FOUNDERS.items()}
        self.records: dict[str, tuple[dict[str, str], bytes]] = {}
        # Certificates are made now: the chain's clock starts after their notBefore.
        super().__init__(tmp, suite_name, protocol_version=IDENTITY,
                         genesis_time=(int(time.time()) + 2) * 1000)

    def make_genesis(self, roles: dict[str, list[str]], genesis_time: int,
                     params: Params | None, protocol_version: int) -> Genesis:
        if "broker" not in self.keys:
            self.keys["broker"] = generate("broker", self.suite_name)
        members = tuple({"id": m, "name": name, "credit_code": credit_code(body),
                         "cas": [self.cas[m].pem.decode()]}
                        for m, (name, body) in FOUNDERS.items())
        accounts = tuple({"member": member, "public_key": self.keys[name].public_key.hex(),
                          "commitment": self.commit(name).hex(), "kyc": 3}
                         for name, (member, _) in STAFF.items())
        staff_roles = {self.addr(name): held for name, (_, held) in STAFF.items()}
        return make_genesis(CHAIN, self.suite, [(self.validator.name, self.validator.key)],
                            staff_roles, genesis_time, params,
                            protocol_version=protocol_version, members=members,
                            accounts=accounts,
                            committee={self.addr(name): 1 for name in SEATS})

    def commit(self, name: str) -> bytes:
        """The commitment to ``name``'s identity record (kept here as its member would)."""
        if name not in self.records:
            self.records[name] = ({"name": name.title(), "id_type": "resident_id",
                                   "id_number": f"11010119900101{len(self.records):04d}"},
                                  commitment.new_salt())
        record, salt = self.records[name]
        return commitment.commit(self.suite, record, salt)

    def certificate(self, name: str, member: str = "bank", **kw: Any) -> bytes:
        """A certificate from ``member``'s CA for ``name``'s key (PEM)."""
        return self.pki.leaf(self.cas[member], name, public_key=self.keys[name].public_key,
                             **kw)

    def register(self, name: str, member: str = "bank", registrar: str | None = None,
                 kyc: int = 2) -> Receipt:
        """Register customer ``name`` with ``member`` (sent by that member's registrar)."""
        registrar = registrar or {"bank": "admin", "broker": "broker",
                                  "custody": "custodian"}[member]
        return self.ok(registrar, "account.register", {
            "certificate": self.certificate(name, member), "commitment": self.commit(name),
            "kyc": kyc})

    def vote_through(self, proposer: str, action: str, voters: tuple[str, ...] = (
            "broker", "custodian"), **args: Any) -> str:
        """Propose ``action`` and have ``voters`` vote for it; the proposal id."""
        receipt = self.ok(proposer, "gov.propose", {"action": action, **args})
        proposal = receipt.tx
        for voter in voters:
            self.ok(voter, "gov.vote", {"proposal": proposal, "vote": "for"})
        return proposal
