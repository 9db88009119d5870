"""The custody module, operation by operation, through a real node."""

from __future__ import annotations

import hashlib

import pytest

from tally.errors import Code
from tests.support.chain import Chain

TRANSFER = "custody.transfer"


def transfer(chain: Chain, sender: str, to: str, qty: int, **extra):
    return chain.send(sender, TRANSFER,
                      {"asset": "BOND", "to": chain.addr(to), "quantity": qty, **extra})


def test_issue_needs_the_issuer_role_and_a_fresh_id(chain: Chain) -> None:
    r = chain.send("alice", "asset.issue", {"asset": "X", "class": "security", "name": "x",
                                            "quantity": 5})
    assert r.code == Code.UNAUTHORISED
    chain.issue("BOND", 1000)
    again = chain.send("issuer", "asset.issue", {"asset": "BOND", "class": "security",
                                                 "name": "again", "quantity": 5})
    assert again.code == Code.ALREADY_EXISTS
    asset = chain.node.reader.asset("BOND")
    assert asset["supply"] == 1000 and asset["issuer"] == chain.addr("issuer")
    assert asset["holders"] == {chain.addr("issuer"): {"q": 1000, "p": 0, "f": 0}}


@pytest.mark.parametrize("payload, fragment", [
    ({"asset": "bad id!", "class": "security", "name": "n", "quantity": 1}, "asset"),
    ({"asset": "A", "class": "bond", "name": "n", "quantity": 1}, "class"),
    ({"asset": "A", "class": "security", "name": "n", "quantity": 0}, "quantity"),
    ({"asset": "A", "class": "security", "name": "n", "quantity": 2**63}, "quantity"),
    ({"asset": "A", "class": "security", "name": "n", "quantity": True}, "quantity"),
    ({"asset": "A", "class": "security", "name": "n"}, "quantity"),
    ({"asset": "A", "class": "security", "name": "n", "quantity": 1, "to": "XYZ"}, "to"),
    ({"asset": "A", "class": "security", "name": "n", "quantity": 1, "x": 1}, "unknown"),
])
def test_issue_payload_checks(chain: Chain, payload: dict, fragment: str) -> None:
    from tally.errors import TallyError

    with pytest.raises(TallyError) as info:
        chain.node.submit(chain.sign("issuer", "asset.issue", payload, nonce=0))
    assert info.value.code == Code.INVALID_PAYLOAD
    assert fragment in info.value.message


def test_transfer_moves_control(chain: Chain) -> None:
    chain.issue("BOND", 1000, to="alice")
    assert transfer(chain, "alice", "bob", 300).ok
    assert chain.holding("BOND", "alice") == {"q": 700, "p": 0, "f": 0}
    assert chain.holding("BOND", "bob") == {"q": 300, "p": 0, "f": 0}
    too_much = transfer(chain, "alice", "bob", 701)
    assert too_much.code == Code.INSUFFICIENT_UNITS
    assert transfer(chain, "alice", "alice", 1).code == Code.INVALID_PAYLOAD
    missing = chain.send("alice", TRANSFER, {"asset": "NOPE", "to": chain.addr("bob"),
                                             "quantity": 1})
    assert missing.code == Code.NOT_FOUND


def test_failed_transaction_consumes_its_nonce_but_writes_nothing(chain: Chain) -> None:
    chain.issue("BOND", 10, to="alice")
    root = chain.node.ledger.state_root
    r = transfer(chain, "alice", "bob", 11)
    assert r.code == Code.INSUFFICIENT_UNITS and r.events == []
    assert chain.node.reader.account(chain.addr("alice"))["nonce"] == 1
    assert chain.holding("BOND", "alice")["q"] == 10
    assert chain.node.ledger.state_root != root  # only the nonce changed
    assert chain.node.reader.value(b"holding/BOND/" + chain.addr("bob").encode()) is None


def test_only_controller_or_agent_moves_units(chain: Chain) -> None:
    chain.issue("BOND", 100, to="alice")
    stolen = transfer(chain, "bob", "bob", 10, holder=chain.addr("alice"))
    assert stolen.code == Code.UNAUTHORISED
    assert chain.ok("alice", "custody.appoint_agent", {"agent": chain.addr("carol")})
    moved = transfer(chain, "carol", "bob", 10, holder=chain.addr("alice"))
    assert moved.ok
    event = chain.node.reader.history("BOND")[-1]
    assert event["from"] == chain.addr("alice") and event["details"] == {"by": chain.addr("carol")}
    assert chain.ok("alice", "custody.revoke_agent", {"agent": chain.addr("carol")})
    assert transfer(chain, "carol", "bob", 10, holder=chain.addr("alice")).code == \
        Code.UNAUTHORISED


