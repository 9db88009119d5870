"""The regulatory sandbox (protocol version 4): the committee, with a regulator voting for
it, admits a deployed contract with caps; the executor refuses calls outside them and
changes nothing; every call that runs is a ``sandbox.call`` event; the committee ends the
trial by vote, and what happened stays on record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.errors import Code
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki

PILOT = """
class Pilot(Contract):
    def start(self):
        host_call("custody.issue", "PILOT", "cash", "Pilot cash", 1000000,
                  host_call("custody.address"))

    def pay(self, to: str, amount: int):
        host_call("custody.transfer", "PILOT", to, amount)
"""


@pytest.fixture
def c(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    """``pilot`` deployed and funded with 1,000,000 units; alice and bob registered."""
    chain = Consortium(tmp_path, "intl", pki)
    chain.register("alice")
    chain.register("bob")
    chain.vote_through("admin", "contract.deploy", name="pilot", source=PILOT)
    chain.vote_through("admin", "role.grant", contract="pilot", role="issuer")
    chain.ok("admin", "contract.call", {"contract": "pilot", "method": "start", "args": []})
    yield chain
    chain.stop()


def pay(c: Consortium, caller: str, amount: int, to: str = "bob"):
    return c.send(caller, "contract.call", {"contract": "pilot", "method": "pay",
                                            "args": [c.addr(to), amount]})


def sandbox(c: Consortium) -> dict:
    record = c.node.reader.value(b"sandbox/pilot")
    assert record is not None
    return record


def test_a_sandbox_needs_a_regulator_among_its_votes(c: Consortium) -> None:
    caps = {"contract": "pilot", "max_per_call": 100, "max_total": 250,
            "participants": [c.addr("alice")], "end_height": 10_000}
    proposal = c.ok("admin", "gov.propose", {"action": "sandbox.open", **caps}).tx
    c.ok("broker", "gov.vote", {"proposal": proposal, "vote": "for"})
    passed = c.send("custodian", "gov.vote", {"proposal": proposal, "vote": "for"})
    assert passed.code == Code.UNAUTHORISED and "regulator" in passed.message
    assert c.node.reader.value(b"sandbox/pilot") is None


def test_the_executor_enforces_the_caps_and_the_committee_ends_the_trial(
        c: Consortium) -> None:
    height = c.node.reader.height()
    c.vote_through("admin", "sandbox.open", voters=("regulator", "broker"),
                   contract="pilot", max_per_call=100, max_total=250,
                   participants=[c.addr("alice")], end_height=height + 1000)
    assert pay(c, "alice", 100).ok
    over_call = pay(c, "alice", 101)
    assert over_call.code == Code.SANDBOX_CAP and "per call" in over_call.message
    assert pay(c, "bob", 1).code == Code.SANDBOX_CAP  # not a participant
    assert pay(c, "alice", 100).ok
    over_total = pay(c, "alice", 60)
    assert over_total.code == Code.SANDBOX_CAP and "250" in over_total.message
    assert c.holding("PILOT", "bob")["q"] == 200  # refused calls changed nothing
    record = sandbox(c)
    assert record["moved"] == 200 and record["calls"] == 2
    calls = [e for e in c.node.reader.events() if e["type"] == "sandbox.call"]
    assert [e["quantity"] for e in calls] == [100, 100]
    assert calls[-1]["details"] == {"contract": "pilot", "total": 200}
    c.vote_through("admin", "sandbox.close", voters=("regulator", "broker"),
                   contract="pilot", outcome="graduate", reason="pilot succeeded")
    assert sandbox(c)["status"] == "graduated"
    assert pay(c, "bob", 500, to="alice").ok  # caps lifted: any caller, any amount
    closes = [e for e in c.node.reader.events() if e["type"] == "sandbox.close"]
    assert closes[0]["details"]["moved"] == 200


def test_a_closed_sandbox_refuses_every_call_and_an_ended_one_too(c: Consortium) -> None:
    height = c.node.reader.height()
    c.vote_through("admin", "sandbox.open", voters=("regulator", "broker"),
                   contract="pilot", max_per_call=10, max_total=10,
                   participants=[c.addr("alice")], end_height=height + 5)
    c.issue()
    c.issue("B2")
    c.issue("B3")
    ended = pay(c, "alice", 1)
    assert ended.code == Code.SANDBOX_CAP and "ended" in ended.message
    c.vote_through("admin", "sandbox.close", voters=("regulator", "broker"),
                   contract="pilot", outcome="close")
    assert pay(c, "alice", 1).code == Code.SANDBOX_CAP
