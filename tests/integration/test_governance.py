"""Governance: the committee changes the validator set by majority approval. Versions 1-3
have the committee of every ``admin`` (tested here on a version-3 chain, which old chains
replay by); version 4's seats and votes are tests/integration/test_committee.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.crypto import get_suite
from tally.errors import Code
from tests.support.chain import Chain


@pytest.fixture
def chain3(tmp_path: Path, suite_name: str) -> Iterator[Chain]:
    c = Chain(tmp_path, suite_name, protocol_version=3)
    yield c
    c.stop()


def new_validator_keys(chain: Chain) -> tuple[bytes, bytes]:
    checkpoint_key = chain.suite.generate_private_key().public_key
    consensus_key = get_suite("intl").generate_private_key().public_key  # CometBFT: Ed25519
    return checkpoint_key, consensus_key


def validators(chain: Chain) -> dict[str, int]:
    return {v["name"]: v["power"] for v in chain.node.reader.value(b"validators")}


def test_committee_majority_changes_the_validator_set(chain3: Chain) -> None:
    chain = chain3
    for member in ("alice", "bob"):  # committee: admin, alice, bob
        chain.ok("admin", "role.grant", {"account": chain.addr(member), "role": "admin"})
    assert chain.node.reader.value(b"committee") == sorted(chain.addr(n) for n in ("admin", "alice",
                                                                            "bob"))
    pk, ck = new_validator_keys(chain)
    proposal = chain.ok("admin", "gov.propose", {"action": "validator.set", "name": "bank-b",
                                                 "power": 10, "public_key": pk,
                                                 "consensus_key": ck})
    assert validators(chain) == {"validator-0": 1}  # 1 of 3 is not a majority
    assert chain.send("carol", "gov.approve", {"proposal": proposal.tx}).code == \
        Code.UNAUTHORISED
    assert chain.send("admin", "gov.approve", {"proposal": proposal.tx}).code == \
        Code.ALREADY_EXISTS
    assert chain.ok("alice", "gov.approve", {"proposal": proposal.tx})
    assert validators(chain) == {"bank-b": 10, "validator-0": 1}
    update = [e for e in chain.node.reader.events() if e["type"] == "validator.update"]
    assert len(update) == 1
    assert update[0]["details"]["public_key"] == pk.hex() and update[0]["quantity"] == 10
    assert chain.send("bob", "gov.approve", {"proposal": proposal.tx}).code == Code.NOT_FOUND


def test_single_admin_applies_at_once_and_the_set_never_empties(chain: Chain) -> None:
    pk, ck = new_validator_keys(chain)
    chain.ok("admin", "gov.propose", {"action": "validator.set", "name": "v2", "power": 3,
                                      "public_key": pk, "consensus_key": ck})
    assert validators(chain) == {"v2": 3, "validator-0": 1}
    chain.ok("admin", "gov.propose", {"action": "validator.set", "name": "validator-0",
                                      "power": 0})
    assert validators(chain) == {"v2": 3}
    last = chain.send("admin", "gov.propose", {"action": "validator.set", "name": "v2",
                                               "power": 0})
    assert last.code == Code.INVALID_PAYLOAD
    unknown = chain.send("admin", "gov.propose", {"action": "validator.set", "name": "ghost",
                                                  "power": 0})
    assert unknown.code == Code.NOT_FOUND
    no_keys = chain.send("admin", "gov.propose", {"action": "validator.set", "name": "new",
                                                  "power": 1})
    assert no_keys.code == Code.INVALID_PAYLOAD
    duplicate_key = chain.send("admin", "gov.propose", {"action": "validator.set", "name": "v3",
                                                        "power": 1, "public_key": pk,
                                                        "consensus_key": ck})
    assert duplicate_key.code == Code.ALREADY_EXISTS


def test_the_last_admin_cannot_leave(chain3: Chain) -> None:
    chain = chain3
    r = chain.send("admin", "role.revoke", {"account": chain.addr("admin"), "role": "admin"})
    assert r.code == Code.INVALID_PAYLOAD
