"""The security token template (tally/apps/contracts/security_token.py): agents,
identities, pause, issue, transfers with their ERC-1400 style reason codes, compliance
(maximum holders, blocked countries), wallet and partial freezes, forced transfers,
recovery, burns and operator approvals. Each test runs on its own solo node
(tests/support/apps.py): deploys through the committee, every call a signed
transaction."""

from __future__ import annotations

import pytest

from tally.apps import source
from tally.exec.custody import asset_key
from tests.support.apps import AppChain as Env
from tests.support.apps import CallFailed, chain_fixture

env = chain_fixture()

ASSET = "BOND-2030"
OPERATOR = """
class Operator:
    def move(self, token: str, holder: str, to: str, amount: int) -> bool:
        return call(token, "transfer_from", holder, to, amount)
"""


def a(env: Env, label: str) -> str:
    return env.account(label)


@pytest.fixture
def tok(env: Env) -> Env:
    with env.batch():
        env.deploy("bond", source("security_token"), ASSET, "Bond 2030", [a(env, "agent")],
                   a(env, "owner"))
        env.grant_issuer("bond")
    return env


def fails(env: Env, contract: str, method: str, *args: object, caller: str) -> CallFailed:
    return env.fails(contract, method, *args, caller=caller)


def events_named(env: Env, name: str, source: str | None = None) -> list:
    return env.events_named(name, source)


def investor(env: Env, label: str, country: str = "CN", amount: int = 0) -> str:
    account = a(env, label)
    with env.batch():
        env.call("bond", "register_identity", account, country, "professional",
                 caller="agent")
        if amount:
            env.call("bond", "issue", account, amount, caller="agent")
    return account


@pytest.fixture
def live(tok: Env) -> Env:
    """Two funded investors (alice 100, bob 0) and the token unpaused."""
    with tok.batch():
        investor(tok, "alice", amount=100)
        investor(tok, "bob")
        tok.call("bond", "unpause", caller="agent")
    return tok


def refused(env: Env, method: str, *args: object, caller: str) -> str:
    # A call to bond alone (no nested contract): the refusal is bond's.
    err = fails(env, "bond", method, *args, caller=caller)
    assert err.code == "CONTRACT_ERROR"
    return err.message


# --- set-up, owner and agents -----------------------------------------------------------------


def test_a_new_token_starts_paused_with_its_agents(tok: Env) -> None:
    assert tok.query("bond", "info") == {
        "asset": ASSET, "name": "Bond 2030", "owner": a(tok, "owner"), "supply": 0,
        "paused": True, "holders": 0,
    }
    assert tok.query("bond", "agents") == [a(tok, "agent")]
    assert tok.query("bond", "is_agent", a(tok, "agent")) is True
    assert tok.query("bond", "is_agent", a(tok, "owner")) is False


def test_init_rejects_agents_that_are_not_addresses(env: Env) -> None:
    with pytest.raises(CallFailed) as info:
        env.deploy("bad", source("security_token"), "X", "X", ["agent"], a(env, "owner"))
    assert info.value.code == "CONTRACT_ERROR"
    assert info.value.message == "INVALID: agents are addresses"


def test_identities_come_from_the_token_unless_init_says_chain(tok: Env, env: Env) -> None:
    assert tok.query("bond", "identity_settings") == {
        "source": "token", "investor_topic": "qualified_investor", "country_topic": "jurisdiction",
    }
    owner = a(env, "owner")
    for args, message in [
        (["ledger"], "INVALID: the identity source is \"token\" or \"chain\", not 'ledger'"),
        (["chain", "qualified investor"], "INVALID: 'qualified investor' is not a claim topic"),
        (["chain", "qualified_investor", "-x"], "INVALID: '-x' is not a claim topic"),
    ]:
        with pytest.raises(CallFailed) as info:
            env.deploy("bad", source("security_token"), "X", "X", [], owner, *args)
        assert info.value.message == message
    env.deploy("fund", source("security_token"), "FUND", "Fund", [], owner, "chain", "pro", "kyc")
    assert env.query("fund", "identity_settings") == {
        "source": "chain", "investor_topic": "pro", "country_topic": "kyc",
    }


