"""Delivery versus payment (tally/apps/contracts/dvp.py) between the security token and
digital cash templates: initiate, take, cancel; both legs settle or neither does, for
every way a leg can be refused, with the custody events of a settlement verified as
evidence. Each test runs on its own solo node (tests/support/apps.py): deploys through
the committee, every call a signed transaction."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tally.apps import source
from tally.evidence.export import export_bundle, export_commercial_bundle
from tally.evidence.verify import verify_bundle
from tests.support.apps import AppChain as Env
from tests.support.apps import CallFailed, chain_fixture

env = chain_fixture()

BOND, CNY = "BOND-2030", "CNY"
QTY, PRICE = 10, 1_000_000  # 10 bonds for 10,000.00 yuan


def a(env: Env, label: str) -> str:
    return env.account(label)


def fails(env: Env, contract: str, method: str, *args: object, caller: str) -> CallFailed:
    return env.fails(contract, method, *args, caller=caller)


def events_named(env: Env, name: str, source: str | None = None) -> list:
    return env.events_named(name, source)


@pytest.fixture
def market(env: Env) -> Env:
    """Cash and a bond; a seller holding 100 bonds, a buyer holding 50,000.00 yuan, both
    approving the dvp contract; trade T1 initiated (10 bonds for 10,000.00)."""
    bank, owner, agent = a(env, "bank"), a(env, "owner"), a(env, "agent")
    seller, buyer = a(env, "seller"), a(env, "buyer")
    with env.batch():
        env.deploy("cash", source("digital_cash"), CNY, "e-CNY", "", bank)
        env.deploy("bond", source("security_token"), BOND, "Bond 2030", [agent], owner)
        env.deploy("dvp", source("dvp"))
        env.grant_issuer("cash")
        env.grant_issuer("bond")
        for who in (seller, buyer):
            env.call("cash", "open_wallet", who, 1, caller=bank)
            env.call("bond", "register_identity", who, "CN", "professional", caller=agent)
        env.call("cash", "issue", buyer, 5_000_000, caller=bank)
        env.call("bond", "issue", seller, 100, caller=agent)
        env.call("bond", "unpause", caller=agent)
        env.call("bond", "approve", "dvp", caller=seller)
        env.call("cash", "approve", "dvp", caller=buyer)
        env.call("dvp", "initiate", "T1", "bond", QTY, buyer, "cash", PRICE, caller=seller)
    return env


def balances(env: Env) -> dict[str, int]:
    s, b = a(env, "seller"), a(env, "buyer")
    return {
        "seller bond": env.holding(BOND, s)["q"],
        "buyer bond": env.holding(BOND, b)["q"],
        "seller cash": env.holding(CNY, s)["q"],
        "buyer cash": env.holding(CNY, b)["q"],
    }


def test_take_settles_both_legs(market: Env) -> None:
    seller, buyer = a(market, "seller"), a(market, "buyer")
    assert market.query("dvp", "check", "T1")["ok"] is True
    settled = market.receipt("dvp", "take", "T1", caller=buyer)
    assert settled.ok, settled
    assert balances(market) == {
        "seller bond": 90, "buyer bond": 10, "seller cash": PRICE, "buyer cash": 4_000_000,
    }
    trade = market.query("dvp", "trade", "T1")
    assert trade["status"] == "settled" and trade["seller"] == seller and trade["buyer"] == buyer
    # Each log in the order of the call: delivery, then payment, then the settlement.
    custody, contracts = market.events_of(settled)
    assert [(e.name, e.data["asset"], e.data["from"], e.data["to"], e.data["quantity"])
            for e in custody] == [
        ("custody.transfer", BOND, seller, buyer, QTY),
        ("custody.transfer", CNY, buyer, seller, PRICE),
    ]
    assert [(e.source, e.name) for e in contracts] == [
        ("bond", "Transfer"),
        ("cash", "Transfer"),
        ("dvp", "TradeSettled"),
    ]
    assert events_named(market, "Transfer", source="bond")[-1].data["operator"] == "dvp"
    assert events_named(market, "TradeSettled")[-1].data == {
        "trade_id": "T1", "seller": seller, "buyer": buyer, "security_contract": "bond",
        "security_amount": QTY, "cash_contract": "cash", "cash_amount": PRICE,
    }
    assert market.query("bond", "holder_count") == 2
    err = fails(market, "dvp", "take", "T1", caller=buyer)
    assert err.message == "NOT_OPEN: trade T1 is settled"
    assert fails(market, "dvp", "cancel", "T1", caller=seller).message.startswith("NOT_OPEN:")


def test_initiate_records_the_trade_and_checks_the_seller_approval(market: Env) -> None:
    seller, buyer = a(market, "seller"), a(market, "buyer")
    t = market.query("dvp", "trade", "T1")
    assert {k: t[k] for k in ("seller", "buyer", "security_amount", "cash_amount", "status")} == {
        "seller": seller, "buyer": buyer, "security_amount": QTY, "cash_amount": PRICE,
        "status": "open",
    }
    init = events_named(market, "TradeInitiated")[-1].data
    assert init["trade_id"] == "T1" and init["seller"] == seller and init["status"] == "open"
    assert market.query("dvp", "trade_count") == 1
    assert market.query("dvp", "trade", "nope") is None
    other = a(market, "other")  # holds no approval on the bond contract
    err = fails(market, "dvp", "initiate", "T2", "bond", 1, buyer, "cash", 1, caller=other)
    assert err.message == "NOT_APPROVED: the seller has not approved dvp as an operator on bond"
    cases = [
        ("T1", 1, buyer, 1, "ALREADY_EXISTS: trade T1 exists"),
        ("", 1, buyer, 1, "INVALID: a trade id"),
        ("bad id", 1, buyer, 1, "INVALID: a trade id"),
        ("T3", 0, buyer, 1, "INVALID: amounts must be positive"),
        ("T3", 1, buyer, -1, "INVALID: amounts must be positive"),
        ("T3", 1, "buyer", 1, "INVALID: buyer buyer is not an address"),
        ("T3", 1, seller, 1, "INVALID: the buyer is the seller"),
    ]
    for trade_id, qty, who, price, message in cases:
        err = fails(market, "dvp", "initiate", trade_id, "bond", qty, who, "cash", price,
                    caller=seller)
        assert err.code == "CONTRACT_ERROR" and err.message.startswith(message), err.message
    err = fails(market, "dvp", "initiate", "T3", "bond", 1, buyer, "bond", 1, caller=seller)
    assert err.message.startswith("INVALID: the security and cash contracts must differ")
    err = fails(market, "dvp", "initiate", "T3", "nosuch", 1, buyer, "cash", 1, caller=seller)
    assert err.code == "VM_NO_CONTRACT"


def test_only_the_buyer_takes(market: Env) -> None:
    before = balances(market)
    for who in ("seller", "other"):
        err = fails(market, "dvp", "take", "T1", caller=a(market, who))
        assert err.message == "UNAUTHORISED: only the buyer may take trade T1"
    assert fails(market, "dvp", "take", "T9", caller=a(market, "buyer")).message == (
        "NOT_FOUND: no trade T9"
    )
    assert balances(market) == before


def test_cancel(market: Env) -> None:
    seller, buyer = a(market, "seller"), a(market, "buyer")
    assert fails(market, "dvp", "cancel", "T1", caller=a(market, "other")).message.startswith(
        "UNAUTHORISED:"
    )
    market.call("dvp", "cancel", "T1", caller=buyer)
    t = market.query("dvp", "trade", "T1")
    assert t["status"] == "cancelled" and t["cancelled_by"] == buyer
    assert events_named(market, "TradeCancelled")[-1].data == {"trade_id": "T1", "by": buyer}
    assert fails(market, "dvp", "take", "T1", caller=buyer).message == (
        "NOT_OPEN: trade T1 is cancelled"
    )
    assert fails(market, "dvp", "cancel", "T1", caller=seller).message.startswith("NOT_OPEN:")
    market.call("dvp", "initiate", "T2", "bond", 1, buyer, "cash", 1, caller=seller)
    market.call("dvp", "cancel", "T2", caller=seller)
    assert market.query("dvp", "trade", "T2")["cancelled_by"] == seller


# --- both legs or neither --------------------------------------------------------------------


def _poor_buyer(env: Env) -> None:  # the buyer spends most of its cash elsewhere
    env.call("cash", "open_wallet", a(env, "shop"), 1, caller=a(env, "bank"))
    env.call("cash", "transfer", a(env, "shop"), 4_500_000, caller=a(env, "buyer"))


def _freeze_buyer_cash(env: Env) -> None:
    env.call("cash", "freeze_wallet", a(env, "buyer"), "aml", caller=a(env, "bank"))


def _freeze_seller_cash(env: Env) -> None:
    env.call("cash", "freeze_wallet", a(env, "seller"), "aml", caller=a(env, "bank"))


def _buyer_revokes_cash(env: Env) -> None:
    env.call("cash", "revoke", "dvp", caller=a(env, "buyer"))


def _buyer_wallet_level_4(env: Env) -> None:  # pays at most 2,000.00 a transfer
    env.call("cash", "set_wallet_level", a(env, "buyer"), 4, caller=a(env, "bank"))


def _pause_bond(env: Env) -> None:
    env.call("bond", "pause", caller=a(env, "agent"))


def _unverify_buyer(env: Env) -> None:
    env.call("bond", "remove_identity", a(env, "buyer"), caller=a(env, "agent"))


def _seller_revokes_bond(env: Env) -> None:
    env.call("bond", "revoke", "dvp", caller=a(env, "seller"))


def _freeze_seller_bonds(env: Env) -> None:
    env.call("bond", "freeze_partial", a(env, "seller"), 95, caller=a(env, "agent"))


def _freeze_buyer_bond_wallet(env: Env) -> None:
    env.call("bond", "freeze_wallet", a(env, "buyer"), caller=a(env, "agent"))


def _bond_register_full(env: Env) -> None:
    env.call("bond", "set_max_holders", 1, caller=a(env, "owner"))


FAILURES: list[tuple[str, Callable[[Env], None], str]] = [
    ("cash: insufficient funds", _poor_buyer, "LEG_FAILED: payment leg (cash.transfer_from): "
     "CONTRACT_ERROR: INSUFFICIENT_FUNDS:"),
    ("cash: buyer wallet frozen", _freeze_buyer_cash, "LEG_FAILED: payment leg "
     "(cash.transfer_from): CONTRACT_ERROR: WALLET_FROZEN: wallet {buyer} is frozen"),
    ("cash: seller wallet frozen", _freeze_seller_cash, "LEG_FAILED: payment leg "
     "(cash.transfer_from): CONTRACT_ERROR: WALLET_FROZEN: wallet {seller} is frozen"),
    ("cash: buyer revoked dvp", _buyer_revokes_cash, "LEG_FAILED: payment leg "
     "(cash.transfer_from): CONTRACT_ERROR: NOT_APPROVED: dvp is not an operator of {buyer}"),
    ("cash: wallet limit", _buyer_wallet_level_4, "LEG_FAILED: payment leg "
     "(cash.transfer_from): CONTRACT_ERROR: LIMIT_EXCEEDED:"),
    ("bond: paused", _pause_bond, "LEG_FAILED: delivery leg (bond.transfer_from): "
     "CONTRACT_ERROR: 0x54 transfers halted: the token is paused"),
    ("bond: buyer not verified", _unverify_buyer, "LEG_FAILED: delivery leg "
     "(bond.transfer_from): CONTRACT_ERROR: 0x57 invalid receiver: {buyer} is not a verified"),
    ("bond: seller revoked dvp", _seller_revokes_bond, "LEG_FAILED: delivery leg "
     "(bond.transfer_from): CONTRACT_ERROR: 0x58 invalid operator:"),
    ("bond: seller units frozen", _freeze_seller_bonds, "LEG_FAILED: delivery leg "
     "(bond.transfer_from): CONTRACT_ERROR: 0x55 funds locked:"),
    ("bond: buyer wallet frozen", _freeze_buyer_bond_wallet, "LEG_FAILED: delivery leg "
     "(bond.transfer_from): CONTRACT_ERROR: 0x57 invalid receiver: wallet {buyer} is frozen"),
    ("bond: register full", _bond_register_full, "LEG_FAILED: delivery leg "
     "(bond.transfer_from): CONTRACT_ERROR: 0x50 transfer failure:"),
]


@pytest.mark.parametrize(
    ("break_it", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_a_refused_leg_moves_nothing(
    market: Env, break_it: Callable[[Env], None], message: str
) -> None:
    break_it(market)
    before = balances(market)
    snapshot = market.state()
    n_events = len(market.custody_events()), len(market.contract_events())
    check = market.query("dvp", "check", "T1")
    assert check["ok"] is False
    err = fails(market, "dvp", "take", "T1", caller=a(market, "buyer"))
    # CONTRACT_ERROR raised by dvp (only dvp says LEG_FAILED), naming the leg's refusal
    assert err.code == "CONTRACT_ERROR"
    expected = message.format(buyer=a(market, "buyer"), seller=a(market, "seller"))
    assert err.message.startswith(expected), err.message
    assert balances(market) == before  # neither leg happened
    assert market.query("dvp", "trade", "T1")["status"] == "open"
    assert (len(market.custody_events()), len(market.contract_events())) == n_events
    assert market.state() == snapshot  # not one key of state changed but the buyer's nonce


def test_payment_leg_failure_reverts_the_delivered_security(market: Env) -> None:
    # The delivery leg runs first and succeeds inside the call; the payment leg is then
    # refused. The delivered units must come back: the seller still holds all 100.
    _poor_buyer(market)
    refused = fails(market, "dvp", "take", "T1", caller=a(market, "buyer"))
    assert "LEG_FAILED: payment leg" in refused.message, refused  # delivery leg ran first
    assert market.holding(BOND, a(market, "seller"))["q"] == 100
    assert market.holding(BOND, a(market, "buyer"))["q"] == 0
    assert market.query("bond", "holder_count") == 1


def test_check_names_the_failing_leg(market: Env) -> None:
    _freeze_buyer_cash(market)
    check = market.query("dvp", "check", "T1")
    assert check["delivery"]["ok"] is True
    assert check["payment"] == {
        "ok": False, "code": "WALLET_FROZEN",
        "reason": f"WALLET_FROZEN: wallet {a(market, 'buyer')} is frozen",
    }
    _buyer_revokes_cash(market)
    assert market.query("dvp", "check", "T1")["buyer_approved"] is False


def test_a_failed_take_can_be_retried_once_fixed(market: Env) -> None:
    _freeze_buyer_cash(market)
    refused = fails(market, "dvp", "take", "T1", caller=a(market, "buyer"))
    assert "LEG_FAILED: payment leg" in refused.message and "WALLET_FROZEN" in refused.message
    market.call("cash", "unfreeze_wallet", a(market, "buyer"), caller=a(market, "bank"))
    market.call("dvp", "take", "T1", caller=a(market, "buyer"))
    assert balances(market)["buyer bond"] == QTY


def test_a_settlement_is_evidence_on_both_tiers(market: Env) -> None:
    seller, buyer = a(market, "seller"), a(market, "buyer")
    settled = market.receipt("dvp", "take", "T1", caller=buyer)
    assert settled.ok, settled
    pinned = market.genesis.hash.hex()
    # Tier 1: each leg is a custody event signed by the buyer's transaction, naming the
    # token contract that moved it.
    legs = [e for e in market.node.reader.events() if e["tx"] == settled.tx]
    assert [(e["asset"], e["from"], e["to"]) for e in legs] == [(BOND, seller, buyer),
                                                                (CNY, buyer, seller)]
    for leg, contract in zip(legs, ("bond", "cash"), strict=True):
        verdict = verify_bundle(export_bundle(market.node.reader, leg["log_index"]),
                                genesis_hash=pinned)
        assert verdict.event["details"]["contract"] == contract
        assert verdict.event["details"]["by"] == market.contract_address(contract)
        assert "signed by account " + buyer in verdict.facts[0]
    # Tier 2: the settlement event, anchored in the same checkpoints.
    event = next(e for e in market.node.reader.commercial_events(contract="dvp")
                 if e["name"] == "TradeSettled")
    verdict = verify_bundle(export_commercial_bundle(market.node.reader, event["log_index"]),
                            genesis_hash=pinned)
    assert verdict.event["contract"] == "dvp" and verdict.event["name"] == "TradeSettled"
