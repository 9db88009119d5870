"""The template loader (tally.apps), and the custody host functions the templates stand
on, exercised on a real chain through a probe contract: controller checks, the issuer
role, free units only, agents for uncontrolled assets, argument checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.apps import TEMPLATES, source, sources
from tally.exec.custody import asset_key
from tally.vm import DEFAULT_LIMITS, compile_contract, stdlib
from tests.support.apps import AppChain, CallFailed

PROBE = """
class Probe:
    def run(self, function: str, args: list):
        if function == "custody.address":
            return host_call(function)
        if len(args) == 1:
            return host_call(function, args[0])
        if len(args) == 2:
            return host_call(function, args[0], args[1])
        if len(args) == 3:
            return host_call(function, args[0], args[1], args[2])
        if len(args) == 4:
            return host_call(function, args[0], args[1], args[2], args[3])
        return host_call(function, args[0], args[1], args[2], args[3], args[4])

    @view
    def look(self, asset: str, holder: str) -> dict:
        return host_call("custody.holding", asset, holder)
"""


def test_loader_serves_each_template_and_they_compile() -> None:
    assert set(sources()) == set(TEMPLATES) == {"digital_cash", "security_token", "dvp"}
    for name in TEMPLATES:
        text = source(name)
        assert text.startswith("# ruff: noqa: F821\n")
        assert len(text.encode()) <= DEFAULT_LIMITS.max_source_bytes
        compiled = compile_contract(text)
        # The code id names the template and the library modules it imports.
        modules = sorted({module for module, _, _ in compiled.imports})
        assert modules == (["std.checks", "std.token"])
        preimage = text.encode() + b"".join(
            b"\0" + m.encode() + b"\0" + hashlib.sha256(stdlib.source(m).encode()).digest()
            for m in modules)
        assert compiled.code_id == hashlib.sha256(preimage).digest()
    with pytest.raises(KeyError, match="no contract template 'nope'"):
        source("nope")


def test_methods_of_the_templates() -> None:
    methods = {name: set(compile_contract(source(name)).methods) for name in TEMPLATES}
    assert {"open_wallet", "issue", "transfer", "transfer_from", "approve", "revoke",
            "freeze_wallet", "unfreeze_wallet", "redeem", "balance_of", "wallet"} <= methods[
        "digital_cash"
    ]
    assert {"register_identity", "remove_identity", "pause", "unpause", "issue", "transfer",
            "freeze_wallet", "freeze_partial", "unfreeze_partial", "forced_transfer", "recover",
            "burn", "approve", "transfer_from", "can_transfer"} <= methods["security_token"]
    assert {"initiate", "take", "cancel", "trade", "check"} <= methods["dvp"]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[AppChain]:
    """Two probe contracts, ``probe`` and ``owner``; ``owner`` holds role issuer and has
    issued GOLD (10 units to alice), so it controls GOLD."""
    chain = AppChain(tmp_path)
    with chain.batch():
        chain.deploy("probe", PROBE)
        chain.deploy("owner", PROBE)
        chain.grant_issuer("owner")
        run(chain, "owner", "custody.issue", ["GOLD", "other", "Gold", 10, chain.account("alice")])
    yield chain
    chain.stop_in_background()


def run(chain: AppChain, contract: str, function: str, args: list) -> object:
    return chain.call(contract, "run", function, args, caller="anyone")


def host_fails(chain: AppChain, contract: str, function: str, args: list, code: str) -> str:
    with pytest.raises(CallFailed) as info:
        run(chain, contract, function, args)
    assert info.value.code == code, info.value.message
    return info.value.message


def test_addresses(h: AppChain) -> None:
    assert run(h, "probe", "custody.address", []) == h.contract_address("probe")
    assert run(h, "probe", "custody.address_of", ["dvp"]) == h.contract_address("dvp")
    assert len(h.contract_address("x")) == 40
    assert h.contract_address("x") != h.contract_address("y")


def test_only_the_controller_moves_mints_or_burns(h: AppChain) -> None:
    alice, bob = h.account("alice"), h.account("bob")
    for function, args in [
        ("custody.transfer_from", ["GOLD", alice, bob, 1]),
        ("custody.mint", ["GOLD", bob, 1]),
        ("custody.burn", ["GOLD", alice, 1]),
    ]:
        host_fails(h, "probe", function, args, "UNAUTHORISED")
    with h.batch():
        run(h, "owner", "custody.transfer_from", ["GOLD", alice, bob, 4])
        run(h, "owner", "custody.mint", ["GOLD", bob, 5])
        run(h, "owner", "custody.burn", ["GOLD", alice, 6])
    assert h.query("probe", "look", "GOLD", alice) == {"q": 0, "p": 0, "f": 0}
    assert h.query("probe", "look", "GOLD", bob) == {"q": 9, "p": 0, "f": 0}
    record = h.node.reader.value(asset_key("GOLD"))
    assert record["supply"] == 9 and record["controller"] == h.contract_address("owner")
    assert [e["type"] for e in h.node.reader.history("GOLD")] == [
        "asset.issue", "custody.transfer", "asset.mint", "asset.burn",
    ]


def test_units_held_by_a_contract_of_a_controlled_asset_stay_put(h: AppChain) -> None:
    run(h, "owner", "custody.mint", ["GOLD", h.contract_address("probe"), 3])
    host_fails(h, "probe", "custody.transfer", ["GOLD", h.account("bob"), 1], "UNAUTHORISED")


def test_free_units_only(h: AppChain) -> None:
    alice, bob = h.account("alice"), h.account("bob")
    # A holder cannot pledge units of a controlled asset at tier 1 ...
    pledge = h.send("alice", "custody.pledge", {"asset": "GOLD", "pledgee": bob, "quantity": 3})
    assert pledge.code == "UNAUTHORISED", pledge
    # ... but custodians still freeze them: alice's 10 GOLD, 7 frozen by two orders.
    with h.batch():
        h.grant(h.account("custodian"), "custodian")
        for quantity in (4, 3):
            h.ok("custodian", "custody.freeze", {"asset": "GOLD", "holder": alice,
                                                 "quantity": quantity, "reason": "court"})
    assert h.holding("GOLD", alice) == {"q": 10, "p": 0, "f": 7}
    message = host_fails(h, "owner", "custody.transfer_from", ["GOLD", alice, bob, 4],
                         "INSUFFICIENT_UNITS")
    assert "has 3 free units" in message
    run(h, "owner", "custody.transfer_from", ["GOLD", alice, bob, 3])
    host_fails(h, "owner", "custody.burn", ["GOLD", alice, 1], "INSUFFICIENT_UNITS")


def test_uncontrolled_assets_move_for_an_appointed_agent(h: AppChain) -> None:
    alice, bob, probe = h.account("alice"), h.account("bob"), h.contract_address("probe")
    with h.batch():  # BOX: a plain asset of alice's, no controlling contract
        h.grant(h.account("issuer"), "issuer")
        h.ok("issuer", "asset.issue", {"asset": "BOX", "class": "document", "name": "Box",
                                       "quantity": 5, "to": alice})
    host_fails(h, "probe", "custody.transfer_from", ["BOX", alice, bob, 1], "UNAUTHORISED")
    h.ok("alice", "custody.appoint_agent", {"agent": probe})
    with h.batch():
        run(h, "probe", "custody.transfer_from", ["BOX", alice, probe, 2])
        run(h, "probe", "custody.transfer", ["BOX", bob, 1])  # from its own account
    assert h.query("probe", "look", "BOX", bob)["q"] == 1
    assert h.holding("BOX", alice)["q"] == 3
    host_fails(h, "probe", "custody.mint", ["BOX", bob, 1], "UNAUTHORISED")


def test_issue_rules(h: AppChain) -> None:
    alice = h.account("alice")
    message = host_fails(h, "probe", "custody.issue", ["NEW", "other", "New", 1, alice],
                         "UNAUTHORISED")
    assert "issuer" in message
    host_fails(h, "owner", "custody.issue", ["GOLD", "other", "Gold", 1, alice],
               "ALREADY_EXISTS")
    for bad in (
        ["NEW", "bonds", "New", 1, alice],
        ["NEW", "other", "x" * 201, 1, alice],
        ["NEW", "other", "New", 0, alice],
        ["NEW", "other", "New", 2**63, alice],
        ["NEW", "other", "New", 1, "alice"],
        ["bad asset", "other", "New", 1, alice],
    ):
        host_fails(h, "owner", "custody.issue", bad, "INVALID_PAYLOAD")
    host_fails(h, "owner", "custody.transfer_from", ["GOLD", alice, alice, 1],
               "INVALID_PAYLOAD")
    host_fails(h, "owner", "custody.mint", ["NONE", alice, 1], "NOT_FOUND")
    host_fails(h, "owner", "custody.nothing", [1], "VM_NO_HOST")
    assert h.node.reader.value(asset_key("NEW")) is None