def test_pledge_release_and_enforce(chain: Chain) -> None:
    chain.issue("BOND", 100, to="alice")
    pledge = chain.ok("alice", "custody.pledge", {"asset": "BOND", "pledgee": chain.addr("lender"),
                                                  "quantity": 60})
    assert chain.holding("BOND", "alice") == {"q": 100, "p": 60, "f": 0}
    assert transfer(chain, "alice", "bob", 41).code == Code.INSUFFICIENT_UNITS
    assert transfer(chain, "alice", "bob", 40).ok
    # Only the pledgee releases.
    assert chain.send("alice", "custody.release", {"pledge": pledge.tx}).code == \
        Code.UNAUTHORISED
    assert chain.ok("lender", "custody.release", {"pledge": pledge.tx})
    assert chain.holding("BOND", "alice") == {"q": 60, "p": 0, "f": 0}
    assert chain.send("lender", "custody.release", {"pledge": pledge.tx}).code == Code.NOT_FOUND
    # Enforcement: the pledgee takes the pledged units.
    second = chain.ok("alice", "custody.pledge", {"asset": "BOND",
                                                  "pledgee": chain.addr("lender"), "quantity": 25})
    assert chain.ok("lender", "custody.enforce", {"pledge": second.tx})
    assert chain.holding("BOND", "alice") == {"q": 35, "p": 0, "f": 0}
    assert chain.holding("BOND", "lender") == {"q": 25, "p": 0, "f": 0}


def test_freeze_by_custodian_or_regulator_only(chain: Chain) -> None:
    chain.issue("BOND", 100, to="alice")
    order = {"asset": "BOND", "holder": chain.addr("alice"), "quantity": 70, "reason": "court"}
    assert chain.send("bob", "custody.freeze", order).code == Code.UNAUTHORISED
    assert chain.send("issuer", "custody.freeze", order).code == Code.UNAUTHORISED
    freeze = chain.ok("custodian", "custody.freeze", order)
    assert chain.holding("BOND", "alice") == {"q": 100, "p": 0, "f": 70}
    assert transfer(chain, "alice", "bob", 31).code == Code.INSUFFICIENT_UNITS
    assert chain.send("alice", "asset.redeem", {"asset": "BOND", "quantity": 31}).code == \
        Code.INSUFFICIENT_UNITS
    assert chain.send("alice", "custody.unfreeze", {"freeze": freeze.tx}).code == \
        Code.UNAUTHORISED
    assert chain.ok("regulator", "custody.unfreeze", {"freeze": freeze.tx})
    assert chain.holding("BOND", "alice") == {"q": 100, "p": 0, "f": 0}


def test_redeem_retires_supply(chain: Chain) -> None:
    chain.issue("RCV", 500, to="alice", asset_class="receivable")
    assert chain.ok("alice", "asset.redeem", {"asset": "RCV", "quantity": 200})
    assert chain.node.reader.asset("RCV")["supply"] == 300
    assert chain.ok("alice", "asset.redeem", {"asset": "RCV", "quantity": 300})
    asset = chain.node.reader.asset("RCV")
    assert asset["supply"] == 0 and asset["status"] == "retired" and asset["holders"] == {}
    again = chain.send("alice", TRANSFER, {"asset": "RCV", "to": chain.addr("bob"),
                                           "quantity": 1})
    assert again.code == Code.ASSET_RETIRED


def test_attest_document(chain: Chain) -> None:
    digest = hashlib.sha256(b"prospectus").digest()
    assert chain.ok("bob", "document.attest", {"hash": digest, "title": "prospectus"})
    assert chain.send("bob", "document.attest", {"hash": digest, "title": "again"}).code == \
        Code.ALREADY_EXISTS
    assert chain.ok("alice", "document.attest", {"hash": digest, "title": "prospectus"})
    events = chain.node.reader.events()
    assert [e["data"] for e in events] == [digest.hex(), digest.hex()]


def test_roles_are_granted_by_admins_only(chain: Chain) -> None:
    grant = chain.grant_tx(chain.addr("bob"), "issuer")
    assert chain.send("issuer", *grant).code == Code.UNAUTHORISED
    assert chain.ok("admin", *grant)
    assert chain.node.reader.account(chain.addr("bob"))["roles"] == ["issuer"]
    assert chain.ok("bob", "asset.issue", {"asset": "B2", "class": "other", "name": "b",
                                           "quantity": 1})
    assert chain.ok("admin", *chain.grant_tx(chain.addr("bob"), "issuer", "role.revoke"))
    assert chain.node.reader.account(chain.addr("bob"))["roles"] == []
