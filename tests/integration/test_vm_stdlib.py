"""The contract standard library (tally/vm/stdlib, decision 0904): what may be imported
and how, the pinned texts and the code id that names them, the texts on chain, the
functions themselves, and a token built from std.token on a real chain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.vm import ContractError, ContractRejected, compile_contract, stdlib
from tally.vm.compiler import compile_library, library, linked_code_id
from tally.vm.testing import Harness
from tests.support.apps import AppChain

CHECKS = """
from std.checks import (
    MAX_AMOUNT, is_address, is_amount, is_country, is_identifier, problem_code,
    require_address, require_amount, require_optional_address, verdict,
)


class Checks(Contract):
    @view
    def run(self, function: str, args: list):
        if function == "MAX_AMOUNT":
            return MAX_AMOUNT
        if function == "is_address":
            return is_address(args[0])
        if function == "is_amount":
            return is_amount(args[0])
        if function == "is_country":
            return is_country(args[0])
        if function == "is_identifier":
            return is_identifier(args[0], args[1])
        if function == "problem_code":
            return problem_code(args[0])
        if function == "verdict":
            return verdict(args[0], args[1])
        if function == "require_address":
            return require_address(args[0], args[1])
        if function == "require_optional_address":
            return require_optional_address(args[0], args[1])
        return require_amount(args[0], args[1])
"""


# --- the modules ---------------------------------------------------------------------------


def test_each_module_is_pinned_compiled_and_exports_its_functions() -> None:
    assert set(stdlib.LIBRARIES) == set(stdlib.PINNED) == {"std.checks", "std.token"}
    for module in stdlib.LIBRARIES:
        text = stdlib.source(module)
        lib = library(module)
        assert lib.code_id.hex() == stdlib.PINNED[module] == hashlib.sha256(
            text.encode()).hexdigest()
        assert lib.source == text and text.startswith("# ruff: noqa: F821\n")
    assert {"is_address", "require_amount", "verdict", "MAX_AMOUNT"} <= library(
        "std.checks").exports
    assert {"caller_account", "issue_units", "burn_units", "move_units", "approve", "revoke",
            "require_operator", "require_owner"} <= library("std.token").exports
    with pytest.raises(KeyError):
        stdlib.source("std.nope")


def test_a_module_that_differs_from_its_pin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stdlib.PINNED, "std.checks", "00" * 32)
    with pytest.raises(RuntimeError, match="differs from its pinned text"):
        stdlib.source("std.checks")


@pytest.mark.parametrize(("text", "message"), [
    ("class A:\n    pass\n", "no class"),
    ("from std.checks import is_address\n", "imports nothing"),
    ("import std\n", "imports nothing"),
    ("x = []\n", "constants must be"),
])
def test_library_modules_hold_functions_and_constants_only(text: str, message: str) -> None:
    with pytest.raises(ContractRejected, match=message):
        compile_library("std.x", text)


# --- importing -------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "message"), [
    ("import std\nclass A:\n    pass\n", "only 'from std.<module> import <name>'"),
    ("import os\nclass A:\n    pass\n", "only 'from std.<module> import <name>'"),
    ("from os import path\nclass A:\n    pass\n", "no library module 'os'"),
    ("from std.nope import x\nclass A:\n    pass\n", "no library module 'std.nope'"),
    ("from .checks import x\nclass A:\n    pass\n", "no library module"),
    ("from std.checks import nope\nclass A:\n    pass\n", "std.checks has no 'nope'"),
    ("from std.checks import _nope\nclass A:\n    pass\n", "std.checks has no '_nope'"),
    ("from std.checks import *\nclass A:\n    pass\n", "name what you import"),
    ("class A:\n    def f(self):\n        from std.checks import is_address\n",
     "only at module level"),
    ("from std.checks import is_address\ndef is_address(x):\n    return x\nclass A:\n    pass\n",
     "bound twice"),
    ("from std.checks import is_address, is_amount as is_address\nclass A:\n    pass\n",
     "bound twice"),
    ("from std.token import caller_account as require\nclass A:\n    pass\n",
     "runtime name"),
    ("from std.checks import is_address as _x\nclass A:\n    pass\n", "reserved"),
])
def test_what_a_contract_may_import(source: str, message: str) -> None:
    with pytest.raises(ContractRejected, match=message):
        compile_contract(source)


def test_the_code_id_names_the_source_and_each_imported_module() -> None:
    plain = "class A:\n    def f(self) -> int:\n        return 1\n"
    assert compile_contract(plain).code_id == hashlib.sha256(plain.encode()).digest()
    both = ("from std.token import caller_account\nfrom std.checks import is_address\n"
            "class A:\n    def f(self) -> bool:\n        return is_address(caller_account())\n")
    compiled = compile_contract(both)
    assert compiled.imports == (("std.token", "caller_account", "caller_account"),
                                ("std.checks", "is_address", "is_address"))
    # Modules in name order, each as NUL, name, NUL, the module's SHA-256.
    preimage = (both.encode() + b"\0std.checks\0" + bytes.fromhex(stdlib.PINNED["std.checks"])
                + b"\0std.token\0" + bytes.fromhex(stdlib.PINNED["std.token"]))
    assert compiled.code_id == hashlib.sha256(preimage).digest()
    assert compiled.code_id == linked_code_id(
        both, [library("std.token"), library("std.checks")])


# --- the functions, in a contract's frame ---------------------------------------------------


@pytest.fixture(scope="module")
def checks() -> Harness:
    h = Harness()
    h.deploy("checks", CHECKS)
    return h


def run(h: Harness, function: str, *args: object) -> object:
    return h.query("checks", "run", function, list(args))


def test_std_checks(checks: Harness) -> None:
    a = "ab" * 20
    assert run(checks, "MAX_AMOUNT") == 2**63 - 1
    assert [run(checks, "is_address", v) for v in (a, a.upper(), a[:-1], "", 7, None)] == [
        True, False, False, False, False, False]
    assert [run(checks, "is_amount", v) for v in (1, 2**63 - 1, 0, -1, 2**63, True, "1")] == [
        True, True, False, False, False, False, False]
    assert [run(checks, "is_country", v) for v in ("CN", "cn", "CHN", "", 1)] == [
        True, False, False, False, False]
    assert [run(checks, "is_identifier", v, 8) for v in ("T-1.a:b_", "T 1", "", "x" * 9)] == [
        True, False, False, False]
    assert run(checks, "problem_code", "NO_WALLET: x has no wallet") == "NO_WALLET"
    assert run(checks, "problem_code", "0x52 insufficient balance: x") == "0x52"
    assert run(checks, "verdict", "", "0x51") == {"ok": True, "code": "0x51",
                                                  "reason": "transfer succeeds"}
    assert run(checks, "verdict", "0x54 transfers halted: paused", "0x51") == {
        "ok": False, "code": "0x54", "reason": "0x54 transfers halted: paused"}
    assert run(checks, "require_address", a, "owner") is None
    assert run(checks, "require_optional_address", "", "regulator") is None
    for function, args, message in [
        ("require_address", ["x", "owner"], "INVALID: owner is not an address"),
        ("require_optional_address", ["x", "regulator"], "INVALID: regulator is not an address"),
        ("require_amount", [0, "0x50 transfer failure"],
         f"0x50 transfer failure: amount must be between 1 and {2**63 - 1}"),
    ]:
        with pytest.raises(ContractError) as info:
            run(checks, function, *args)
        assert info.value.message == message and info.value.contract == "checks"


def test_a_library_function_costs_what_the_same_code_in_the_contract_costs() -> None:
    inline = stdlib.source("std.checks").split("def is_address", 1)[1].split("\n\n\n")[0]
    local = f"""
