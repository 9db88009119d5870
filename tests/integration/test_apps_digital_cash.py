"""The digital cash template (tally/apps/contracts/digital_cash.py): wallets and their
levels, issue, transfer limits, freezes, redemption, operator approvals; every rule
with its refusal code. Each test runs on its own solo node (tests/support/apps.py):
deploys through the committee, every call a signed transaction."""

from __future__ import annotations

import pytest

from tally.apps import source
from tally.exec.custody import asset_key
from tests.support.apps import AppChain as Env
from tests.support.apps import CallFailed, chain_fixture

env = chain_fixture()

ASSET = "CNY"
DAY_MS = 86_400_000

OPERATOR = """
class Operator:
    def move(self, token: str, holder: str, to: str, amount: int) -> bool:
        return call(token, "transfer_from", holder, to, amount)

    def pay(self, token: str, to: str, amount: int) -> bool:
        return call(token, "transfer", to, amount)
"""


@pytest.fixture
def cash(env: Env) -> Env:
    with env.batch():
        env.deploy("cash", source("digital_cash"), ASSET, "e-CNY", env.account("regulator"),
                   env.account("bank"))
        env.grant_issuer("cash")
    return env


def fails(env: Env, contract: str, method: str, *args: object, caller: str) -> CallFailed:
    return env.fails(contract, method, *args, caller=caller)


def events_named(env: Env, name: str, source: str | None = None) -> list:
    return env.events_named(name, source)


def a(env: Env, label: str) -> str:
    return env.account(label)


def open_and_fund(env: Env, label: str, level: int, amount: int = 0) -> str:
    account = a(env, label)
    with env.batch():
        env.call("cash", "open_wallet", account, level, caller="bank")
        if amount:
            env.call("cash", "issue", account, amount, caller="bank")
    return account


def test_init_records_the_bank_regulator_and_default_levels(cash: Env) -> None:
    info = cash.query("cash", "info")
    assert info == {
        "asset": ASSET,
        "name": "e-CNY",
        "owner": a(cash, "bank"),
        "regulator": a(cash, "regulator"),
        "supply": 0,
    }
    assert cash.query("cash", "level", 1) == {"balance_cap": 0, "per_transfer": 0, "daily": 0}
    assert cash.query("cash", "level", 4) == {
        "balance_cap": 1_000_000,
        "per_transfer": 200_000,
        "daily": 500_000,
    }
    assert cash.query("cash", "level", 7) is None


def test_init_takes_an_explicit_owner_and_checks_addresses(env: Env) -> None:
    env.deploy("cash2", source("digital_cash"), "CNY2", "e-CNY", "", a(env, "pboc"))
    assert env.query("cash2", "info")["owner"] == a(env, "pboc")
    # Without one, the owner is the account that ran the deploy: the proposer.
    env.deploy("cash4", source("digital_cash"), "CNY4", "e-CNY")
    assert env.query("cash4", "info")["owner"] == a(env, "admin")
    with pytest.raises(CallFailed) as info:
        env.deploy("cash3", source("digital_cash"), "CNY3", "e-CNY", "not-an-address")
    assert info.value.code == "CONTRACT_ERROR"
    assert info.value.message.startswith("INVALID: regulator")


# --- wallets -------------------------------------------------------------------------------


def test_open_wallet_rules(cash: Env) -> None:
    bank, alice = a(cash, "bank"), a(cash, "alice")
    assert cash.query("cash", "wallet", alice) is None
    err = fails(cash, "cash", "open_wallet", alice, 1, caller=alice)
    assert err.code == "CONTRACT_ERROR" and err.message.startswith("UNAUTHORISED:")
    assert fails(cash, "cash", "open_wallet", "alice", 1, caller=bank).message.startswith(
        "INVALID: alice is not an address"
    )
    assert fails(cash, "cash", "open_wallet", alice, 5, caller=bank).message == (
        "INVALID: no wallet level 5"
    )
    cash.call("cash", "open_wallet", alice, 3, caller=bank)
    assert fails(cash, "cash", "open_wallet", alice, 1, caller=bank).message.startswith(
        "ALREADY_EXISTS:"
    )
    w = cash.query("cash", "wallet", alice)
    assert w["level"] == 3 and w["frozen"] is False and w["balance"] == 0
    assert w["limits"] == {"balance_cap": 2_000_000, "per_transfer": 500_000, "daily": 500_000}
    assert events_named(cash, "WalletOpened")[-1].data == {"account": alice, "level": 3}


