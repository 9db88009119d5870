"""The committee and policies of protocol version 4, on an embedded node: weighted seats,
votes for and against, withdrawal, expiry, membership by proposal, policies as data, and
no way for one seat — or a bad change — to take governance away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.errors import Code, TallyError
from tally.exec import policy
from tally.exec.registry import Subject
from tally.node.reader import event_to_dict
from tests.support.consortium import Consortium, credit_code
from tests.support.openssl_ca import OpensslPki


@pytest.fixture
def c(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    chain = Consortium(tmp_path, "intl", pki)
    yield chain
    chain.stop()


class _State:
    def __init__(self, c: Consortium) -> None:
        self.reader = c.node.reader

    def get(self, key: bytes) -> object:
        return self.reader.value(key)


def types(c: Consortium) -> list[str]:
    return [e["type"] for e in c.node.reader.events()]


def code_of(c: Consortium, name: str, kind: str, payload: dict) -> str:
    try:
        return c.send(name, kind, payload).code
    except TallyError as exc:
        c._nonces[name] -= 1
        return exc.code


def roles(c: Consortium, name: str) -> list[str]:
    return c.node.reader.value(f"role/{c.addr(name)}".encode()) or []


def test_no_seat_changes_roles_alone(c: Consortium) -> None:
    """The bypass a tester found in version 3: one admin revoking another's role and then
    deploying alone. In version 4 roles change only by proposal, and one of four seats
    cannot pass one."""
    assert code_of(c, "admin", "role.revoke", {"account": c.addr("broker"), "role": "admin"}) \
        == Code.UNKNOWN_KIND
    proposal = c.ok("admin", "gov.propose", {"action": "role.revoke",
                                             "account": c.addr("broker"), "role": "admin"}).tx
    assert "admin" in roles(c, "broker")
    c.ok("custodian", "gov.vote", {"proposal": proposal, "vote": "for"})
    assert "admin" in roles(c, "broker")  # 2 of 4: not yet more than half
    c.ok("regulator", "gov.vote", {"proposal": proposal, "vote": "for"})
    assert "admin" not in roles(c, "broker")
    assert "gov.pass" in types(c) and "role.revoke" in types(c)
    deploy = c.ok("admin", "gov.propose", {"action": "contract.deploy", "name": "solo",
                                           "source": "class Solo(Contract):\n    pass\n"})
    assert c.node.reader.value(b"contract/solo") is None
    record = c.node.reader.value(f"proposal/{deploy.tx}".encode())
    assert record["status"] == "open" and record["votes"] == {c.addr("admin"): "for"}


def test_votes_against_reject_and_every_result_is_an_event(c: Consortium) -> None:
    proposal = c.ok("admin", "gov.propose", {"action": "role.grant",
                                             "account": c.addr("issuer"), "role": "custodian"}).tx
    assert code_of(c, "admin", "gov.vote", {"proposal": proposal, "vote": "for"}) == \
        Code.ALREADY_EXISTS
    assert code_of(c, "issuer", "gov.vote", {"proposal": proposal, "vote": "for"}) == \
        Code.UNAUTHORISED  # a registered account without a seat
    c.ok("broker", "gov.vote", {"proposal": proposal, "vote": "against"})
    c.ok("custodian", "gov.vote", {"proposal": proposal, "vote": "against"})
    record = c.node.reader.value(f"proposal/{proposal}".encode())
    assert record["status"] == "rejected" and "custodian" not in roles(c, "issuer")
    assert code_of(c, "regulator", "gov.vote", {"proposal": proposal, "vote": "for"}) == \
        Code.PROPOSAL_CLOSED
    assert "gov.reject" in types(c)
    assert c.node.reader.value(b"proposals/open") == []


def test_withdraw_and_expire(c: Consortium) -> None:
    first = c.ok("admin", "gov.propose", {"action": "role.define", "role": "auditor"}).tx
    assert code_of(c, "broker", "gov.withdraw", {"proposal": first}) == Code.UNAUTHORISED
    c.ok("admin", "gov.withdraw", {"proposal": first})
    assert code_of(c, "broker", "gov.vote", {"proposal": first, "vote": "for"}) == \
        Code.PROPOSAL_CLOSED
    short = c.ok("admin", "gov.propose", {"action": "role.define", "role": "auditor",
                                          "ttl": 1}).tx
    c.issue()  # two more blocks: the proposal's expiry height passes
    c.issue("OTHER")
    assert code_of(c, "broker", "gov.vote", {"proposal": short, "vote": "for"}) == \
        Code.PROPOSAL_CLOSED
    c.ok("admin", "gov.propose", {"action": "role.define", "role": "observer"})
    assert c.node.reader.value(f"proposal/{short}".encode())["status"] == "expired"
    assert {"gov.withdraw", "gov.expire"} <= set(types(c))


def test_weights_and_seats(c: Consortium) -> None:
    """Seats change by proposal; a seat of weight 4 of 7 passes MAJORITY alone."""
    c.vote_through("admin", "committee.seat", account=c.addr("admin"), weight=4)
    assert c.node.reader.value(b"seats")[c.addr("admin")] == 4
    c.ok("admin", "gov.propose", {"action": "role.define", "role": "auditor"})
    assert "auditor" in c.node.reader.value(b"roles")


def test_governance_cannot_lock_itself_out(c: Consortium) -> None:
    too_low = code_of(c, "admin", "gov.propose", {
        "action": "policy.set", "resource": "gov:policy.set", "vote": {
            "participation": 1000, "win": 1000}})
    assert too_low == Code.INVALID_PAYLOAD
    assert code_of(c, "admin", "gov.propose", {"action": "policy.set",
                                               "resource": "tx:gov.vote",
                                               "allow": {"any": True}}) == Code.INVALID_PAYLOAD
    c.ok("regulator", "account.freeze", {"account": c.addr("broker")})  # 3 of 4 seats active
    second = c.send("regulator", "account.freeze", {"account": c.addr("custodian")})
    assert second.code == Code.INVALID_PAYLOAD and "locked out" in second.message
    nobody = code_of(c, "admin", "gov.propose", {"action": "committee.seat",
                                                 "account": c.addr("admin"), "weight": 0})
    assert nobody == Code.OK  # a proposal: checked again when it passes
    assert c.node.reader.value(b"seats")[c.addr("admin")] == 1


def test_a_fifth_member_is_admitted_by_vote(c: Consortium) -> None:
    ca = c.pki.root("Fund E CA", "ed25519")
    from tally.keys import generate

    c.keys["fund"] = generate("fund", "intl")
    registrar = c.pki.leaf(ca, "Fund E registrar", public_key=c.keys["fund"].public_key)
    bad_code = code_of(c, "admin", "gov.propose", {
        "action": "member.admit", "id": "fund", "name": "Fund E",
        "credit_code": "91310000500000005X", "cas": [ca.pem]})
    assert bad_code == Code.INVALID_PAYLOAD
    c.vote_through("admin", "member.admit", id="fund", name="Fund E",
                   credit_code=credit_code("91310000500000005"), cas=[ca.pem],
                   registrars=[registrar], commitments=[c.commit("fund")])
    assert c.node.reader.value(b"member/fund")["status"] == "active"
    first = c.node.reader.value(f"account/{c.addr('fund')}".encode())
    assert first["commitment"] == c.commit("fund").hex() and first["member"] == "fund"
    c.keys["eve"] = generate("eve", "intl")
    c.ok("fund", "account.register", {
        "certificate": c.pki.leaf(ca, "Eve", public_key=c.keys["eve"].public_key),
        "commitment": c.commit("eve"), "kyc": 1})
    c.ok("eve", "custody.appoint_agent", {"agent": c.addr("fund")})
    c.vote_through("admin", "member.suspend", id="fund")
    with pytest.raises(TallyError) as refused:
        c.node.submit(c.sign("eve", "custody.appoint_agent", {"agent": c.addr("admin")}))
    assert refused.value.code == Code.ACCOUNT_INACTIVE
    assert "member.admit" in types(c) and "member.suspend" in types(c)


def test_policies_as_data(c: Consortium) -> None:
    """A role scoped to a member, a deny list, a contract method's policy; and the one
    question ``may`` answers the same as the executor."""
    c.register("alice")
    c.issue()
    state = _State(c)
    assert policy.may(state, c.addr("issuer"), "tx:asset.issue")
    c.vote_through("admin", "policy.set", resource="tx:asset.issue",
                   allow={"role": "issuer", "member": "broker"})
    verdict = policy.may(state, c.addr("issuer"), "tx:asset.issue")
    assert not verdict and "issuer of member broker" in verdict.reason
    assert c.send("issuer", "asset.issue", {"asset": "NEW", "class": "security", "name": "n",
                                            "quantity": 1}).code == Code.UNAUTHORISED
    c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"), "quantity": 5})
    c.vote_through("admin", "policy.set", resource="tx:custody.transfer",
                   deny=[c.addr("alice")])
    refused = c.send("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("issuer"),
                                                   "quantity": 1})
    assert refused.code == Code.UNAUTHORISED and "deny list" in refused.message
    c.vote_through("admin", "policy.set", resource="tx:custody.transfer", reset="yes")
    c.ok("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("issuer"), "quantity": 1})
    source = ("class Box(Contract):\n    n = Var(int)\n\n"
              "    def bump(self):\n        self.n = self.n + 1\n")
    c.vote_through("admin", "contract.deploy", name="box", source=source)
    c.ok("alice", "contract.call", {"contract": "box", "method": "bump", "args": []})
    c.vote_through("admin", "policy.set", resource="call:box:bump",
                   allow={"member": "custody"})
    assert c.send("alice", "contract.call", {"contract": "box", "method": "bump",
                                             "args": []}).code == Code.UNAUTHORISED
    c.ok("custodian", "contract.call", {"contract": "box", "method": "bump", "args": []})
    assert Subject.of(state, c.addr("alice")).member == "bank"
    events = [event_to_dict(r) for r in [c.node.reader.event(i) for i in range(
        c.node.reader.status()["log_size"])] if r is not None]
    assert any(e["type"] == "policy.set" for e in events)


def test_malformed_policies_are_refused(c: Consortium) -> None:
    for allow in ({}, {"any": False}, {"role": 5}, {"any_of": []},
                  {"any_of": [{"any_of": [{"any_of": [{"any_of": [{"any_of": [
                      {"any": True}]}]}]}]}]},
                  {"accounts": ["not an address"]}, {"member": "x", "extra": 1}):
        assert code_of(c, "admin", "gov.propose", {
            "action": "policy.set", "resource": "tx:custody.transfer",
            "allow": allow}) == Code.INVALID_PAYLOAD, allow
    assert code_of(c, "admin", "gov.propose", {
        "action": "policy.set", "resource": "nothing:here", "allow": {"any": True}}) == \
        Code.INVALID_PAYLOAD


def test_a_chain_upgraded_to_version_4_keeps_working_until_it_requires_registration(
        tmp_path: Path, pki: OpensslPki) -> None:
    """A version-3 chain moves to version 4 at a height its committee votes: its admins
    hold seats of weight 1, roles then change only by proposal, and no account is locked
    out; requiring registration is refused while the seat holder is unregistered, and
    passes once a member admitted by vote registered it. Every block replays."""
    from tally.keys import generate
    from tests.support.chain import Chain
    from tests.support.replay import recorded_blocks, replay_under_seeds

    chain = Chain(tmp_path / "chain", "intl", protocol_version=3,
                  genesis_time=(int(time.time()) + 2) * 1000)  # after the CA's notBefore
    try:
        height = chain.node.ledger.height
        chain.ok("admin", "gov.propose", {"action": "protocol.upgrade", "version": 4,
                                          "height": height + 2})
        chain.issue()
        chain.issue("OTHER")
        assert chain.node.reader.value(b"seats") == {chain.addr("admin"): 1}
        assert code_of_chain(chain, "admin", "role.grant", {
            "account": chain.addr("bob"), "role": "issuer"}) == Code.UNKNOWN_KIND
        chain.ok("alice", "custody.appoint_agent", {"agent": chain.addr("bob")})
        locked = chain.send("admin", "gov.propose", {"action": "identity.require",
                                                     "required": "yes"})
        assert locked.code == Code.INVALID_PAYLOAD and "locked out" in locked.message
        ca = pki.root("Upgrade Bank CA", "ed25519")
        chain.keys["registrar"] = generate("registrar", "intl")
        chain.ok("admin", "gov.propose", {
            "action": "member.admit", "id": "bank", "name": "Upgrade Bank",
            "credit_code": credit_code("91310000600000006"), "cas": [ca.pem],
            "registrars": [pki.leaf(ca, "Registrar", public_key=chain.keys[
                "registrar"].public_key)]})
        chain.ok("registrar", "account.register", {
            "certificate": pki.leaf(ca, "Admin", public_key=chain.keys["admin"].public_key),
            "commitment": b"\x01" * 32, "kyc": 3})
        chain.ok("admin", "gov.propose", {"action": "identity.require", "required": "yes"})
        with pytest.raises(TallyError) as refused:
            chain.node.submit(chain.sign("alice", "custody.appoint_agent",
                                         {"agent": chain.addr("carol")}))
        assert refused.value.code == Code.UNREGISTERED
        blocks, expected = recorded_blocks(chain.node)
        assert {f["version"] for f in expected} == {3, 4}
        for replayed in replay_under_seeds(chain.genesis, blocks, tmp_path):
            assert replayed == expected
    finally:
        chain.stop()


def code_of_chain(chain: object, name: str, kind: str, payload: dict) -> str:
    try:
        return chain.send(name, kind, payload).code  # type: ignore[attr-defined]
    except TallyError as exc:
        chain._nonces[name] -= 1  # type: ignore[attr-defined]
        return exc.code