HEX = "0123456789abcdef"


def is_address{inline}


class A:
    @view
    def f(self, value: str) -> bool:
        return is_address(value)
"""
    imported = """
from std.checks import is_address


class A:
    @view
    def f(self, value: str) -> bool:
        return is_address(value)
"""
    h = Harness()
    h.deploy("local", local)
    h.deploy("imported", imported)
    for value in ("ab" * 20, "x"):
        steps = [h.vm.query(name, "f", [value], storage=h.storage, ctx=h.ctx("r"))
                 .steps_used for name in ("local", "imported")]
        assert steps[0] == steps[1] > 0


def test_the_first_deploy_that_imports_a_module_writes_its_text() -> None:
    h = Harness()
    first = h.vm.deploy("one", CHECKS, storage=h.storage, ctx=h.ctx("d"))
    assert first.write_set[stdlib.library_key("std.checks")] is not None
    h.storage.apply(first.write_set)
    second = h.vm.deploy("two", CHECKS, storage=h.storage, ctx=h.ctx("d"))
    assert stdlib.library_key("std.checks") not in second.write_set  # once on chain
    assert stdlib.library_key("std.token") not in first.write_set  # not imported


# --- on a chain --------------------------------------------------------------------------------

MINI = """
from std.checks import require_address, require_amount
from std.token import (
    approve, balance_of, burn_units, caller_account, is_approved, issue_units, move_units,
    require_operator, require_owner, revoke,
)


class Mini(Contract):
    owner = Var(str)
    asset = Var(str)
    name = Var(str)
    issued = Var(bool)
    supply = Var(int)
    approvals = Map(str, bool)

    def init(self, asset: str, owner: str):
        require_address(owner, "owner")
        self.owner = owner
        self.asset = asset
        self.name = asset + " units"

    def issue(self, to: str, amount: int):
        require_owner(self)
        require_amount(amount)
        issue_units(self, "other", to, amount)

    def burn(self, holder: str, amount: int):
        require_owner(self)
        burn_units(self, holder, amount)

    def transfer(self, to: str, amount: int):
        move_units(self, caller_account(), to, amount)

    def approve(self, operator: str):
        approve(self, operator)

    def revoke(self, operator: str):
        revoke(self, operator)

    def transfer_from(self, holder: str, to: str, amount: int):
        require_operator(self, holder)
        move_units(self, holder, to, amount)

    @view
    def info(self) -> list:
        return [self.supply, self.issued]

    @view
    def balance(self, account: str) -> int:
        return balance_of(self, account)

    @view
    def approved(self, holder: str, operator: str) -> bool:
        return is_approved(self, holder, operator)