def test_set_level_and_set_wallet_level(cash: Env) -> None:
    bank = a(cash, "bank")
    alice = open_and_fund(cash, "alice", 4)
    assert fails(cash, "cash", "set_level", 5, 1, 1, 1, caller=alice).message.startswith(
        "UNAUTHORISED:"
    )
    assert fails(cash, "cash", "set_level", 10, 1, 1, 1, caller=bank).message.startswith(
        "INVALID: levels"
    )
    assert fails(cash, "cash", "set_level", 5, -1, 1, 1, caller=bank).message.startswith(
        "INVALID: limits"
    )
    cash.call("cash", "set_level", 5, 100, 10, 20, caller=bank)
    assert cash.query("cash", "level", 5) == {"balance_cap": 100, "per_transfer": 10, "daily": 20}
    assert fails(cash, "cash", "issue", alice, 1_000_001, caller=bank).message.startswith(
        "BALANCE_CAP:"
    )
    assert fails(cash, "cash", "set_wallet_level", alice, 1, caller=alice).message.startswith(
        "UNAUTHORISED:"
    )
    assert fails(cash, "cash", "set_wallet_level", alice, 8, caller=bank).message == (
        "INVALID: no wallet level 8"
    )
    cash.call("cash", "set_wallet_level", alice, 1, caller=bank)  # an upgrade lifts the cap
    cash.call("cash", "issue", alice, 1_000_001, caller=bank)
    assert cash.query("cash", "balance_of", alice) == 1_000_001


# --- issue and redeem ------------------------------------------------------------------------


def test_issue_registers_the_controlled_cash_asset_then_mints(cash: Env) -> None:
    bank = a(cash, "bank")
    alice = open_and_fund(cash, "alice", 1, 700)
    issue = events_named(cash, "asset.issue", source="custody")
    assert len(issue) == 1
    assert issue[0].data["details"]["class"] == "cash"
    assert issue[0].data["details"]["contract"] == "cash"
    assert cash.node.reader.value(asset_key(ASSET))["controller"] == cash.contract_address("cash")
    assert issue[0].data["quantity"] == 700 and issue[0].data["to"] == alice
    bob = open_and_fund(cash, "bob", 1, 300)
    assert len(events_named(cash, "asset.issue", source="custody")) == 1
    mint = events_named(cash, "asset.mint", source="custody")[-1].data
    assert (mint["asset"], mint["to"], mint["quantity"]) == (ASSET, bob, 300)
    assert cash.holding(ASSET, alice) == {"q": 700, "p": 0, "f": 0}
    assert cash.query("cash", "balance_of", bob) == 300
    assert cash.query("cash", "info")["supply"] == 1000
    assert events_named(cash, "Issued")[-1].data == {"to": bob, "amount": 300}
    del bank


def test_issue_rules(cash: Env) -> None:
    bank, alice = a(cash, "bank"), open_and_fund(cash, "alice", 4)
    assert fails(cash, "cash", "issue", alice, 5, caller=alice).message.startswith(
        "UNAUTHORISED:"
    )
    assert fails(cash, "cash", "issue", a(cash, "nobody"), 5, caller=bank).message.startswith(
        "NO_WALLET:"
    )
    assert fails(cash, "cash", "issue", alice, 0, caller=bank).message.startswith("INVALID:")
    assert fails(cash, "cash", "issue", alice, -5, caller=bank).message.startswith("INVALID:")
    cash.call("cash", "issue", alice, 1_000_000, caller=bank)  # exactly the level 4 cap
    assert fails(cash, "cash", "issue", alice, 1, caller=bank).message.startswith("BALANCE_CAP:")
    cash.call("cash", "freeze_wallet", alice, "court order", caller=bank)
    cash.call("cash", "set_wallet_level", alice, 1, caller=bank)
    assert fails(cash, "cash", "issue", alice, 1, caller=bank).message.startswith(
        "WALLET_FROZEN:"
    )


