"""The security token template with identity source "chain" (tally/apps/contracts/
security_token.py, docs/apps.md): on a protocol-version-4 chain of four members, an
investor is verified by the chain itself (a registered, active account holding a valid
``qualified_investor`` claim; its country the value of its ``jurisdiction`` claim), not
by a registry the token's agents keep. Each test runs on its own consortium chain
(tests/support/consortium.py): the committee names the claims' trusted issuers and
deploys the token, every call a signed transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tally.apps import source
from tally.exec.custody import contract_address
from tally.keys import generate
from tally.protocol.receipt import Receipt
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki

ASSET = "BOND-2031"
INVESTOR = "qualified_investor"
COUNTRY = "jurisdiction"
#: Who issues which claims: the committee trusts the broker for the investor's
#: qualification and the custodian for where the investor is.
ISSUERS = {INVESTOR: "broker", COUNTRY: "custodian"}


def send(c: Consortium, name: str, method: str, *args: Any) -> Receipt:
    return c.send(name, "contract.call", {"contract": "bond", "method": method,
                                          "args": list(args)})


def call(c: Consortium, name: str, method: str, *args: Any) -> Any:
    receipt = send(c, name, method, *args)
    assert receipt.ok, receipt
    return receipt.result


def refused(c: Consortium, name: str, method: str, *args: Any) -> str:
    """The message of the token's refusal (nothing else may refuse the call)."""
    receipt = send(c, name, method, *args)
    assert receipt.code == "CONTRACT_ERROR", receipt
    return receipt.message


def query(c: Consortium, method: str, *args: Any) -> Any:
    return c.node.reader.contract_query("bond", method, list(args))


def claim(c: Consortium, name: str, topic: str, value: int | str, **extra: Any) -> Receipt:
    return c.ok(ISSUERS[topic], "claim.issue", {"subject": c.addr(name), "topic": topic,
                                                 "value": value, **extra})


def investor(c: Consortium, name: str, country: str | None = "CN") -> str:
    """Register ``name`` with the bank and have it qualified (and placed in ``country``)."""
    c.register(name)
    claim(c, name, INVESTOR, 1)
    if country is not None:
        claim(c, name, COUNTRY, country)
    return c.addr(name)


def block_time(c: Consortium) -> int:
    return c.node.reader.block(c.node.reader.height())["header"]["time"]