"""

OPERATOR = """
class Operator:
    def move(self, token: str, holder: str, to: str, amount: int):
        call(token, "transfer_from", holder, to, amount)

    def pay(self, token: str, to: str, amount: int):
        call(token, "transfer", to, amount)
"""


@pytest.fixture
def mini(tmp_path: Path) -> Iterator[AppChain]:
    chain = AppChain(tmp_path)
    with chain.batch():
        chain.deploy("mini", MINI, "MINI", chain.account("owner"))
        chain.deploy("op", OPERATOR)
        chain.grant_issuer("mini")
    yield chain
    chain.stop_in_background()


def test_a_token_built_from_std_token(mini: AppChain) -> None:
    alice, bob, op = mini.account("alice"), mini.account("bob"), mini.contract_address("op")
    assert mini.fails("mini", "issue", alice, 5, caller="alice").message == (
        "UNAUTHORISED: only the owner may do this")
    with mini.batch():
        mini.call("mini", "issue", alice, 70, caller="owner")  # registers MINI
        mini.call("mini", "issue", op, 30, caller="owner")  # then mints
    assert mini.query("mini", "info") == [100, True]
    assert [e.name for e in mini.custody_events() if e.data["asset"] == "MINI"] == [
        "asset.issue", "asset.mint"]
    mini.call("mini", "transfer", bob, 20, caller="alice")
    mini.call("op", "pay", "mini", bob, 10, caller="anyone")  # op pays as its own account
    assert [mini.query("mini", "balance", x) for x in (alice, bob, op)] == [50, 30, 20]
    refused = mini.fails("op", "move", "mini", alice, bob, 1, caller="bob")
    assert refused.message == f"NOT_APPROVED: op is not an operator of {alice}"
    mini.call("mini", "approve", "op", caller="alice")
    assert mini.query("mini", "approved", alice, "op") is True
    mini.call("op", "move", "mini", alice, bob, 5, caller="bob")
    mini.call("mini", "revoke", "op", caller="alice")
    assert mini.fails("mini", "revoke", "op", caller="alice").message == (
        f"NOT_FOUND: op is not an operator of {alice}")
    assert [e.name for e in mini.contract_events()] == ["Approval", "ApprovalRevoked"]
    mini.call("mini", "burn", bob, 35, caller="owner")
    assert mini.query("mini", "info") == [65, True]
    assert mini.holding("MINI", bob) == {"q": 0, "p": 0, "f": 0}


def test_an_auditor_rebuilds_the_code_id_from_state(mini: AppChain) -> None:
    """Everything that runs is on chain: the contract's source and the library texts
    it imports; their hashes give the code id the registry and the deploy event name."""
    record = mini.node.reader.contract("mini")
    source = mini.node.reader.contract_source("mini")
    texts = {m: mini.node.reader.value(stdlib.library_key(m)) for m in ("std.checks", "std.token")}
    preimage = source.encode() + b"".join(
        b"\0" + m.encode() + b"\0" + hashlib.sha256(texts[m].encode()).digest()
        for m in sorted(texts))
    assert record["code_id"] == hashlib.sha256(preimage).hexdigest()
    deploy = next(e for e in mini.node.reader.events() if e["type"] == "contract.deploy"
                  and e["details"]["contract"] == "mini")
    assert deploy["data"] == record["code_id"]
    assert mini.node.reader.value(stdlib.library_key("std.token")) == stdlib.source("std.token")


def test_an_upgrade_that_imports_a_module_writes_its_text(tmp_path: Path) -> None:
    chain = AppChain(tmp_path)
    try:
        chain.deploy("plain", OPERATOR)
        assert chain.node.reader.value(stdlib.library_key("std.checks")) is None
        upgraded = OPERATOR.replace("class Operator:", "from std.checks import is_address\n\n\n"
                                    "class Operator:\n    @view\n    def ok(self, a: str) -> bool:"
                                    "\n        return is_address(a)\n")
        proposal = chain.ok("admin", "gov.propose", {"action": "contract.upgrade",
                                                     "name": "plain", "source": upgraded})
        chain.ok("admin2", "gov.approve", {"proposal": proposal.tx})
        assert chain.node.reader.value(stdlib.library_key("std.checks")) == stdlib.source("std.checks")
        assert chain.query("plain", "ok", "ab" * 20) is True
    finally:
        chain.stop_in_background()