def test_owner_adds_and_removes_agents(tok: Env) -> None:
    owner, agent, agent2 = a(tok, "owner"), a(tok, "agent"), a(tok, "agent2")
    assert refused(tok, "add_agent", agent2, caller=agent).startswith("UNAUTHORISED:")
    assert refused(tok, "add_agent", agent, caller=owner).startswith("ALREADY_EXISTS:")
    tok.call("bond", "add_agent", agent2, caller=owner)
    assert tok.query("bond", "agents") == [agent, agent2]
    tok.call("bond", "unpause", caller=agent2)  # agent2 may act ...
    tok.call("bond", "remove_agent", agent2, caller=owner)
    assert tok.query("bond", "agents") == [agent]
    assert refused(tok, "pause", caller=agent2).startswith("UNAUTHORISED:")  # ... no longer
    assert refused(tok, "remove_agent", agent2, caller=owner).startswith("NOT_FOUND:")
    assert refused(tok, "remove_agent", agent, caller=agent).startswith("UNAUTHORISED:")
    assert [e.name for e in tok.contract_events() if e.name.startswith("Agent")] == [
        "AgentAdded", "AgentRemoved",
    ]


# --- identities -------------------------------------------------------------------------------


def test_identity_registry(tok: Env) -> None:
    agent, alice = a(tok, "agent"), a(tok, "alice")
    assert refused(tok, "register_identity", alice, "CN", "retail", caller=alice).startswith(
        "UNAUTHORISED:"
    )
    assert refused(tok, "register_identity", alice, "cn", "retail", caller=agent).startswith(
        "INVALID: 'cn'"
    )
    assert refused(tok, "register_identity", alice, "CN", "", caller=agent).startswith("INVALID:")
    assert refused(tok, "register_identity", "alice", "CN", "x", caller=agent).startswith(
        "INVALID: alice is not an address"
    )
    tok.call("bond", "register_identity", alice, "CN", "retail", caller=agent)
    assert tok.query("bond", "is_verified", alice) is True
    ident = tok.query("bond", "identity", alice)
    assert ident["country"] == "CN" and ident["investor_type"] == "retail"
    assert isinstance(ident["since"], int)
    assert refused(tok, "register_identity", alice, "SG", "retail", caller=agent).startswith(
        "ALREADY_EXISTS:"
    )
    tok.call("bond", "update_identity", alice, "SG", "professional", caller=agent)
    ident = tok.query("bond", "identity", alice)
    assert ident["country"] == "SG" and ident["investor_type"] == "professional"
    tok.call("bond", "remove_identity", alice, caller=agent)
    assert tok.query("bond", "is_verified", alice) is False
    assert tok.query("bond", "identity", alice) is None
    assert refused(tok, "remove_identity", alice, caller=agent).startswith("NOT_FOUND:")
    assert refused(tok, "update_identity", alice, "CN", "x", caller=agent).startswith("NOT_FOUND:")
    names = [e.name for e in tok.contract_events() if e.name.startswith("Identity")]
    assert names == ["IdentityRegistered", "IdentityUpdated", "IdentityRemoved"]


# --- issue, pause ------------------------------------------------------------------------------