@pytest.fixture
def c(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    """The committee trusts :data:`ISSUERS` and deploys ``bond`` (identity source "chain";
    owner admin, agent ``agent``; role issuer voted to the contract); alice is a qualified investor
    in CN holding 100; the token is unpaused."""
    chain = Consortium(tmp_path, "intl", pki)
    chain.keys["agent"] = generate("agent", "intl")
    chain.register("agent")
    for topic, issuer in ISSUERS.items():
        chain.vote_through("admin", "claim.topic", topic=topic, issuers=[chain.addr(issuer)])
    chain.vote_through("admin", "contract.deploy", name="bond",
                       source=source("security_token"),
                       args=[ASSET, "Bond 2031", [chain.addr("agent")], chain.addr("admin"),
                             "chain"])
    chain.vote_through("admin", "role.grant", contract="bond", role="issuer")
    assert "issuer" in chain.node.reader.value(f"role/{contract_address('bond')}".encode())
    investor(chain, "alice")
    call(chain, "agent", "issue", chain.addr("alice"), 100)
    call(chain, "agent", "unpause")
    yield chain
    chain.stop()


def test_a_qualified_registered_investor_receives(c: Consortium) -> None:
    assert query(c, "identity_settings") == {
        "source": "chain", "investor_topic": INVESTOR, "country_topic": COUNTRY}
    bob = investor(c, "bob")
    assert query(c, "is_verified", bob) is True
    assert query(c, "identity", bob) == {"country": "CN", "investor_type": 1,
                                         "member": "bank", "kyc": 2}
    assert query(c, "can_transfer", c.addr("alice"), bob, 10)["code"] == "0x51"
    assert call(c, "alice", "transfer", bob, 10) is True
    assert query(c, "balance_of", bob) == 10
    assert query(c, "holder_count") == 2


def test_unregistered_and_unqualified_accounts_are_refused(c: Consortium) -> None:
    bob = c.addr("bob")
    assert query(c, "is_verified", bob) is False
    assert query(c, "identity", bob) is None
    assert refused(c, "alice", "transfer", bob, 10) == \
        f"0x57 invalid receiver: {bob} is not a registered account"
    assert refused(c, "agent", "issue", bob, 10).startswith("0x57 invalid receiver:")
    c.register("bob")  # registered: not yet qualified
    unqualified = f"0x57 invalid receiver: {bob} holds no valid {INVESTOR} claim"
    assert refused(c, "alice", "transfer", bob, 10) == unqualified
    claim(c, "bob", COUNTRY, "CN")  # a country alone does not qualify
    claim(c, "bob", INVESTOR, 0)  # nor does a claim that says 0
    assert query(c, "can_transfer", c.addr("alice"), bob, 10) == {
        "ok": False, "code": "0x57", "reason": unqualified}
    claim(c, "bob", INVESTOR, "professional")
    assert query(c, "identity", bob)["investor_type"] == "professional"
    call(c, "alice", "transfer", bob, 10)
    # The committee withdraws its trust in the broker: the broker's claims stop counting.
    c.vote_through("admin", "claim.topic", topic=INVESTOR, issuers=[c.addr("regulator")])
    assert refused(c, "bob", "transfer", c.addr("alice"), 5) == \
        f"0x57 invalid receiver: {c.addr('alice')} holds no valid {INVESTOR} claim"
    assert query(c, "balance_of", bob) == 10


def test_an_expired_claim_stops_counting(c: Consortium) -> None:
    bob = c.addr("bob")
    c.register("bob")
    expires = block_time(c) + 5_000  # block time: the chain's clock moves 1 s a block
    claim(c, "bob", INVESTOR, 1, expires_ms=expires)
    claim(c, "bob", COUNTRY, "CN")
    call(c, "alice", "transfer", bob, 10)
    for _ in range(10):
        if block_time(c) >= expires:
            break
        call(c, "alice", "approve", "dvp")  # any transaction moves the chain on
        call(c, "alice", "revoke", "dvp")
    assert block_time(c) >= expires
    assert query(c, "is_verified", bob) is False
    assert refused(c, "alice", "transfer", bob, 10) == \
        f"0x57 invalid receiver: {bob} holds no valid {INVESTOR} claim"
    # An investor whose claim expired still sells (the sender need not be verified).
    call(c, "bob", "transfer", c.addr("alice"), 10)


def test_a_revoked_claim_stops_counting(c: Consortium) -> None:
    bob = investor(c, "bob")
    call(c, "alice", "transfer", bob, 10)
    c.ok("broker", "claim.revoke", {"subject": bob, "topic": INVESTOR, "reason": "lapsed"})
    assert query(c, "is_verified", bob) is False
    assert refused(c, "alice", "transfer", bob, 10) == \
        f"0x57 invalid receiver: {bob} holds no valid {INVESTOR} claim"


def test_a_frozen_account_is_refused(c: Consortium) -> None:
    bob = investor(c, "bob")
    c.ok("regulator", "account.freeze", {"account": bob, "reason": "court order"})
    assert query(c, "is_verified", bob) is False
    assert refused(c, "alice", "transfer", bob, 10) == \
        f"0x57 invalid receiver: {bob}'s account may not act (status frozen)"
    c.ok("regulator", "account.unfreeze", {"account": bob})
    call(c, "alice", "transfer", bob, 10)


def test_a_blocked_jurisdiction_is_refused(c: Consortium) -> None:
    alice, bob, carol = c.addr("alice"), investor(c, "bob", "US"), investor(c, "carol", None)
    assert query(c, "identity", carol)["country"] == ""
    call(c, "admin", "block_country", "US")
    assert refused(c, "alice", "transfer", bob, 10) == \
        f"0x57 invalid receiver: investors in US may not hold {ASSET}"
    # While any country is blocked, an investor with no valid country claim is refused.
    assert refused(c, "alice", "transfer", carol, 10) == (
        f"0x57 invalid receiver: {carol} has no valid {COUNTRY} claim and {ASSET} blocks "
        "investors of some countries")
    claim(c, "carol", COUNTRY, "sg")  # not an ISO 3166-1 alpha-2 code: unknown
    assert query(c, "identity", carol)["country"] == ""
    assert query(c, "can_transfer", alice, carol, 10)["code"] == "0x57"
    claim(c, "carol", COUNTRY, "SG")
    call(c, "alice", "transfer", carol, 10)
    call(c, "admin", "unblock_country", "US")
    call(c, "alice", "transfer", bob, 10)


def test_the_token_registry_refuses_in_chain_mode(c: Consortium) -> None:
    bob = c.addr("bob")
    c.register("bob")
    expected = (f"INVALID: Bond 2031's identities come from the chain's claims ({INVESTOR}, "
                f"{COUNTRY}), not from a registry of its own")
    assert refused(c, "agent", "register_identity", bob, "CN", "professional") == expected
    assert refused(c, "agent", "update_identity", bob, "CN", "professional") == expected
    assert refused(c, "agent", "remove_identity", bob) == expected
    assert refused(c, "bob", "register_identity", bob, "CN", "x").startswith("UNAUTHORISED:")
    assert query(c, "is_verified", bob) is False


def test_forced_transfers_and_recovery_check_the_chain(c: Consortium) -> None:
    alice, bob = c.addr("alice"), c.addr("bob")
    c.register("bob")
    not_qualified = f"0x57 invalid receiver: {bob} holds no valid {INVESTOR} claim"
    assert refused(c, "agent", "forced_transfer", alice, bob, 10) == not_qualified
    assert refused(c, "agent", "recover", alice, bob) == not_qualified
    claim(c, "bob", INVESTOR, 1)
    call(c, "admin", "block_country", "US")
    # Forced transfers ignore compliance, as with the token's own registry.
    call(c, "agent", "forced_transfer", alice, bob, 10)
    call(c, "agent", "recover", alice, bob)
    assert query(c, "balance_of", bob) == 100
    assert query(c, "is_frozen", alice) is True
