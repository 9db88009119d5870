"""Genesis: the document that fixes a chain's identity, suite, first validators and roles.

The genesis hash is the trust anchor of all evidence: a bundle's signer keys are believed
because they hash, with the rest of genesis, to a value the verifier pinned out of band.
The document is plain JSON (hex for keys) so people can read and diff it; its hash is
the suite hash of its canonical CBOR encoding, so formatting never changes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tally import codec
from tally.crypto import PrivateKey, Suite, get_suite
from tally.protocol.versions import IDENTITY, KNOWN_VERSIONS, LATEST_VERSION

#: The roles an account may hold (tally.exec.roles gives them their meaning).
ROLES = ("admin", "issuer", "custodian", "regulator")
_MEMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_CHAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


@dataclass(frozen=True, slots=True)
class Params:
    max_tx_bytes: int = 64 * 1024
    max_block_txs: int = 10_000
    #: How far past the current height a transaction may set its expiry.
    max_expiry_window: int = 100_000

    def to_doc(self) -> dict[str, int]:
        return {"max_tx_bytes": self.max_tx_bytes, "max_block_txs": self.max_block_txs,
                "max_expiry_window": self.max_expiry_window}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Params:
        unknown = set(doc) - set(PARAM_BOUNDS)
        if unknown:
            raise ValueError(f"unknown chain parameters {sorted(unknown)}")
        for name, value in doc.items():
            low, high = PARAM_BOUNDS[name]
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"chain parameter {name} must be a whole number from {low} "
                                 f"to {high}")
        return cls(**doc)


#: The range each chain parameter may take, in genesis or by a committee change.
PARAM_BOUNDS: dict[str, tuple[int, int]] = {
    "max_tx_bytes": (1024, 1024 * 1024),
    "max_block_txs": (1, 100_000),
    "max_expiry_window": (1, 10_000_000),
}


@dataclass(frozen=True, slots=True)
class Validator:
    """A validator: its name, the suite key that signs checkpoints, its voting power, and
    (on a CometBFT network) the Ed25519 key CometBFT uses for consensus votes."""

    name: str
    public_key: bytes
    power: int = 1
    consensus_key: bytes = b""

    def to_doc(self) -> dict[str, Any]:
        return {"name": self.name, "public_key": self.public_key.hex(), "power": self.power,
                "consensus_key": self.consensus_key.hex()}


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    suite_name: str
    time_ms: int
    validators: tuple[Validator, ...]
    roles: dict[str, tuple[str, ...]]
    params: Params = field(default_factory=Params)
    #: The protocol version of block 1 (tally.protocol.versions). A genesis document
    #: without the field is version 1, so the hash of every older genesis is unchanged.
    protocol_version: int = 1
    #: Version 4 (tally.exec.identity): founding members {id, name, credit_code, cas: [PEM]},
    #: their accounts {member, public_key, commitment, kyc}, and the committee's seats
    #: {address: weight} (by default one seat of weight 1 per ``admin``). Left out of the
    #: document when empty, so earlier genesis hashes are unchanged.
    members: tuple[dict[str, Any], ...] = ()
    accounts: tuple[dict[str, Any], ...] = ()
    committee: dict[str, int] = field(default_factory=dict)

    @property
    def suite(self) -> Suite:
        return get_suite(self.suite_name)

    def to_doc(self) -> dict[str, Any]:
        doc = {
            "chain_id": self.chain_id,
            "suite": self.suite_name,
            "genesis_time_ms": self.time_ms,
            "validators": [v.to_doc() for v in self.validators],
            "roles": {account: list(roles) for account, roles in sorted(self.roles.items())},
            "params": self.params.to_doc(),
        }
        if self.protocol_version != 1:
            doc["protocol_version"] = self.protocol_version
        if self.members:
            doc["members"] = [dict(m) for m in self.members]
        if self.accounts:
            doc["accounts"] = [dict(a) for a in self.accounts]
        if self.committee:
            doc["committee"] = dict(sorted(self.committee.items()))
        return doc

    def canonical_bytes(self) -> bytes:
        return codec.encode(self.to_doc())

    @property
    def hash(self) -> bytes:
        return self.suite.hash(self.canonical_bytes())

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), indent=2) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Genesis:
        try:
            chain_id = doc["chain_id"]
            if not isinstance(chain_id, str) or not _CHAIN_RE.match(chain_id):
                raise ValueError("chain_id must be lowercase letters, digits and '-'")
            suite_name = doc["suite"]
            get_suite(suite_name)
            validators = tuple(
                Validator(v["name"], bytes.fromhex(v["public_key"]), int(v["power"]),
                          bytes.fromhex(v.get("consensus_key", "")))
                for v in doc["validators"]
            )
            if not validators or any(v.power <= 0 for v in validators):
                raise ValueError("genesis needs at least one validator with positive power")
            roles = {a: tuple(r) for a, r in doc.get("roles", {}).items()}
            version = doc.get("protocol_version", 1)
            known_roles = (*ROLES, "registrar") if version >= IDENTITY else ROLES
            for account_roles in roles.values():
                for role in account_roles:
                    if role not in known_roles:
                        raise ValueError(f"unknown role {role!r}")
            params = Params.from_doc(doc.get("params", {}))
            if version not in KNOWN_VERSIONS or (version == 1 and "protocol_version" in doc):
                raise ValueError(f"protocol_version must be one of {KNOWN_VERSIONS[1:]} "
                                 "(leave it out for version 1)")
            members, accounts, committee = _identity_parts(doc, version)
            return cls(chain_id, suite_name, int(doc["genesis_time_ms"]), validators, roles, params,
                       version, members, accounts, committee)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed genesis document: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> Genesis:
        return cls.from_doc(json.loads(Path(path).read_text()))


def _identity_parts(doc: dict[str, Any], version: int
                    ) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...],
                               dict[str, int]]:
    """Genesis's members, accounts and committee seats (version 4 on), checked."""
    members = tuple(doc.get("members", ()))
    accounts = tuple(doc.get("accounts", ()))
    committee = dict(doc.get("committee", {}))
    if not (members or accounts or committee):
        return (), (), {}
    if version < IDENTITY:
        raise ValueError(f"members, accounts and committee need protocol_version {IDENTITY}")
    _check_members(members, accounts, doc["suite"], int(doc["genesis_time_ms"]))
    for account, weight in committee.items():
        if not isinstance(account, str) or type(weight) is not int or not 0 < weight <= 10**6:
            raise ValueError("committee seats are {address: weight from 1 to 1,000,000}")
    return members, accounts, committee


