"""Identity (protocol version 4): members, certificates from their openssl-made CAs,
registered real-name accounts, their life, and claims, on an embedded node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.errors import Code, TallyError
from tally.evidence.export import export_bundle
from tally.evidence.identity import identity_facts
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.identity import certs, commitment
from tally.keys import generate
from tally.node.reader import event_to_dict
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki
from tests.support.replay import recorded_blocks, replay_under_seeds


@pytest.fixture
def consortium(tmp_path: Path, suite_name: str, pki: OpensslPki) -> Iterator[Consortium]:
    c = Consortium(tmp_path, suite_name, pki)
    yield c
    c.stop()


@pytest.fixture
def intl(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    c = Consortium(tmp_path, "intl", pki)
    yield c
    c.stop()


def nonce(c: Consortium, name: str) -> int:
    return c.node.reader.nonce(c.addr(name))


def code_of(c: Consortium, name: str, kind: str, payload: dict) -> str:
    """The code a transaction ends with: refused at admission, or its receipt's."""
    try:
        return c.send(name, kind, payload).code
    except TallyError as exc:
        c._nonces[name] -= 1  # never admitted: its nonce is still free
        return exc.code


def event_of(c: Consortium, index: int) -> dict:
    row = c.node.reader.event(index)
    assert row is not None
    return event_to_dict(row)


def refused(c: Consortium, name: str, kind: str, payload: dict, nonce: int = 0) -> str:
    """The code a transaction is refused with at admission (sent with ``nonce``)."""
    with pytest.raises(TallyError) as exc:
        c.node.submit(c.sign(name, kind, payload, nonce=nonce))
    return exc.value.code


def test_only_registered_accounts_act(consortium: Consortium) -> None:
    """An unregistered key is refused before anything runs (no nonce, no record); once its
    member's registrar registers its certificate, it acts; the chain holds the commitment
    and KYC level, never the person's data."""
    c = consortium
    c.issue()
    assert refused(c, "alice", "custody.transfer", {
        "asset": "BOND", "to": c.addr("bob"), "quantity": 1}) == Code.UNREGISTERED
    assert nonce(c, "alice") == 0
    receipt = c.register("alice")
    c.register("bob")
    record = c.node.reader.value(f"account/{c.addr('alice')}".encode())
    assert record["member"] == "bank" and record["kyc"] == 2 and record["status"] == "active"
    assert record["commitment"] == c.commit("alice").hex()
    assert "Alice" not in repr(record)
    event = event_of(c, receipt.events[0])
    assert event["type"] == "account.register" and event["to"] == c.addr("alice")
    leaf = certs.parse_certificate(bytes.fromhex(event["details"]["certificate"]))
    assert leaf.public_key == c.keys["alice"].public_key
    c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"), "quantity": 5})
    c.ok("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"), "quantity": 2})
    assert c.holding("BOND", "bob")["q"] == 2


def test_a_court_checks_a_disclosure_against_the_chain(intl: Consortium) -> None:
    c = intl
    receipt = c.register("alice")
    details = event_of(c, receipt.events[0])["details"]
    record, salt = c.records["alice"]
    doc = commitment.disclosure(c.suite, record, salt)
    on_chain = bytes.fromhex(details["commitment"])
    assert commitment.check_disclosure(c.suite, doc, on_chain) == record
    forged = {**doc, "record": {**record, "name": "Mallory"}}
    with pytest.raises(ValueError, match="do not make this commitment"):
        commitment.check_disclosure(c.suite, forged, on_chain)


def test_bad_certificates_are_refused_and_change_nothing(consortium: Consortium) -> None:
    c = consortium
    algorithm = {"intl": "ed25519", "gm": "sm2"}[c.suite_name]
    other = {"intl": "sm2", "gm": "ed25519"}[c.suite_name]
    foreign_ca = c.pki.root("Foreign CA", algorithm)
    expired = c.pki.dated_leaf(c.cas["bank"], "old", not_before="20200101000000Z",
                               not_after="20210101000000Z")
    future = c.pki.dated_leaf(c.cas["bank"], "future", not_before="20900101000000Z",
                              not_after="20910101000000Z")
    cases = {
        "expired": expired,
        "not_yet_valid": future,
        "unknown_ca": c.pki.leaf(foreign_ca, "alice", public_key=c.keys["alice"].public_key),
        "broker's CA, bank's registrar": c.certificate("alice", member="broker"),
        "malformed": b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        "truncated": c.certificate("alice")[:200],
        "algorithm": c.pki.leaf(c.pki.root("Other CA", other), "x"),
        "key_usage": c.pki.leaf(c.cas["bank"], "alice", public_key=c.keys["alice"].public_key,
                                extensions=["basicConstraints = critical,CA:FALSE",
                                            "keyUsage = critical,keyEncipherment"]),
    }
    for name, cert in cases.items():
        code = code_of(c, "admin", "account.register", {
            "certificate": cert, "commitment": c.commit("alice"), "kyc": 1})
        assert code in (Code.BAD_CERTIFICATE, Code.INVALID_PAYLOAD), (name, code)
        assert c.node.reader.value(f"account/{c.addr('alice')}".encode()) is None, name
    oversized = code_of(c, "admin", "account.register", {
        "certificate": b"A" * 20_000, "commitment": c.commit("alice"), "kyc": 1})
    assert oversized == Code.INVALID_PAYLOAD
    bad_kyc = code_of(c, "admin", "account.register", {
        "certificate": c.certificate("alice"), "commitment": c.commit("alice"), "kyc": 9})
    assert bad_kyc == Code.INVALID_PAYLOAD