def test_issue_to_verified_accounts_even_while_paused(tok: Env) -> None:
    agent = a(tok, "agent")
    alice = investor(tok, "alice")
    assert refused(tok, "issue", alice, 5, caller=alice).startswith("UNAUTHORISED:")
    assert refused(tok, "issue", a(tok, "stranger"), 5, caller=agent).startswith(
        "0x57 invalid receiver:"
    )
    assert refused(tok, "issue", alice, 0, caller=agent).startswith("INVALID:")
    tok.call("bond", "issue", alice, 60, caller=agent)
    tok.call("bond", "issue", alice, 40, caller=agent)
    assert tok.holding(ASSET, alice) == {"q": 100, "p": 0, "f": 0}
    assert tok.query("bond", "info")["supply"] == 100
    assert tok.query("bond", "holder_count") == 1
    issue = events_named(tok, "asset.issue", source="custody")
    assert len(issue) == 1 and issue[0].data["details"]["class"] == "security"
    assert issue[0].data["details"]["contract"] == "bond"
    assert tok.node.reader.value(asset_key(ASSET))["controller"] == tok.contract_address("bond")
    assert len(events_named(tok, "asset.mint", source="custody")) == 1


def test_pause_and_unpause(tok: Env) -> None:
    agent = a(tok, "agent")
    alice = investor(tok, "alice", amount=10)
    bob = investor(tok, "bob")
    assert refused(tok, "transfer", bob, 1, caller=alice) == (
        "0x54 transfers halted: the token is paused"
    )
    assert refused(tok, "pause", caller=agent) == "INVALID: the token is already paused"
    assert refused(tok, "unpause", caller=alice).startswith("UNAUTHORISED:")
    tok.call("bond", "unpause", caller=agent)
    assert tok.query("bond", "info")["paused"] is False
    tok.call("bond", "transfer", bob, 1, caller=alice)
    assert refused(tok, "unpause", caller=agent) == "INVALID: the token is not paused"
    tok.call("bond", "pause", caller=agent)
    assert refused(tok, "transfer", bob, 1, caller=alice).startswith("0x54")
    assert [e.name for e in tok.contract_events() if e.name in ("Paused", "Unpaused")] == [
        "Unpaused", "Paused",
    ]


# --- transfers ---------------------------------------------------------------------------------


def test_transfer_moves_units_and_emits(live: Env) -> None:
    alice, bob = a(live, "alice"), a(live, "bob")
    assert live.call("bond", "transfer", bob, 30, caller=alice) is True
    assert live.query("bond", "balance_of", alice) == 70
    assert live.query("bond", "balance_of", bob) == 30
    assert live.query("bond", "holder_count") == 2
    assert events_named(live, "Transfer")[-1].data == {"from": alice, "to": bob, "amount": 30}
    moved = events_named(live, "custody.transfer", source="custody")[-1].data
    assert (moved["asset"], moved["from"], moved["to"], moved["quantity"]) == (
        ASSET, alice, bob, 30)
    assert moved["details"] == {"by": live.contract_address("bond"), "contract": "bond"}
    verdict = live.verify(events_named(live, "custody.transfer", source="custody")[-1])
    assert verdict.event["quantity"] == 30 and "signed by account " + alice in verdict.facts[0]
    live.call("bond", "transfer", alice, 30, caller=bob)  # bob leaves the register
    assert live.query("bond", "holder_count") == 1


def test_transfer_refusal_codes(live: Env) -> None:
    agent, alice, bob = a(live, "agent"), a(live, "alice"), a(live, "bob")
    stranger = a(live, "stranger")
    assert refused(live, "transfer", stranger, 1, caller=alice) == (
        f"0x57 invalid receiver: {stranger} is not a verified investor"
    )
    assert refused(live, "transfer", bob, 101, caller=alice).startswith("0x52 insufficient balance")
    assert refused(live, "transfer", bob, 0, caller=alice).startswith("0x50 transfer failure")
    assert refused(live, "transfer", alice, 1, caller=alice).startswith("0x57 invalid receiver")
    live.call("bond", "freeze_wallet", alice, "court order", caller=agent)
    assert refused(live, "transfer", bob, 1, caller=alice) == (
        f"0x56 invalid sender: wallet {alice} is frozen"
    )
    live.call("bond", "unfreeze_wallet", alice, caller=agent)
    live.call("bond", "freeze_wallet", bob, caller=agent)
    assert refused(live, "transfer", bob, 1, caller=alice) == (
        f"0x57 invalid receiver: wallet {bob} is frozen"
    )
    live.call("bond", "unfreeze_wallet", bob, caller=agent)
    live.call("bond", "transfer", bob, 1, caller=alice)
    # A holder whose identity is removed may still sell, but cannot receive.
    live.call("bond", "remove_identity", bob, caller=agent)
    live.call("bond", "transfer", alice, 1, caller=bob)
    assert refused(live, "transfer", bob, 1, caller=alice).startswith("0x57 invalid receiver")