def _check_members(members: tuple[dict[str, Any], ...], accounts: tuple[dict[str, Any], ...],
                   suite_name: str, time_ms: int) -> None:
    """Credit codes, CA certificates usable at genesis time, accounts of known members."""
    from tally.identity import certs
    from tally.identity.credit_code import check_credit_code

    ids = set()
    for member in members:
        if not isinstance(member, dict) or set(member) != {"id", "name", "credit_code", "cas"}:
            raise ValueError("a genesis member has exactly id, name, credit_code and cas")
        if not isinstance(member["id"], str) or not _MEMBER_RE.match(member["id"]) \
                or member["id"] in ids:
            raise ValueError(f"member id {member['id']!r} is malformed or repeated")
        check_credit_code(member["credit_code"])
        if not isinstance(member["cas"], list) or not member["cas"]:
            raise ValueError(f"member {member['id']} needs a CA certificate (PEM)")
        for pem in member["cas"]:
            certs.check_root(certs.parse_certificate(pem.encode()), at_ms=time_ms,
                           suite_name=suite_name)
        ids.add(member["id"])
    for account in accounts:
        if not isinstance(account, dict) or account.get("member") not in ids or \
                not set(account) <= {"member", "public_key", "commitment", "kyc"}:
            raise ValueError(f"a genesis account names a known member and has public_key, "
                             f"commitment, kyc: {account!r}")
        bytes.fromhex(account["public_key"])
        bytes.fromhex(account.get("commitment", ""))


def make_genesis(
    chain_id: str,
    suite: Suite,
    validator_keys: list[tuple[str, PrivateKey]],
    roles: dict[str, list[str]],
    time_ms: int,
    params: Params | None = None,
    consensus_keys: dict[str, bytes] | None = None,
    protocol_version: int = LATEST_VERSION,
    members: tuple[dict[str, Any], ...] = (),
    accounts: tuple[dict[str, Any], ...] = (),
    committee: dict[str, int] | None = None,
) -> Genesis:
    consensus_keys = consensus_keys or {}
    return Genesis(
        chain_id=chain_id,
        suite_name=suite.name,
        time_ms=time_ms,
        validators=tuple(Validator(name, key.public_key, 1, consensus_keys.get(name, b""))
                         for name, key in validator_keys),
        roles={account: tuple(sorted(r)) for account, r in roles.items()},
        params=params or Params(),
        protocol_version=protocol_version,
        members=tuple(members),
        accounts=tuple(accounts),
        committee=dict(committee or {}),
    )
