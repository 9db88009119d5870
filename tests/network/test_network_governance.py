"""A real 4-validator CometBFT network: cosigned checkpoints, validator-set changes by
governance, evidence that stays verifiable across them, and verified reads from any
node (including one that was not a validator at genesis)."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tally import tx as txmod
from tally.consensus.bundle import decode_bundle, encode_bundle, is_bundle
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.home import Home
from tally.keys import generate, load
from tally.net.cometbft.binary import CometBFTNotFound, find_cometbft
from tally.net.cometbft.localnet import load_localnet
from tally.net.cometbft.rpc import CometRPC
from tally.net.local import api_url, consensus_key, net_down, net_init, net_up
from tally.sdk import Receipt, TallyClient

try:
    find_cometbft()
except CometBFTNotFound as e:  # pragma: no cover - depends on the machine
    if os.environ.get("TALLY_REQUIRE_COMETBFT"):
        raise
    pytest.skip(f"{e}", allow_module_level=True)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("net")
    net_init(base, 4, full_nodes=1, chain_id="gov-net")
    try:
        net_up(base, timeout=90)
        yield base
    finally:
        net_down(base)


def cometbft_validators(base: Path, node: int = 0) -> dict[str, int]:
    spec = load_localnet(base)[node]
    with CometRPC(spec.rpc_url) as rpc:
        result = rpc.validators()
    return {v["pub_key"]["value"]: int(v["voting_power"]) for v in result["validators"]}


def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


def evidence_when_ready(client: TallyClient, index: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.evidence(index, consistency=True).to_dict()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_checkpoints_are_cosigned_by_a_quorum_and_every_node_agrees(net: Path) -> None:
    specs = load_localnet(net)
    home = Home(net)
    genesis_hash = TallyClient(api_url(specs[0])).status().genesis_hash
    with TallyClient(api_url(specs[1])) as client:
        issuer = client.account(home.key("issuer"))
        issuer.issue("BOND", asset_class="security", name="Bond", quantity=1000)
        receipt = issuer.transfer("BOND", to=home.key("alice").address, quantity=100)
        bundle = evidence_when_ready(client, receipt.events[0])
    verdict = verify_bundle(bundle, genesis_hash=genesis_hash)
    assert len(verdict.signers) >= 3  # more than 2/3 of four equal validators
    # The same block, state and log on every node, including the full node (which may
    # commit the height a moment after the node that answered).
    height = receipt.height
    wait_until(lambda: all(TallyClient(api_url(s)).status().height >= height
                           for s in specs), what=f"every node at height {height}")
    blocks = [TallyClient(api_url(s)).block(height) for s in specs]
    assert len({(b.hash, b.header.state, b.header.log_root) for b in blocks}) == 1
    with CometRPC(specs[2].rpc_url) as rpc:
        assert rpc.app_hash_at(height).hex().lower() == blocks[0].hash
    # Every node's /metrics says the same: its engine, its height, and a quorum of
    # cosignatures on the checkpoint before its latest block.
    for spec in specs:
        text = httpx.get(f"{api_url(spec)}/metrics").text
        samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["tally_node_info"].labels["engine"] == "cometbft"
        assert samples["tally_height"].value >= height
        assert samples["tally_checkpoint_cosignatures"].value >= 3, text
        assert samples["tally_blocks_committed_total"].value >= 1


def issue_and_sign_transfers(client: TallyClient, home: Home, asset: str,
                             recipients: list[str]) -> list[bytes]:
    """The issuer issues ``asset``; then one signed, unsent transfer of a unit to each
    recipient, in nonce order."""
    issuer = client.account(home.key("issuer"))
    issuer.issue(asset, asset_class="security", name=asset.title(),
                 quantity=len(recipients))
    nonce, height = client.next_nonce(issuer.address), client.status().height
    return [txmod.sign(issuer.key.key, chain="gov-net", nonce=nonce + n, expiry=height + 500,
                       kind="custody.transfer", payload={"asset": asset, "to": to, "quantity": 1})
            for n, to in enumerate(recipients)]


def test_a_batch_travels_as_bundles_and_each_transaction_is_recorded_once(net: Path) -> None:
    """A batch posted to one node crosses CometBFT as bundles (two CometBFT transactions
    for 300 transfers), yet every node's Tally blocks list the 300 transfers, each once.
    A second bundle, sent straight to another node's CometBFT, carries 100 of them again
    plus one new transfer: the new one commits, the repeats are recorded nowhere twice
    (this used to stop every node at commit), and every node ends with the same state."""
    specs = load_localnet(net)
    home = Home(net)
    alice = home.key("alice").address
    with TallyClient(api_url(specs[1])) as client:
        raws = issue_and_sign_transfers(client, home, "BUNDLED", [alice] * 301)
        nonce = client.next_nonce(home.key("issuer").address)
        receipts = client.submit_batch_and_wait(raws[:300])
    assert all(isinstance(r, Receipt) and r.ok for r in receipts), receipts[:3]
    top = max(r.height for r in receipts)

    repeat = encode_bundle([*raws[:100], raws[300]])
    wait_until(lambda: TallyClient(api_url(specs[2])).status().height >= top,
               what=f"node2 at height {top}")
    with CometRPC(specs[2].rpc_url) as rpc:
        checked = rpc.broadcast_tx_sync(repeat)
        assert checked["code"] == 0 and checked["log"].startswith("100 of 101 refused"), checked
    with TallyClient(api_url(specs[2])) as client:
        wait_until(lambda: client.next_nonce(home.key("issuer").address) == nonce + 301,
                   what="the new transfer in the repeated bundle to commit")
        last = client.status().height
    wait_until(lambda: all(TallyClient(api_url(s)).status().height >= last + 1
                           for s in specs), what=f"every node past height {last}")

    ids = {txmod.decode(raw, max_size=1 << 16).id.hex() for raw in raws}
    lo = min(r.height for r in receipts)
    for spec in specs:
        with TallyClient(api_url(spec)) as client:
            listed = [t for h in range(lo, last + 1) for t in client.block(h).txs]
            assert sorted(t for t in listed if t in ids) == sorted(ids), spec.moniker
            assert client.asset("BUNDLED").holders[alice].q == 301
    with CometRPC(specs[0].rpc_url) as rpc:
        carried = [base64.b64decode(t) for h in range(lo, top + 1)
                   for t in rpc.block(h)["block"]["data"]["txs"] or []]
        ours = [t for t in carried if is_bundle(t) and set(decode_bundle(t)) & set(raws[:300])]
        assert sorted(len(decode_bundle(t)) for t in ours) == [50, 250]
        infos = [r.get("info", "") for h in range(lo, last + 1)
                 for r in rpc.block_results(h)["txs_results"] or []]
    assert "bundle of 101: 1 succeeded, 0 failed, 100 already in the chain" in infos, infos


CLIENTS = 30


def test_concurrent_single_submissions_share_cometbft_transactions(net: Path) -> None:
    """Thirty clients each send one transfer to the same node at the same moment: each
    gets its own receipt, and the node hands them to CometBFT in fewer than thirty
    CometBFT transactions (those that arrived while a hand-over was in flight went
    together, as bundles), with no timer delaying a lone one. (Thirty: every client here
    is 127.0.0.1, and one address may hold 32 connections, docs/api.md "Limits".)"""
    specs = load_localnet(net)
    home = Home(net)
    bob = home.key("bob").address
    senders = [generate(f"single-{n}", "intl") for n in range(CLIENTS)]
    with TallyClient(api_url(specs[3])) as client:
        funding = issue_and_sign_transfers(client, home, "SINGLES", [k.address for k in senders])
        assert all(isinstance(r, Receipt) and r.ok
                   for r in client.submit_batch_and_wait(funding))
        height = client.status().height
    raws = [txmod.sign(k.key, chain="gov-net", nonce=0, expiry=height + 500,
                       kind="custody.transfer",
                       payload={"asset": "SINGLES", "to": bob, "quantity": 1})
            for k in senders]
    start = threading.Barrier(len(raws))
    receipts: list[Receipt | Exception] = [ValueError("not sent")] * len(raws)

    def client_n(n: int) -> None:
        with TallyClient(api_url(specs[3])) as own:
            start.wait(30)
            try:
                receipts[n] = own.submit_and_wait(raws[n])
            except Exception as exc:
                receipts[n] = exc

    threads = [threading.Thread(target=client_n, args=(n,)) for n in range(len(raws))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(r, Receipt) and r.ok for r in receipts), receipts
    lo, hi = min(r.height for r in receipts), max(r.height for r in receipts)
    with CometRPC(specs[3].rpc_url) as rpc:
        carried = [base64.b64decode(t) for h in range(lo, hi + 1)
                   for t in rpc.block(h)["block"]["data"]["txs"] or []]
    ours = set(raws)
    carriers = [t for t in carried if (set(decode_bundle(t)) if is_bundle(t) else {t}) & ours]
    assert sum(len(decode_bundle(t)) if is_bundle(t) else 1 for t in carriers) == CLIENTS
    assert len(carriers) < CLIENTS, f"{len(carriers)} CometBFT transactions for {CLIENTS}"


def test_governance_changes_validators_and_evidence_follows(net: Path) -> None:
    specs = load_localnet(net)
    home = Home(net)
    newcomer = specs[4]
    checkpoint_key = load(Path(newcomer.app_dir) / "validator.json").public_key
    client = TallyClient(api_url(specs[0]))
    genesis_hash = client.status().genesis_hash
    admin = client.account(home.key("admin"))
    assert base64.b64encode(consensus_key(newcomer)).decode() not in cometbft_validators(net)

    # Promote the full node: the committee (one admin here) decides, CometBFT follows.
    admin.send("gov.propose", {"action": "validator.set", "name": newcomer.moniker,
                               "power": 10, "public_key": checkpoint_key,
                               "consensus_key": consensus_key(newcomer)})
    wait_until(lambda: base64.b64encode(consensus_key(newcomer)).decode()
               in cometbft_validators(net), what="CometBFT to add node4")
    # Demote node1.
    admin.send("gov.propose", {"action": "validator.set", "name": specs[1].moniker,
                               "power": 0})
    wait_until(lambda: len(cometbft_validators(net)) == 4 and
               specs[1].validator_pubkey not in cometbft_validators(net),
               what="CometBFT to remove node1")

    # Events after both changes: their evidence carries the proven history of the set.
    issuer = client.account(home.key("issuer"))
    issuer.issue("RCV", asset_class="receivable", name="Receivable", quantity=50)
    late = issuer.transfer("RCV", to=home.key("bob").address, quantity=5)
    wait_until(lambda: client.status().height >= late.height + 3, what="later blocks")
    with TallyClient(api_url(newcomer)) as via_newcomer:
        bundle = evidence_when_ready(via_newcomer, late.events[0])
        verdict = verify_bundle(bundle, genesis_hash=genesis_hash)
        assert len(bundle["validator_updates"]) == 2
        assert "node4" in verdict.signers and "node1" not in verdict.signers
        assert any("changed 2 time(s)" in fact for fact in verdict.facts)
        # A verified read from the promoted node.
        held = via_newcomer.verified_holding("RCV", home.key("bob").address)
        assert held.held == 5 and "node4" in held.signers

    # Dropping the proven history makes the bundle fail: the checkpoint names another set.
    stripped = dict(bundle, validator_updates=[])
    with pytest.raises(EvidenceError) as info:
        verify_bundle(stripped, genesis_hash=genesis_hash)
    assert info.value.reason in ("validators", "checkpoint")
    # Evidence of an event from before the changes still verifies.
    early = evidence_when_ready(client, 0)
    assert verify_bundle(early, genesis_hash=genesis_hash).event["type"] == "asset.issue"


def test_the_committee_refuses_bad_votes_on_the_network(net: Path) -> None:
    """Protocol version 4's committee on CometBFT: a vote by an account without a seat, a
    double vote, a vote on a withdrawn or an expired proposal, a withdrawal by another
    seat, and a policy that would let a minority govern are refused with their codes, and
    every validator ends with the same state; the seat given for the test is taken back
    by vote."""
    specs = load_localnet(net)
    home = Home(net)
    client = TallyClient(api_url(specs[0]))
    admin, bob, lender = (client.account(home.key(n)) for n in ("admin", "bob", "lender"))
    admin.send("gov.propose", {"action": "committee.seat", "account": bob.address,
                               "weight": 1})  # one seat of one: passes at once
    open_one = admin.send("gov.propose", {"action": "role.define", "role": "auditor"}).tx
    assert lender.send("gov.vote", {"proposal": open_one, "vote": "for"},
                       check=False).code == "UNAUTHORISED"
    assert admin.send("gov.vote", {"proposal": open_one, "vote": "for"},
                      check=False).code == "ALREADY_EXISTS"
    assert bob.send("gov.withdraw", {"proposal": open_one}, check=False).code == "UNAUTHORISED"
    admin.send("gov.withdraw", {"proposal": open_one})
    assert bob.send("gov.vote", {"proposal": open_one, "vote": "for"},
                    check=False).code == "PROPOSAL_CLOSED"
    short = admin.send("gov.propose", {"action": "role.define", "role": "auditor",
                                       "ttl": 1})
    wait_until(lambda: client.status().height > short.height + 1, what="the expiry")
    assert bob.send("gov.vote", {"proposal": short.tx, "vote": "for"},
                    check=False).code == "PROPOSAL_CLOSED"
    minority = admin.send("gov.propose", {
        "action": "policy.set", "resource": "gov:committee.seat",
        "vote": {"participation": 2000, "win": 2000}}, check=False)
    assert minority.code == "INVALID_PAYLOAD"
    removal = admin.send("gov.propose", {"action": "committee.seat", "account": bob.address,
                                         "weight": 0}).tx
    last = bob.send("gov.vote", {"proposal": removal, "vote": "for"})
    roots = set()
    for spec in specs[:4]:
        with TallyClient(api_url(spec)) as each:
            wait_until(lambda each=each: each.status().height >= last.height, what="height")
            roots.add(each.block(last.height).header.state)
    assert len(roots) == 1  # every node holds the same committee, proposals and votes
