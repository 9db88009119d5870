"""Tier 2 on a real node: contract lifecycle through the committee, calls with typed
errors and metering, custody moved by contracts (and its tier-1 evidence), the
commercial log anchored in the cosigned custody checkpoints, and determinism."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tally import codec
from tally.errors import Code
from tally.evidence.export import export_bundle, export_commercial_bundle
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.exec.contracts import contract_address
from tests.support.chain import Chain
from tests.support.replay import recorded_blocks, replay_under_seeds

TOKEN = '''
class Token(Contract):
    owner = Var(str)
    balances = Map(str, int)

    def init(self, supply: int):
        self.owner = ctx.caller
        self.balances[ctx.caller] = supply
        emit("Mint", {"to": ctx.caller, "amount": supply})

    def transfer(self, to: str, amount: int) -> int:
        require(amount > 0, "amount must be positive")
        balance = self.balances[ctx.caller]
        require(balance >= amount, "insufficient balance")
        self.balances[ctx.caller] = balance - amount
        self.balances[to] += amount
        emit("Transfer", {"from": ctx.caller, "to": to, "amount": amount})
        return self.balances[to]

    def spin(self):
        while True:
            pass

    @view
    def balance_of(self, account: str) -> int:
        return self.balances[account]
'''

TOKEN_V2 = TOKEN.replace('require(amount > 0, "amount must be positive")',
                         'require(amount > 0, "v2: amount must be positive")')

VAULT = '''
class Vault(Contract):
    """Issues a custody asset it controls, and pays it out."""

    def init(self):
        pass

    def open(self, asset: str, quantity: int):
        host_call("custody.issue", asset, "security", "vault bond", quantity,
                  host_call("custody.address"))

    def pay(self, asset: str, to: str, quantity: int):
        host_call("custody.transfer", asset, to, quantity)
        emit("Paid", {"to": to, "quantity": quantity})

    def take_back(self, asset: str, holder: str, quantity: int):
        host_call("custody.transfer_from", asset, holder, host_call("custody.address"),
                  quantity)

    @view
    def holding(self, asset: str, holder: str) -> dict:
        return host_call("custody.holding", asset, holder)
'''


def deploy(chain: Chain, name: str, source: str, args: list | None = None):
    payload = {"action": "contract.deploy", "name": name, "source": source}
    if args is not None:
        payload["args"] = args
    return chain.send("admin", "gov.propose", payload)


def call(chain: Chain, who: str, contract: str, method: str, *args, steps: int | None = None):
    payload = {"contract": contract, "method": method, "args": list(args)}
    if steps is not None:
        payload["steps"] = steps
    return chain.node.submit_and_wait(chain.sign(who, "contract.call", payload, tier=2))


@pytest.fixture
def token_chain(chain: Chain) -> Chain:
    assert deploy(chain, "token", TOKEN, [1000]).ok
    return chain


def test_deploy_needs_the_committee_and_keeps_the_source(chain: Chain) -> None:
    refused = chain.send("alice", "gov.propose", {"action": "contract.deploy", "name": "token",
                                                  "source": TOKEN})
    assert refused.code == Code.UNAUTHORISED
    chain.add_to_committee(chain.addr("bob"))
    proposal = deploy(chain, "token", TOKEN, [1000])  # 1 of 2 admins: not yet
    assert proposal.ok
    with pytest.raises(Exception, match="no contract"):
        chain.node.reader.contract("token")
    chain.ok("bob", "gov.approve", {"proposal": proposal.tx})
    record = chain.node.reader.contract("token")
    assert record["version"] == 1 and record["address"] == contract_address("token")
    assert chain.node.reader.contract_source("token") == TOKEN
    # The owner is the proposer, who signed the proposal.
    assert chain.node.reader.contract_query("token", "balance_of", [chain.addr("admin")]) == 1000


def test_calls_return_values_and_log_events(token_chain: Chain) -> None:
    chain = token_chain
    alice = chain.addr("alice")
    receipt = call(chain, "admin", "token", "transfer", alice, 250)
    assert receipt.ok and receipt.result == 250
    assert chain.node.reader.contract_query("token", "balance_of", [alice]) == 250
    events = chain.node.reader.commercial_events()
    assert [(e["contract"], e["name"]) for e in events] == [("token", "Mint"),
                                                            ("token", "Transfer")]
    assert events[1]["data"] == {"from": chain.addr("admin"), "to": alice, "amount": 250}


def test_contract_errors_revert_and_reach_the_caller(token_chain: Chain) -> None:
    chain = token_chain
    root_before = chain.node.ledger.state_root
    failed = call(chain, "alice", "token", "transfer", chain.addr("bob"), 5)
    assert failed.code == Code.CONTRACT_ERROR and "insufficient balance" in failed.message
    assert chain.node.reader.contract_query("token", "balance_of", [chain.addr("bob")]) == 0
    assert len(chain.node.reader.commercial_events()) == 1
    assert chain.node.ledger.state_root != root_before  # only alice's nonce moved
    bad_args = call(chain, "alice", "token", "transfer", "bob", "five")
    assert bad_args.code == Code.VM_BAD_ARGS
    missing = call(chain, "alice", "token", "mint_for_me")
    assert missing.code == Code.VM_NO_METHOD
    nothing = call(chain, "alice", "ghost", "transfer")
    assert nothing.code == Code.VM_NO_CONTRACT


def test_metering_stops_runaway_calls_and_the_node_stays_healthy(token_chain: Chain) -> None:
    chain = token_chain
    looped = call(chain, "alice", "token", "spin", steps=10_000)
    assert looped.code == Code.VM_OUT_OF_STEPS
    after = call(chain, "admin", "token", "transfer", chain.addr("bob"), 1)
    assert after.ok


def test_upgrade_keeps_storage_and_every_version_is_on_record(token_chain: Chain) -> None:
    chain = token_chain
    assert call(chain, "admin", "token", "transfer", chain.addr("alice"), 10).ok
    upgraded = chain.send("admin", "gov.propose", {"action": "contract.upgrade",
                                                   "name": "token", "source": TOKEN_V2})
    assert upgraded.ok
    record = chain.node.reader.contract("token")
    assert record["version"] == 2 and len(record["versions"]) == 2
    assert chain.node.reader.contract_source("token", 1) == TOKEN
    assert chain.node.reader.contract_source("token", 2) == TOKEN_V2
    assert chain.node.reader.contract_query("token", "balance_of", [chain.addr("alice")]) == 10
    failed = call(chain, "alice", "token", "transfer", chain.addr("bob"), 0)
    assert "v2: amount must be positive" in failed.message
    lifecycle = [e for e in chain.node.reader.events() if e["type"].startswith("contract.")]
    assert [e["type"] for e in lifecycle] == ["contract.deploy", "contract.upgrade"]
    assert lifecycle[1]["data"] == record["code_id"]  # the code hash that runs now


@pytest.mark.parametrize("source, code", [
    ("import os\nclass A(Contract):\n    pass\n", Code.CONTRACT_REJECTED),
    ("class A(Contract):\n    def f(self):\n        return ().__class__\n", Code.CONTRACT_REJECTED),
    ("class A(Contract):\n    x = 1.5\n", Code.CONTRACT_REJECTED),
])
def test_unsafe_sources_are_refused_at_proposal(chain: Chain, source: str, code: Code) -> None:
    receipt = deploy(chain, "bad", source)
    assert receipt.code == code


def test_contracts_move_custody_only_through_the_custody_interface(chain: Chain) -> None:
    vault = contract_address("vault")
    assert deploy(chain, "vault", VAULT).ok
    refused = call(chain, "alice", "vault", "open", "VBOND", 1000)
    assert refused.code == Code.UNAUTHORISED and "issuer role" in refused.message
    chain.grant(vault, "issuer")
    assert call(chain, "alice", "vault", "open", "VBOND", 1000).ok
    paid = call(chain, "alice", "vault", "pay", "VBOND", chain.addr("bob"), 40)
    assert paid.ok
    assert chain.node.reader.holding("VBOND", chain.addr("bob")) == {"q": 40, "p": 0, "f": 0}
    # The asset is the vault's to move: a holder's plain transfer is refused...
    direct = chain.send("bob", "custody.transfer", {"asset": "VBOND", "to": chain.addr("carol"),
                                                    "quantity": 1})
    assert direct.code == Code.UNAUTHORISED
    # ...and the vault takes units back only as the asset's controller.
    assert call(chain, "alice", "vault", "take_back", "VBOND", chain.addr("bob"), 15).ok
    assert chain.node.reader.contract_query("vault", "holding", ["VBOND", chain.addr("bob")]) == {
        "q": 25, "p": 0, "f": 0}
    too_much = call(chain, "alice", "vault", "pay", "VBOND", chain.addr("bob"), 10_000)
    assert too_much.code == Code.INSUFFICIENT_UNITS
    # The contract's custody moves are custody events, with tier-1 evidence.
    transfer = next(e for e in chain.node.reader.history("VBOND")
                    if e["type"] == "custody.transfer" and e["to"] == chain.addr("bob"))
    assert transfer["from"] == vault and transfer["details"]["contract"] == "vault"
    verdict = verify_bundle(export_bundle(chain.node.reader, transfer["log_index"]),
                            genesis_hash=chain.genesis.hash.hex())
    assert verdict.event["quantity"] == 40


def test_contract_events_have_evidence_anchored_in_custody_checkpoints(token_chain: Chain
                                                                      ) -> None:
    chain = token_chain
    call(chain, "admin", "token", "transfer", chain.addr("alice"), 7)
    call(chain, "admin", "token", "transfer", chain.addr("bob"), 8)
    bundle = export_commercial_bundle(chain.node.reader, 1, consistency=True)
    verdict = verify_bundle(bundle, genesis_hash=chain.genesis.hash.hex())
    assert verdict.event["name"] == "Transfer" and verdict.event["data"]["amount"] == 7
    assert "commercial log" in verdict.facts[1]
    # Any change to the contract event is caught.
    leaf = codec.decode(base64.b64decode(bundle["event"]["leaf"]))
    leaf["data"] = codec.encode({"from": "x", "to": "y", "amount": 700})
    forged = dict(bundle, event=dict(bundle["event"], leaf=base64.b64encode(
        codec.encode(leaf)).decode()))
    with pytest.raises(EvidenceError):
        verify_bundle(forged, genesis_hash=chain.genesis.hash.hex())


def test_blocks_with_contracts_replay_identically_under_other_hash_seeds(
        token_chain: Chain, tmp_path: Path) -> None:
    chain = token_chain
    chain.ok("admin", "gov.propose", {"action": "contract.deploy", "name": "vault",
                                      "source": VAULT})
    chain.grant(contract_address("vault"), "issuer")
    raws = [chain.sign("admin", "contract.call", {"contract": "token", "method": "transfer",
                                                  "args": [chain.addr(n), i + 1]}, tier=2)
            for i, n in enumerate(["alice", "bob", "carol"] * 4)]
    raws.append(chain.sign("alice", "contract.call", {"contract": "vault", "method": "open",
                                                      "args": ["VB", 100]}, tier=2))
    raws.append(chain.sign("alice", "contract.call", {"contract": "vault", "method": "pay",
                                                      "args": ["VB", chain.addr("bob"), 9]},
                           tier=2))
    results = chain.node.submit_many(raws, wait=True)
    assert len(results) == len(raws) and all(r.ok for r in results), results
    blocks, expected = recorded_blocks(chain.node)
    for replayed in replay_under_seeds(chain.genesis, blocks, tmp_path, seeds=("1", "4242")):
        assert replayed == expected
