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
from tally.protocol.versions import KNOWN_VERSIONS, LATEST_VERSION

#: The roles an account may hold (tally.exec.roles gives them their meaning).
ROLES = ("admin", "issuer", "custodian", "regulator")
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
            for account_roles in roles.values():
                for role in account_roles:
                    if role not in ROLES:
                        raise ValueError(f"unknown role {role!r}")
            params = Params.from_doc(doc.get("params", {}))
            version = doc.get("protocol_version", 1)
            if version not in KNOWN_VERSIONS or (version == 1 and "protocol_version" in doc):
                raise ValueError(f"protocol_version must be one of {KNOWN_VERSIONS[1:]} "
                                 "(leave it out for version 1)")
            return cls(chain_id, suite_name, int(doc["genesis_time_ms"]), validators, roles, params,
                       version)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed genesis document: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> Genesis:
        return cls.from_doc(json.loads(Path(path).read_text()))


def make_genesis(
    chain_id: str,
    suite: Suite,
    validator_keys: list[tuple[str, PrivateKey]],
    roles: dict[str, list[str]],
    time_ms: int,
    params: Params | None = None,
    consensus_keys: dict[str, bytes] | None = None,
    protocol_version: int = LATEST_VERSION,
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
    )