def test_issue_needs_the_issuer_role(env: Env) -> None:
    bank = "bank"
    env.deploy("cash", source("digital_cash"), ASSET, "e-CNY", "", a(env, bank))  # no role
    alice = open_and_fund(env, "alice", 1)
    err = fails(env, "cash", "issue", alice, 5, caller=bank)
    assert err.code == "UNAUTHORISED" and "issuer" in err.message
    assert env.holding(ASSET, alice) == {"q": 0, "p": 0, "f": 0}
    assert env.query("cash", "info")["supply"] == 0
    env.grant_issuer("cash")
    env.call("cash", "issue", alice, 5, caller=bank)
    assert env.query("cash", "balance_of", alice) == 5


def test_redeem_burns_and_lowers_supply(cash: Env) -> None:
    bank = a(cash, "bank")
    alice = open_and_fund(cash, "alice", 1, 1000)
    cash.call("cash", "redeem", 400, caller=alice)
    assert cash.query("cash", "balance_of", alice) == 600
    assert cash.query("cash", "info")["supply"] == 600
    burn = events_named(cash, "asset.burn", source="custody")[-1].data
    assert (burn["asset"], burn["from"], burn["quantity"]) == (ASSET, alice, 400)
    assert events_named(cash, "Redeemed")[-1].data == {"holder": alice, "amount": 400}
    assert fails(cash, "cash", "redeem", 601, caller=alice).message.startswith(
        "INSUFFICIENT_FUNDS:"
    )
    assert fails(cash, "cash", "redeem", 0, caller=alice).message.startswith("INVALID:")
    assert fails(cash, "cash", "redeem", 1, caller=a(cash, "nobody")).message.startswith(
        "NO_WALLET:"
    )
    cash.call("cash", "freeze_wallet", alice, "investigation", caller=bank)
    assert fails(cash, "cash", "redeem", 1, caller=alice).message.startswith("WALLET_FROZEN:")
    cash.call("cash", "unfreeze_wallet", alice, caller=bank)
    cash.call("cash", "redeem", 600, caller=alice)  # down to zero supply
    assert cash.query("cash", "info")["supply"] == 0
    cash.call("cash", "issue", alice, 50, caller=bank)  # and the bank can issue again
    assert cash.query("cash", "balance_of", alice) == 50


# --- transfers -------------------------------------------------------------------------------


def test_transfer_moves_custody_units_and_emits(cash: Env) -> None:
    alice = open_and_fund(cash, "alice", 1, 1000)
    bob = open_and_fund(cash, "bob", 1)
    assert cash.call("cash", "transfer", bob, 250, caller=alice) is True
    assert cash.holding(ASSET, alice)["q"] == 750 and cash.holding(ASSET, bob)["q"] == 250
    assert events_named(cash, "Transfer")[-1].data == {"from": alice, "to": bob, "amount": 250}
    moved = events_named(cash, "custody.transfer", source="custody")[-1].data
    assert (moved["asset"], moved["from"], moved["to"], moved["quantity"]) == (
        ASSET, alice, bob, 250)
    assert moved["details"] == {"by": cash.contract_address("cash"), "contract": "cash"}
    # Both events are evidence: the custody move signed by alice, the contract's Transfer.
    moved = events_named(cash, "custody.transfer", source="custody")[-1]
    verdict = cash.verify(moved)
    assert verdict.event["quantity"] == 250 and "signed by account " + alice in verdict.facts[0]
    assert cash.verify(events_named(cash, "Transfer")[-1]).event["name"] == "Transfer"


def test_transfer_refusals(cash: Env) -> None:
    bank = a(cash, "bank")
    alice = open_and_fund(cash, "alice", 1, 1000)
    bob = open_and_fund(cash, "bob", 1)
    carol = a(cash, "carol")  # no wallet
    cases = [
        (alice, carol, 1, "NO_WALLET: " + carol),
        (carol, alice, 1, "NO_WALLET: " + carol),
        (alice, bob, 0, "INVALID: amount"),
        (alice, alice, 1, "INVALID: sender and receiver"),
        (alice, bob, 1001, "INSUFFICIENT_FUNDS:"),
    ]
    for sender, to, amount, prefix in cases:
        err = fails(cash, "cash", "transfer", to, amount, caller=sender)
        assert err.code == "CONTRACT_ERROR" and err.message.startswith(prefix), err.message
    cash.call("cash", "freeze_wallet", bob, "aml", caller=bank)
    assert fails(cash, "cash", "transfer", bob, 1, caller=alice).message == (
        f"WALLET_FROZEN: wallet {bob} is frozen"
    )
    cash.call("cash", "freeze_wallet", alice, "aml", caller=bank)
    cash.call("cash", "unfreeze_wallet", bob, caller=bank)
    assert fails(cash, "cash", "transfer", bob, 1, caller=alice).message == (
        f"WALLET_FROZEN: wallet {alice} is frozen"
    )
    assert cash.holding(ASSET, alice)["q"] == 1000 and cash.holding(ASSET, bob)["q"] == 0


