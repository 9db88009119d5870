"""The contract templates on a real node: digital cash and a compliant bond deployed by
the committee, delivery versus payment settling both legs or neither, and evidence of
both tiers for the settlement."""

from __future__ import annotations

from tally.apps import source
from tally.errors import Code
from tally.evidence.export import export_bundle, export_commercial_bundle
from tally.evidence.verify import verify_bundle
from tally.exec.contracts import contract_address
from tests.support.chain import Chain

BOND, CNY = "BOND-2030", "CNY"
QTY, PRICE = 10, 1_000_000


def deploy(chain: Chain, name: str, template: str, args: list) -> None:
    receipt = chain.send("admin", "gov.propose", {"action": "contract.deploy", "name": name,
                                                  "source": source(template), "args": args})
    assert receipt.ok, receipt
    chain.grant(contract_address(name), "issuer")


def call(chain: Chain, who: str, contract: str, method: str, *args):
    return chain.node.submit_and_wait(chain.sign(
        who, "contract.call", {"contract": contract, "method": method, "args": list(args)},
        tier=2))


def ok(chain: Chain, who: str, contract: str, method: str, *args):
    receipt = call(chain, who, contract, method, *args)
    assert receipt.ok, receipt
    return receipt


def balances(chain: Chain) -> dict[str, int]:
    return {f"{who} {asset}": chain.node.reader.holding(asset, chain.addr(who))["q"]
            for who in ("alice", "bob") for asset in (BOND, CNY)}


def test_delivery_versus_payment_on_chain(chain: Chain) -> None:
    bank, owner, agent = "issuer", "custodian", "lender"
    seller, buyer = "alice", "bob"
    deploy(chain, "cash", "digital_cash", [CNY, "e-CNY", "", chain.addr(bank)])
    deploy(chain, "bond", "security_token", [BOND, "Bond 2030", [chain.addr(agent)],
                                             chain.addr(owner)])
    deploy(chain, "dvp", "dvp", [])
    for who in (seller, buyer):
        ok(chain, bank, "cash", "open_wallet", chain.addr(who), 1)
        ok(chain, agent, "bond", "register_identity", chain.addr(who), "CN", "professional")
    ok(chain, bank, "cash", "issue", chain.addr(buyer), 5_000_000)
    ok(chain, agent, "bond", "issue", chain.addr(seller), 100)
    ok(chain, agent, "bond", "unpause")
    ok(chain, seller, "bond", "approve", "dvp")
    ok(chain, buyer, "cash", "approve", "dvp")
    # Controlled assets: the holders cannot move them around the contracts' rules.
    direct = chain.send(seller, "custody.transfer", {"asset": BOND, "to": chain.addr(buyer),
                                                     "quantity": 1})
    assert direct.code == Code.UNAUTHORISED

    # A trade the buyer cannot pay: both legs or neither.
    ok(chain, seller, "dvp", "initiate", "T0", "bond", QTY, chain.addr(buyer), "cash",
       50_000_000)
    before = balances(chain)
    events_before = chain.node.status()["log_size"]
    failed = call(chain, buyer, "dvp", "take", "T0")
    assert failed.code == Code.CONTRACT_ERROR and "LEG_FAILED" in failed.message
    assert balances(chain) == before
    assert chain.node.status()["log_size"] == events_before  # no custody event either

    # A trade that settles.
    ok(chain, seller, "dvp", "initiate", "T1", "bond", QTY, chain.addr(buyer), "cash", PRICE)
    settled = ok(chain, buyer, "dvp", "take", "T1")
    assert balances(chain) == {f"{seller} {BOND}": 90, f"{seller} {CNY}": PRICE,
                               f"{buyer} {BOND}": QTY, f"{buyer} {CNY}": 5_000_000 - PRICE}
    assert chain.node.reader.contract_query("dvp", "trade", ["T1"])["status"] == "settled"

    # Tier 1: both legs are custody events of the settlement, with evidence.
    legs = [e for e in chain.node.reader.events() if e["tx"] == settled.tx]
    assert [(e["type"], e["asset"]) for e in legs] == [("custody.transfer", BOND),
                                                       ("custody.transfer", CNY)]
    pinned = chain.genesis.hash.hex()
    for leg in legs:
        verdict = verify_bundle(export_bundle(chain.node.reader, leg["log_index"]), genesis_hash=pinned)
        assert verdict.event["details"]["contract"] in ("bond", "cash")
        assert "signed by account " + chain.addr(buyer) in verdict.facts[0]
    # Tier 2: the contracts' own events, anchored in the same checkpoints.
    settlement = next(e for e in chain.node.reader.commercial_events(contract="dvp")
                      if e["name"] == "TradeSettled")
    verdict = verify_bundle(export_commercial_bundle(chain.node.reader, settlement["log_index"]),
                            genesis_hash=pinned)
    assert verdict.event["contract"] == "dvp" and verdict.event["name"] == "TradeSettled"