def test_registration_rules(intl: Consortium) -> None:
    """Only a registrar registers; twice is refused; the certificate's key is the account
    (a transaction signed by any other key stays unregistered)."""
    c = intl
    cert = c.certificate("alice")
    not_registrar = c.send("issuer", "account.register", {
        "certificate": cert, "commitment": c.commit("alice"), "kyc": 1})
    assert not_registrar.code == Code.UNAUTHORISED
    c.register("alice")
    again = c.send("admin", "account.register", {
        "certificate": cert, "commitment": c.commit("alice"), "kyc": 1})
    assert again.code == Code.ALREADY_EXISTS
    assert refused(c, "bob", "custody.appoint_agent", {"agent": c.addr("alice")}) == \
        Code.UNREGISTERED


def test_revoking_a_certificate_stops_its_account(intl: Consortium) -> None:
    c = intl
    c.register("alice")
    record = c.node.reader.value(f"account/{c.addr('alice')}".encode())
    foreign = c.send("broker", "cert.revoke", {"issuer": record["issuer"],
                                               "serial": record["serial"]})
    assert foreign.code == Code.UNAUTHORISED
    c.ok("admin", "cert.revoke", {"issuer": record["issuer"], "serial": record["serial"],
                                  "reason": "key compromised"})
    assert refused(c, "alice", "custody.appoint_agent", {"agent": c.addr("bob")}) == \
        Code.ACCOUNT_INACTIVE
    again = c.send("admin", "cert.revoke", {"issuer": record["issuer"],
                                            "serial": record["serial"]})
    assert again.code == Code.ALREADY_EXISTS


def test_freeze_unfreeze_close(intl: Consortium) -> None:
    c = intl
    c.register("alice")
    alice = c.addr("alice")
    assert c.send("broker", "account.freeze", {"account": alice}).code == Code.UNAUTHORISED
    assert c.send("issuer", "account.freeze", {"account": alice}).code == Code.UNAUTHORISED
    c.ok("regulator", "account.freeze", {"account": alice, "reason": "court order 17"})
    assert refused(c, "alice", "custody.appoint_agent", {"agent": c.addr("bob")}) == \
        Code.ACCOUNT_INACTIVE
    c.ok("admin", "account.unfreeze", {"account": alice})
    c.ok("alice", "custody.appoint_agent", {"agent": c.addr("issuer")})
    c.ok("admin", "account.close", {"account": alice, "reason": "customer left"})
    assert c.send("admin", "account.unfreeze", {"account": alice}).code == \
        Code.INVALID_PAYLOAD
    types = [e["type"] for e in c.node.reader.events()]
    assert {"account.freeze", "account.unfreeze", "account.close"} <= set(types)


def test_rotation_keeps_the_identity_and_moves_units(intl: Consortium) -> None:
    c = intl
    c.issue()
    c.register("alice")
    c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"), "quantity": 7})
    old = c.addr("alice")
    c.keys["alice2"] = generate("alice2", "intl")
    receipt = c.ok("alice", "account.rotate", {"certificate": c.certificate("alice2"),
                                               "assets": ["BOND"]})
    new = c.addr("alice2")
    assert c.holding("BOND", "alice2")["q"] == 7 and c.holding("BOND", "alice")["q"] == 0
    old_record = c.node.reader.value(f"account/{old}".encode())
    new_record = c.node.reader.value(f"account/{new}".encode())
    assert old_record["status"] == "rotated" and old_record["successor"] == new
    assert new_record["commitment"] == old_record["commitment"]
    assert new_record["predecessor"] == old
    assert any(event_of(c, i)["type"] == "account.rotate" for i in receipt.events)
    assert refused(c, "alice", "custody.appoint_agent", {"agent": c.addr("bob")},
                   nonce=nonce(c, "alice")) == Code.ACCOUNT_INACTIVE
    c.ok("alice2", "custody.transfer", {"asset": "BOND", "to": c.addr("issuer"),
                                        "quantity": 1})


def test_a_registrar_recovers_a_lost_key(intl: Consortium) -> None:
    c = intl
    c.register("alice")
    c.keys["alice2"] = generate("alice2", "intl")
    assert c.send("broker", "account.recover", {
        "account": c.addr("alice"), "certificate": c.certificate("alice2"),
        "reason": "lost phone"}).code == Code.UNAUTHORISED
    receipt = c.ok("admin", "account.recover", {
        "account": c.addr("alice"), "certificate": c.certificate("alice2"),
        "reason": "lost phone"})
    event = [event_of(c, i) for i in receipt.events][-1]
    assert event["type"] == "account.recover" and event["details"]["reason"] == "lost phone"
    c.ok("alice2", "custody.appoint_agent", {"agent": c.addr("admin")})