def test_level_limits_per_transfer_daily_and_balance_cap(cash: Env) -> None:
    # Level 4: holds at most 1,000,000, pays at most 200,000 a transfer and 500,000 a day.
    anon = open_and_fund(cash, "anon", 4, 1_000_000)
    shop = open_and_fund(cash, "shop", 1)
    err = fails(cash, "cash", "transfer", shop, 200_001, caller=anon)
    assert err.message.startswith("LIMIT_EXCEEDED: a level 4 wallet pays at most 200000 per")
    for _ in range(2):
        cash.call("cash", "transfer", shop, 200_000, caller=anon)
    cash.call("cash", "transfer", shop, 100_000, caller=anon)  # 500,000 today
    assert cash.query("cash", "wallet", anon)["spent_today"] == 500_000
    err = fails(cash, "cash", "transfer", shop, 1, caller=anon)
    assert err.message.startswith("LIMIT_EXCEEDED: a level 4 wallet pays at most 500000 a day")
    cash.advance_time(DAY_MS)  # a new day
    assert cash.query("cash", "wallet", anon)["spent_today"] == 0
    cash.call("cash", "transfer", shop, 1, caller=anon)
    assert cash.query("cash", "wallet", anon)["spent_today"] == 1
    # The receiver's cap: a level 4 wallet holding 999,999 takes at most 1 more.
    anon2 = open_and_fund(cash, "anon2", 4, 999_999)
    err = fails(cash, "cash", "transfer", anon2, 2, caller=shop)
    assert err.message.startswith(f"BALANCE_CAP: wallet {anon2} (level 4) may hold at most")
    cash.call("cash", "transfer", anon2, 1, caller=shop)
    assert cash.query("cash", "balance_of", anon2) == 1_000_000


def test_level_1_is_unlimited(cash: Env) -> None:
    big = open_and_fund(cash, "big", 1, 10**15)
    other = open_and_fund(cash, "other", 1)
    cash.call("cash", "transfer", other, 10**15, caller=big)
    assert cash.query("cash", "balance_of", other) == 10**15


def test_can_transfer_view(cash: Env) -> None:
    alice = open_and_fund(cash, "alice", 1, 10)
    bob = open_and_fund(cash, "bob", 1)
    assert cash.query("cash", "can_transfer", alice, bob, 10) == {
        "ok": True, "code": "OK", "reason": "transfer succeeds",
    }
    r = cash.query("cash", "can_transfer", alice, bob, 11)
    assert r["ok"] is False and r["code"] == "INSUFFICIENT_FUNDS"


# --- freezes ---------------------------------------------------------------------------------


def test_freeze_by_bank_or_regulator_only(cash: Env) -> None:
    bank, regulator = a(cash, "bank"), a(cash, "regulator")
    alice = open_and_fund(cash, "alice", 1, 10)
    err = fails(cash, "cash", "freeze_wallet", alice, "x", caller=alice)
    assert err.message.startswith("UNAUTHORISED:")
    assert fails(cash, "cash", "freeze_wallet", a(cash, "nobody"), "x", caller=bank).message.startswith(
        "NO_WALLET:"
    )
    cash.call("cash", "freeze_wallet", alice, "suspected fraud", caller=regulator)
    w = cash.query("cash", "wallet", alice)
    assert w["frozen"] is True and w["reason"] == "suspected fraud"
    assert events_named(cash, "WalletFrozen")[-1].data == {
        "account": alice, "reason": "suspected fraud", "by": regulator,
    }
    assert fails(cash, "cash", "freeze_wallet", alice, "again", caller=bank).message.startswith(
        "WALLET_FROZEN:"
    )
    assert fails(cash, "cash", "unfreeze_wallet", alice, caller=alice).message.startswith(
        "UNAUTHORISED:"
    )
    cash.call("cash", "unfreeze_wallet", alice, caller=bank)
    assert cash.query("cash", "wallet", alice)["frozen"] is False
    assert fails(cash, "cash", "unfreeze_wallet", alice, caller=regulator).message.startswith(
        "NOT_FROZEN:"
    )