def test_can_transfer_reports_the_code(live: Env) -> None:
    alice, bob = a(live, "alice"), a(live, "bob")
    assert live.query("bond", "can_transfer", alice, bob, 100) == {
        "ok": True, "code": "0x51", "reason": "transfer succeeds",
    }
    r = live.query("bond", "can_transfer", alice, bob, 101)
    assert r["ok"] is False and r["code"] == "0x52"
    assert live.query("bond", "can_transfer", alice, a(live, "x"), 1)["code"] == "0x57"


# --- compliance --------------------------------------------------------------------------------


def test_max_holders(live: Env) -> None:
    owner, alice, bob = a(live, "owner"), a(live, "alice"), a(live, "bob")
    carol = investor(live, "carol")
    assert refused(live, "set_max_holders", 2, caller=alice).startswith("UNAUTHORISED:")
    assert refused(live, "set_max_holders", -1, caller=owner).startswith("INVALID:")
    live.call("bond", "set_max_holders", 2, caller=owner)
    live.call("bond", "transfer", bob, 10, caller=alice)  # holders: alice, bob
    assert refused(live, "transfer", carol, 1, caller=alice) == (
        f"0x50 transfer failure: {ASSET} already has the maximum of 2 holders"
    )
    assert refused(live, "issue", carol, 1, caller=a(live, "agent")).startswith("0x50")
    live.call("bond", "transfer", bob, 1, caller=alice)  # an existing holder may receive
    live.call("bond", "transfer", carol, 11, caller=bob)  # bob leaves as carol joins
    assert live.query("bond", "holder_count") == 2
    assert live.query("bond", "compliance") == {"max_holders": 2, "blocked_countries": []}
    live.call("bond", "set_max_holders", 0, caller=owner)  # no limit
    live.call("bond", "transfer", bob, 1, caller=alice)
    assert live.query("bond", "holder_count") == 3


def test_blocked_countries(live: Env) -> None:
    owner, agent, alice = a(live, "owner"), a(live, "agent"), a(live, "alice")
    yank = investor(live, "yank", country="US")
    assert refused(live, "block_country", "US", caller=agent).startswith("UNAUTHORISED:")
    assert refused(live, "block_country", "USA", caller=owner).startswith("INVALID:")
    live.call("bond", "block_country", "US", caller=owner)
    assert refused(live, "block_country", "US", caller=owner).startswith("ALREADY_EXISTS:")
    assert live.query("bond", "compliance")["blocked_countries"] == ["US"]
    assert refused(live, "transfer", yank, 1, caller=alice) == (
        f"0x57 invalid receiver: investors in US may not hold {ASSET}"
    )
    assert refused(live, "issue", yank, 1, caller=agent).startswith("0x57")
    live.call("bond", "unblock_country", "US", caller=owner)
    assert refused(live, "unblock_country", "US", caller=owner).startswith("NOT_FOUND:")
    live.call("bond", "transfer", yank, 1, caller=alice)
    assert live.query("bond", "balance_of", yank) == 1


# --- freezes -------------------------------------------------------------------------------------