def test_claims_from_trusted_issuers(intl: Consortium) -> None:
    c = intl
    c.register("alice")
    qi = {"subject": c.addr("alice"), "topic": "qualified_investor", "value": 1}
    assert c.send("broker", "claim.issue", qi).code == Code.UNAUTHORISED
    c.vote_through("admin", "claim.topic", topic="qualified_investor",
                   issuers=[c.addr("broker")])
    c.ok("broker", "claim.issue", qi)
    reader = c.node.reader
    assert reader.value(f"claim/{c.addr('alice')}/qualified_investor".encode())["value"] == 1
    assert c.send("broker", "claim.issue", {**qi, "subject": c.addr("bob")}).code == \
        Code.NOT_FOUND  # bob is not registered
    c.ok("broker", "claim.revoke", {"subject": c.addr("alice"), "topic": "qualified_investor"})
    assert reader.value(f"claim/{c.addr('alice')}/qualified_investor".encode()) is None


def test_contracts_read_identities_and_claims(intl: Consortium) -> None:
    c = intl
    c.register("alice")
    c.vote_through("admin", "claim.topic", topic="kyc", issuers=[c.addr("broker")])
    now = c.node.reader.block(c.node.reader.height())["header"]["time"]
    c.ok("broker", "claim.issue", {"subject": c.addr("alice"), "topic": "kyc", "value": "L2",
                                   "expires_ms": now + 10_000_000})
    source = (
        "class Whois(Contract):\n"
        "    @view\n"
        "    def who(self, addr):\n"
        "        return [host_call('identity.account', addr),\n"
        "                host_call('identity.claim', addr, 'kyc')]\n")
    c.vote_through("admin", "contract.deploy", name="whois", source=source)
    answer = c.ok("alice", "contract.call", {"contract": "whois", "method": "who",
                                             "args": [c.addr("alice")]}).result
    assert answer[0]["member"] == "bank" and answer[0]["active"] is True
    assert answer[1] == "L2"
    nobody = c.ok("alice", "contract.call", {"contract": "whois", "method": "who",
                                             "args": [c.addr("bob")]}).result
    assert nobody == [None, None]


def test_a_registration_bundle_proves_who_the_account_is(consortium: Consortium) -> None:
    """Evidence covers identity: the bundle of an ``account.register`` event verifies,
    and the certificate path it records verifies again offline at the block's time, to
    the CA genesis names for the member."""
    c = consortium
    receipt = c.register("alice")
    c.issue()  # a later block, so the registration's checkpoint exists
    reader = c.node.reader
    bundle = export_bundle(reader, receipt.events[0])
    verdict = verify_bundle(bundle, genesis_hash=c.genesis.hash.hex())
    facts = identity_facts(bundle, verdict.event)
    assert f"Account {c.addr('alice')} was registered for member bank" in facts[0]
    assert c.commit("alice").hex() in facts[0]
    assert "a CA that genesis names for member bank" in facts[1]
    other = export_bundle(reader, receipt.events[0] + 1)
    assert identity_facts(other, verify_bundle(other).event) == []
    forged = dict(verdict.event, to=c.addr("bob"))
    with pytest.raises(EvidenceError) as refused:
        identity_facts(bundle, forged)
    assert refused.value.reason == "identity"


def test_identity_blocks_replay_to_the_same_roots(intl: Consortium, tmp_path: Path) -> None:
    """Registrations (X.509 chains checked at block time), refusals, votes, claims, a
    rotation and a revocation replay on fresh nodes under other hash seeds to the same
    block hashes and state roots."""
    c = intl
    c.issue()
    c.register("alice")
    c.register("bob", member="broker")
    code_of(c, "admin", "account.register", {"certificate": c.certificate("carol", "broker"),
                                             "commitment": c.commit("carol"), "kyc": 1})
    c.vote_through("admin", "claim.topic", topic="kyc", issuers=[c.addr("broker")])
    c.ok("broker", "claim.issue", {"subject": c.addr("alice"), "topic": "kyc", "value": 3})
    c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"), "quantity": 9})
    c.keys["alice2"] = generate("alice2", "intl")
    c.ok("alice", "account.rotate", {"certificate": c.certificate("alice2"),
                                     "assets": ["BOND"]})
    bob = c.node.reader.value(f"account/{c.addr('bob')}".encode())
    c.ok("broker", "cert.revoke", {"issuer": bob["issuer"], "serial": bob["serial"]})
    proposal = c.ok("admin", "gov.propose", {"action": "role.define", "role": "auditor"}).tx
    c.ok("broker", "gov.vote", {"proposal": proposal, "vote": "against"})
    blocks, expected = recorded_blocks(c.node)
    for replayed in replay_under_seeds(c.genesis, blocks, tmp_path):
        assert replayed == expected