def test_set_regulator(cash: Env) -> None:
    bank, old, new = a(cash, "bank"), a(cash, "regulator"), a(cash, "new-regulator")
    alice = open_and_fund(cash, "alice", 1)
    assert fails(cash, "cash", "set_regulator", new, caller=old).message.startswith(
        "UNAUTHORISED:"
    )
    assert fails(cash, "cash", "set_regulator", "x", caller=bank).message.startswith("INVALID:")
    cash.call("cash", "set_regulator", new, caller=bank)
    assert cash.query("cash", "info")["regulator"] == new
    assert fails(cash, "cash", "freeze_wallet", alice, "x", caller=old).message.startswith(
        "UNAUTHORISED:"
    )
    cash.call("cash", "freeze_wallet", alice, "x", caller=new)
    cash.call("cash", "set_regulator", "", caller=bank)  # no regulator: only the bank
    assert fails(cash, "cash", "unfreeze_wallet", alice, caller=new).message.startswith(
        "UNAUTHORISED:"
    )


# --- operators and contract wallets --------------------------------------------------------


def test_operator_approval_and_transfer_from(cash: Env) -> None:
    alice = open_and_fund(cash, "alice", 1, 100)
    bob = open_and_fund(cash, "bob", 1)
    cash.deploy("op", OPERATOR)
    err = fails(cash, "op", "move", "cash", alice, bob, 10, caller="bob")
    # cash's own refusal, passed up through op's call()
    assert err.code == "CONTRACT_ERROR"
    assert err.message == f"NOT_APPROVED: op is not an operator of {alice}"
    assert cash.query("cash", "is_approved", alice, "op") is False
    cash.call("cash", "approve", "op", caller=alice)
    assert cash.query("cash", "is_approved", alice, "op") is True
    assert cash.call("op", "move", "cash", alice, bob, 10, caller=bob) is True
    assert cash.query("cash", "balance_of", bob) == 10
    assert events_named(cash, "Transfer")[-1].data == {
        "from": alice, "to": bob, "amount": 10, "operator": "op",
    }
    # The same rules as a transfer apply.
    cash.call("cash", "freeze_wallet", bob, "x", caller=a(cash, "bank"))
    assert fails(cash, "op", "move", "cash", alice, bob, 1, caller=bob).message.startswith(
        "WALLET_FROZEN:"
    )
    # An account that is not an approved operator cannot call transfer_from directly.
    assert fails(cash, "cash", "transfer_from", alice, bob, 1, caller=bob).message.startswith(
        "NOT_APPROVED:"
    )
    cash.call("cash", "revoke", "op", caller=alice)
    assert cash.query("cash", "is_approved", alice, "op") is False
    assert fails(cash, "cash", "revoke", "op", caller=alice).message.startswith("NOT_APPROVED:")
    assert events_named(cash, "ApprovalRevoked")[-1].data == {"holder": alice, "operator": "op"}


def test_a_contract_wallet_pays_from_its_custody_account(cash: Env) -> None:
    bank = a(cash, "bank")
    cash.deploy("op", OPERATOR)
    op_account = cash.contract_address("op")
    cash.call("cash", "open_wallet", op_account, 1, caller=bank)
    cash.call("cash", "issue", op_account, 40, caller=bank)
    bob = open_and_fund(cash, "bob", 1)
    cash.call("op", "pay", "cash", bob, 15, caller=a(cash, "anyone"))
    assert cash.query("cash", "balance_of", op_account) == 25
    assert cash.query("cash", "balance_of", bob) == 15
    assert events_named(cash, "Transfer")[-1].data == {"from": op_account, "to": bob, "amount": 15}
