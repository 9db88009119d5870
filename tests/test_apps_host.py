"""The template loader (tally.apps) and the test custody host (tests/apps_host.py) the
template scenarios run on: controller checks, the issuer role, argument checks."""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from tally.apps import TEMPLATES, source, sources
from tally.vm import DEFAULT_LIMITS, HostError, compile_contract
from tally.vm.testing import Harness
from tests.apps_host import (
    CallFailed,
    HarnessEnv,
    account,
    agent_key,
    asset_key,
    contract_address,
    custody_host,
    holding_key,
)

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
        assert compiled.code_id == hashlib.sha256(text.encode()).digest()
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
def h() -> Harness:
    h = Harness(host=custody_host)
    h.deploy("probe", PROBE)
    h.deploy("owner", PROBE)
    h.storage.data[f"custody/role/issuer/{contract_address('owner')}".encode()] = cbor2.dumps(
        True, canonical=True
    )
    h.call("owner", "run", "custody.issue", ["GOLD", "other", "Gold", 10, account("alice")])
    return h


def host_fails(h: Harness, contract: str, function: str, args: list, code: str) -> str:
    with pytest.raises(HostError) as info:
        h.call(contract, "run", function, args)
    assert info.value.code == code, info.value.message
    return info.value.message


def test_addresses(h: Harness) -> None:
    assert h.call("probe", "run", "custody.address", []) == contract_address("probe")
    assert h.call("probe", "run", "custody.address_of", ["dvp"]) == contract_address("dvp")
    assert len(contract_address("x")) == 40 and contract_address("x") != contract_address("y")


def test_only_the_controller_moves_mints_or_burns(h: Harness) -> None:
    alice, bob = account("alice"), account("bob")
    for function, args in [
        ("custody.transfer_from", ["GOLD", alice, bob, 1]),
        ("custody.mint", ["GOLD", bob, 1]),
        ("custody.burn", ["GOLD", alice, 1]),
    ]:
        host_fails(h, "probe", function, args, "UNAUTHORISED")
    h.call("owner", "run", "custody.transfer_from", ["GOLD", alice, bob, 4])
    h.call("owner", "run", "custody.mint", ["GOLD", bob, 5])
    h.call("owner", "run", "custody.burn", ["GOLD", alice, 6])
    assert h.query("probe", "look", "GOLD", alice) == {"q": 0, "p": 0, "f": 0}
    assert h.query("probe", "look", "GOLD", bob) == {"q": 9, "p": 0, "f": 0}
    record = cbor2.loads(h.storage.data[asset_key("GOLD")])
    assert record["supply"] == 9 and record["controller"] == "owner"
    assert [e.name for e in h.events if e.contract == "custody"] == [
        "asset.issue", "custody.transfer", "asset.mint", "asset.burn",
    ]


def test_units_held_by_a_contract_of_a_controlled_asset_stay_put(h: Harness) -> None:
    h.call("owner", "run", "custody.mint", ["GOLD", contract_address("probe"), 3])
    host_fails(h, "probe", "custody.transfer", ["GOLD", account("bob"), 1], "UNAUTHORISED")


def test_free_units_only(h: Harness) -> None:
    alice, bob = account("alice"), account("bob")
    key = holding_key("GOLD", alice)
    h.storage.data[key] = cbor2.dumps({"q": 10, "p": 3, "f": 4}, canonical=True)
    message = host_fails(h, "owner", "custody.transfer_from", ["GOLD", alice, bob, 4],
                         "INSUFFICIENT_UNITS")
    assert "has 3 free units" in message
    h.call("owner", "run", "custody.transfer_from", ["GOLD", alice, bob, 3])
    host_fails(h, "owner", "custody.burn", ["GOLD", alice, 1], "INSUFFICIENT_UNITS")


def test_uncontrolled_assets_move_for_an_appointed_agent(h: Harness) -> None:
    alice, bob = account("alice"), account("bob")
    h.storage.data[asset_key("BOX")] = cbor2.dumps(
        {"class": "document", "name": "Box", "issuer": alice, "supply": 5, "status": "active"},
        canonical=True,
    )
    h.storage.data[holding_key("BOX", alice)] = cbor2.dumps({"q": 5, "p": 0, "f": 0},
                                                             canonical=True)
    host_fails(h, "probe", "custody.transfer_from", ["BOX", alice, bob, 1], "UNAUTHORISED")
    h.storage.data[agent_key(alice, contract_address("probe"))] = cbor2.dumps(True,
                                                                              canonical=True)
    h.call("probe", "run", "custody.transfer_from", ["BOX", alice, contract_address("probe"), 2])
    h.call("probe", "run", "custody.transfer", ["BOX", bob, 1])  # from its own account
    assert h.query("probe", "look", "BOX", bob)["q"] == 1
    host_fails(h, "probe", "custody.mint", ["BOX", bob, 1], "UNAUTHORISED")


def test_issue_rules(h: Harness) -> None:
    alice = account("alice")
    host_fails(h, "probe", "custody.issue", ["NEW", "other", "New", 1, alice], "UNAUTHORISED")
    host_fails(h, "owner", "custody.issue", ["GOLD", "other", "Gold", 1, alice], "ALREADY_EXISTS")
    for bad in (
        ["NEW", "bonds", "New", 1, alice],
        ["NEW", "other", "", 1, alice],
        ["NEW", "other", "New", 0, alice],
        ["NEW", "other", "New", 2**63, alice],
        ["NEW", "other", "New", 1, "alice"],
        ["bad asset", "other", "New", 1, alice],
    ):
        host_fails(h, "owner", "custody.issue", bad, "INVALID_PAYLOAD")
    host_fails(h, "owner", "custody.transfer_from", ["GOLD", alice, alice, 1], "INVALID_PAYLOAD")
    host_fails(h, "owner", "custody.mint", ["NONE", alice, 1], "NOT_FOUND")
    host_fails(h, "owner", "custody.nothing", [1], "HOST_UNKNOWN")


def test_harness_env_reports_failures_with_code_and_contract() -> None:
    env = HarnessEnv()
    env.deploy("cash", source("digital_cash"), "CNY", "e-CNY", caller=account("bank"))
    with pytest.raises(CallFailed) as info:
        env.call("cash", "issue", account("x"), 1, caller=account("x"))
    assert (info.value.code, info.value.contract) == ("CONTRACT_ERROR", "cash")
    assert env.holding("CNY", account("x")) == {"q": 0, "p": 0, "f": 0}