def test_wallet_freeze_rules(live: Env) -> None:
    agent, alice = a(live, "agent"), a(live, "alice")
    assert refused(live, "freeze_wallet", alice, caller=alice).startswith("UNAUTHORISED:")
    live.call("bond", "freeze_wallet", alice, "sanctions", caller=agent)
    assert live.query("bond", "is_frozen", alice) is True
    assert events_named(live, "WalletFrozen")[-1].data == {
        "account": alice, "reason": "sanctions", "by": agent,
    }
    assert refused(live, "freeze_wallet", alice, caller=agent).startswith("INVALID:")
    live.call("bond", "unfreeze_wallet", alice, caller=agent)
    assert refused(live, "unfreeze_wallet", alice, caller=agent).startswith("INVALID:")
    assert live.query("bond", "is_frozen", alice) is False


def test_partial_freeze(live: Env) -> None:
    agent, alice, bob = a(live, "agent"), a(live, "alice"), a(live, "bob")
    assert refused(live, "freeze_partial", alice, 10, caller=alice).startswith("UNAUTHORISED:")
    assert refused(live, "freeze_partial", alice, 101, caller=agent).startswith("INVALID:")
    live.call("bond", "freeze_partial", alice, 60, caller=agent)
    assert live.query("bond", "frozen_amount", alice) == 60
    assert live.query("bond", "free_balance", alice) == 40
    assert refused(live, "freeze_partial", alice, 41, caller=agent).startswith("INVALID:")
    assert refused(live, "transfer", bob, 41, caller=alice) == (
        f"0x55 funds locked: 60 of {alice}'s units are frozen; 40 may move, 41 requested"
    )
    live.call("bond", "transfer", bob, 40, caller=alice)  # amount <= balance - frozen
    assert refused(live, "transfer", bob, 1, caller=alice).startswith("0x55")
    assert refused(live, "unfreeze_partial", alice, 61, caller=agent).startswith("INVALID:")
    live.call("bond", "unfreeze_partial", alice, 20, caller=agent)
    live.call("bond", "transfer", bob, 20, caller=alice)
    assert live.query("bond", "frozen_amount", alice) == 40
    assert live.query("bond", "balance_of", alice) == 40


# --- forced transfer, recovery, burn -----------------------------------------------------------


def test_forced_transfer_ignores_pause_and_freezes(live: Env) -> None:
    agent, alice, bob = a(live, "agent"), a(live, "alice"), a(live, "bob")
    live.call("bond", "pause", caller=agent)
    live.call("bond", "freeze_wallet", alice, caller=agent)
    live.call("bond", "freeze_wallet", bob, caller=agent)
    live.call("bond", "freeze_partial", alice, 90, caller=agent)
    assert refused(live, "forced_transfer", alice, bob, 5, caller=bob).startswith("UNAUTHORISED:")
    live.call("bond", "forced_transfer", alice, bob, 30, caller=agent)
    assert live.query("bond", "balance_of", alice) == 70
    assert live.query("bond", "balance_of", bob) == 30
    # 10 units were free; the other 20 came out of the frozen 90.
    assert live.query("bond", "frozen_amount", alice) == 70
    assert events_named(live, "PartialUnfrozen")[-1].data == {
        "account": alice, "amount": 20, "forced": True,
    }
    assert events_named(live, "ForcedTransfer")[-1].data == {
        "from": alice, "to": bob, "amount": 30, "by": agent,
    }
    # It still needs a verified receiver, and units that exist.
    stranger = a(live, "stranger")
    assert refused(live, "forced_transfer", alice, stranger, 1, caller=agent).startswith(
        "0x57 invalid receiver"
    )
    assert refused(live, "forced_transfer", alice, bob, 71, caller=agent).startswith(
        "0x52 insufficient balance"
    )
    assert refused(live, "forced_transfer", alice, alice, 1, caller=agent).startswith("0x57")


def test_recover_moves_everything_to_a_verified_new_account(live: Env) -> None:
    agent, alice, bob = a(live, "agent"), a(live, "alice"), a(live, "bob")
    live.call("bond", "transfer", bob, 10, caller=alice)
    live.call("bond", "freeze_partial", alice, 25, caller=agent)
    live.call("bond", "freeze_wallet", alice, "lost key reported", caller=agent)
    new = a(live, "alice-new")
    assert refused(live, "recover", alice, new, caller=agent).startswith("0x57 invalid receiver")
    investor(live, "alice-new")
    assert refused(live, "recover", alice, new, caller=alice).startswith("UNAUTHORISED:")
    assert refused(live, "recover", alice, alice, caller=agent).startswith("INVALID:")
    live.call("bond", "recover", alice, new, caller=agent)
    assert live.query("bond", "balance_of", alice) == 0
    assert live.query("bond", "balance_of", new) == 90
    assert live.query("bond", "frozen_amount", new) == 25
    assert live.query("bond", "frozen_amount", alice) == 0
    assert live.query("bond", "is_frozen", new) is True
    assert live.query("bond", "is_frozen", alice) is True  # the lost key can do nothing
    assert live.query("bond", "is_verified", alice) is False
    assert live.query("bond", "holder_count") == 2  # bob and the new account
    assert events_named(live, "Recovered")[-1].data == {
        "lost": alice, "new": new, "amount": 90, "frozen_amount": 25, "wallet_frozen": True,
        "by": agent,
    }
    assert refused(live, "transfer", new, 1, caller=bob).startswith("0x57")  # frozen receiver
    live.call("bond", "unfreeze_wallet", new, caller=agent)
    live.call("bond", "transfer", bob, 65, caller=new)  # 90 - 25 frozen


def test_burn(live: Env) -> None:
    agent, alice = a(live, "agent"), a(live, "alice")
    live.call("bond", "freeze_partial", alice, 50, caller=agent)
    assert refused(live, "burn", alice, 10, caller=alice).startswith("UNAUTHORISED:")
    assert refused(live, "burn", alice, 101, caller=agent).startswith("0x52")
    live.call("bond", "burn", alice, 60, caller=agent)  # 50 free + 10 of the frozen
    assert live.query("bond", "balance_of", alice) == 40
    assert live.query("bond", "frozen_amount", alice) == 40
    assert live.query("bond", "info")["supply"] == 40
    burn = events_named(live, "asset.burn", source="custody")[-1].data
    assert (burn["asset"], burn["from"], burn["quantity"]) == (ASSET, alice, 60)
    live.call("bond", "burn", alice, 40, caller=agent)
    assert live.query("bond", "holder_count") == 0
    assert live.query("bond", "frozen_amount", alice) == 0


# --- operators -----------------------------------------------------------------------------------


def test_operator_transfer_from_applies_the_same_rules(live: Env) -> None:
    agent, alice, bob = a(live, "agent"), a(live, "alice"), a(live, "bob")
    live.deploy("op", OPERATOR)
    err = fails(live, "op", "move", "bond", alice, bob, 5, caller=bob)
    assert err.message == f"0x58 invalid operator: op is not an operator of {alice}"
    live.call("bond", "approve", "op", caller=alice)
    assert live.query("bond", "is_approved", alice, "op") is True
    assert live.call("op", "move", "bond", alice, bob, 5, caller=bob) is True
    assert events_named(live, "Transfer")[-1].data == {
        "from": alice, "to": bob, "amount": 5, "operator": "op",
    }
    live.call("bond", "pause", caller=agent)
    assert fails(live, "op", "move", "bond", alice, bob, 5, caller=bob).message.startswith("0x54")
    live.call("bond", "unpause", caller=agent)
    assert fails(live, "op", "move", "bond", alice, a(live, "x"), 5, caller=bob).message.startswith(
        "0x57"
    )
    live.call("bond", "revoke", "op", caller=alice)
    assert fails(live, "op", "move", "bond", alice, bob, 5, caller=bob).message.startswith("0x58")
    assert refused(live, "revoke", "op", caller=alice).startswith("NOT_FOUND:")
    assert live.query("bond", "balance_of", bob) == 5
