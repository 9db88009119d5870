"""Faults survived by a 4-validator Tally network, with real processes.

Every test runs real ``cometbft`` and ``python -m tally node run --engine cometbft``
processes (``net_init`` + ``Localnet`` with ``tally_node_argv``) on free 127.0.0.1 ports,
sends signed transactions through the SDK to different nodes' APIs, and breaks
things: stops validators, SIGKILLs an application mid-block, starts a node on another
genesis, alters bytes of a stopped node's SQLite ledger. After every fault the test
compares, at every height, every node's Tally block (hash, state root, log root,
transactions) with every other node's, checks that CometBFT's app hash is the Tally
block hash, and that every acknowledged transaction (a receipt came back) is in that
one history.

The damaged-node test has a network of its own (it leaves nodes broken); the stop and
SIGKILL tests share one (each leaves it whole). Measured figures are printed as
``[measure] ...`` lines (``pytest -s``) and quoted in docs/network.md.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tally import codec
from tally import tx as txmod
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.genesis import Genesis
from tally.home import Home
from tally.keys import NamedKey
from tally.log.checkpoint import NoteError, verify_quorum
from tally.net.cometbft.binary import find_cometbft
from tally.net.cometbft.config import update_config
from tally.net.cometbft.localnet import Localnet, NodeSpec
from tally.net.cometbft.rpc import CometRPC
from tally.net.local import api_url, net_init, tally_node_argv, wait_for_apis
from tally.protocol.header import BlockHeader
from tally.sdk import Receipt, TallyClient, TallyError, VerificationFailed
from tally.state.store import Store
from tests.support.net import (
    EXPIRY,
    Ack,
    TxLoad,
    assert_acknowledged_present,
    audit_copy,
    check_agreement,
    comet_height,
    copy_db,
    require_cometbft,
    say,
    tally_height,
    wait_all_heights,
    wait_tally_heights,
    wait_until,
)

require_cometbft()

pytestmark = pytest.mark.slow

ASSET = "FLT-1"
SUPPLY = 1_000_000_000
SENDERS = ["alice", "bob", "lender", "supplier"]
BURSTER = "factor"


# --- the network under test ---------------------------------------------------------------


@dataclass
class Cluster:
    """A running 4-validator network and what the tests need to talk to it."""

    base: Path
    specs: list[NodeSpec]
    net: Localnet
    chain_id: str

    @property
    def api_urls(self) -> list[str]:
        return [api_url(s) for s in self.specs]

    @property
    def rpc_urls(self) -> list[str]:
        return [s.rpc_url for s in self.specs]

    def key(self, name: str) -> NamedKey:
        return Home(self.base).key(name)

    def app_dir(self, i: int) -> Path:
        return Path(self.specs[i].app_dir)

    def db(self, i: int) -> Path:
        return self.app_dir(i) / "data" / "chain.sqlite"

    def genesis(self) -> Genesis:
        return Genesis.read(self.base / "genesis.json")

    def comet_heights(self, nodes: Sequence[int]) -> list[int | None]:
        return [comet_height(self.rpc_urls[i]) for i in nodes]

    def low(self, nodes: Sequence[int]) -> int:
        """The lowest CometBFT height among ``nodes`` (0 for one that does not answer)."""
        return min(h or 0 for h in self.comet_heights(nodes))

    def high(self, nodes: Sequence[int]) -> int:
        return max(h or 0 for h in self.comet_heights(nodes))

    def tally_heights(self, nodes: Sequence[int]) -> list[int | None]:
        return [tally_height(self.api_urls[i]) for i in nodes]

    def ensure_all_up(self) -> None:
        """Start whatever is not running (a previous test may have failed half-way)."""
        self.net.start()
        wait_for_apis(self.specs, 90)

    def load(self, targets: Sequence[int]) -> TxLoad:
        return TxLoad(self.api_urls, self.chain_id, [self.key(n) for n in SENDERS],
                      self.key("issuer").address, ASSET, targets)

    def logs(self, i: int) -> str:
        app = self.net.apps[i]
        return (f"--- node{i} app.log ---\n{app.tail(30) if app else ''}\n"
                f"--- node{i} cometbft.log ---\n{self.net.nodes[i].tail(30)}")


def sign(key: NamedKey, chain_id: str, nonce: int, kind: str, payload: dict) -> bytes:
    return txmod.sign(key.key, chain=chain_id, nonce=nonce, expiry=EXPIRY, kind=kind,
                      payload=payload)


def start_cluster(base: Path, chain_id: str) -> Cluster:
    """net_init + start + fund the senders (the issuer issues ASSET and hands each
    sender a million units, in one batch through node 0's API)."""
    specs = net_init(base, 4, chain_id=chain_id)
    net = Localnet(specs, app=tally_node_argv)
    cluster = Cluster(base, specs, net, chain_id)
    began = time.monotonic()
    net.start()
    wait_for_apis(specs, 90)
    say("network start (4 validators, until every API serves height 1)",
        f"{time.monotonic() - began:.1f} s")
    issuer = cluster.key("issuer")
    raws = [sign(issuer, chain_id, 0, "asset.issue",
                 {"asset": ASSET, "class": "security", "name": "fault-test asset",
                  "quantity": SUPPLY})]
    for n, name in enumerate([*SENDERS, BURSTER]):
        raws.append(sign(issuer, chain_id, n + 1, "custody.transfer",
                         {"asset": ASSET, "to": cluster.key(name).address,
                          "quantity": 1_000_000}))
    with TallyClient(cluster.api_urls[0]) as client:
        results = client.submit_batch_and_wait(raws)
    assert len(results) == len(raws), results
    assert all(isinstance(r, Receipt) and r.ok for r in results), results
    return cluster


def stored_block_hashes(db: Path, workdir: Path) -> dict[int, str]:
    """height -> block hash, read from a (stopped or live) node's SQLite copy."""
    copy = copy_db(db, workdir / f"{db.parent.parent.name}-{time.monotonic_ns()}.sqlite")
    with sqlite3.connect(copy) as con:
        return {h: bytes(v).hex() for h, v in con.execute("SELECT height, hash FROM blocks")}


def receipts_on_every_node(cluster: Cluster, nodes: Sequence[int], acks: Sequence,
                           sample: int = 8) -> None:
    """A sample of acknowledged transactions, asked for by id on each node's API."""
    rng = random.Random(7)
    for ack in rng.sample(list(acks), min(sample, len(acks))):
        for i in nodes:
            with TallyClient(cluster.api_urls[i]) as client:
                receipt = client.receipt(ack.tx)
            assert (receipt.tx, receipt.height) == (ack.tx, ack.height), (i, ack, receipt)


# --- damaged nodes: another genesis, altered stores (a network of its own) ----------------


def test_damaged_nodes_are_refused_or_detected(tmp_path: Path) -> None:
    """A node on another genesis, or with an altered ledger, never joins silently.

    What happens, as measured (node 3, then 1, then 2 of one network; the others keep
    the chain going throughout):

    1. **Data dir of another chain.** The Tally process exits non-zero at start
       ("this data directory belongs to another chain"): ``Ledger`` compares the stored
       genesis hash with the genesis file.
    2. **Another chain id, empty data dir.** InitChain raises; CometBFT exits non-zero
       (its handshake fails, or its proxy notices the ABCI connection drop first and
       stops the process). The Tally process never commits a block (height 0).
    3. **Same chain id and validators, one extra role, empty data dir.** InitChain
       accepts (it compares chain id and validators only), CometBFT replays block 1
       through the app, whose block hash (the app hash) differs, and CometBFT panics
       replaying block 2 (its header carries the network's app hash): exit non-zero.
       The node never gets past height 1, and its block 1 has no quorum-signed
       checkpoint, so a client that verifies never accepts it.
    4. Node 3, given its genesis back and an empty data dir, is rebuilt by CometBFT's
       handshake replaying every block from its block store, and rejoins.
    5. **An altered event row** (node 1, stopped): ``tally audit`` names the event.
       Consensus cannot see it (execution never reads stored events), so the
       restarted node agrees with every block; its API serves the altered event, but
       the evidence bundle it builds for it fails verification.
    6. **An altered state value** (node 2, stopped: a holding's quantity): the audit
       finds the state root does not recompute; the node's state proof fails the SDK's
       verified read. When a transaction touches the value, the node computes another
       block hash; CometBFT on that node refuses the next block ("wrong
       Block.Header.AppHash", in consensus or in block sync) and stops committing, while the other
       three carry on and agree at every height. Node 2 (voting, not block-syncing)
       finds it at that block's commit: the others' checkpoint signatures do not verify
       against its own. From then on its API refuses every read but the status, which,
       like /metrics, says it diverged (decision 0012).
    7. **Extra role, both data dirs empty** (node 3 joining from nothing): InitChain
       makes this genesis's hash the first app hash, so CometBFT's block sync refuses
       the network's block 1 ("wrong Block.Header.AppHash"); Tally stores no block.
    """
    c = start_cluster(tmp_path / "net", "tally-damage")
    work = tmp_path / "work"
    try:
        load = c.load(targets=[0, 1, 2]).start()
        app3 = c.app_dir(3)
        genesis_path = app3 / "genesis.json"
        original = genesis_path.read_text()
        wait_until(lambda: len(load.acked()) >= 6, 60, "first acknowledgements")
        c.net.stop([3])

        # 1. A data directory that belongs to another genesis: refused at start.
        other = json.loads(original)
        other["chain_id"] = "tally-elsewhere"
        genesis_path.write_text(json.dumps(other))
        app = c.net.apps[3]
        assert app is not None
        app.start()
        rc = app.wait(60)
        assert rc not in (0, None), app.tail()
        assert "belongs to another chain" in " ".join(app.tail().split()), app.tail()
        say("node on a data dir of another genesis", f"Tally exits with code {rc}")

        # 2. Another chain id on an empty data dir: InitChain refuses, CometBFT exits.
        shutil.rmtree(app3 / "data")
        c.net.start([3])
        rc = c.net.nodes[3].wait(60)
        assert rc not in (0, None), c.logs(3)
        # CometBFT stops one of two ways, both non-zero: the handshake returns the
        # app's error, or its proxy sees one of the ABCI connections (consensus, mempool
        # or query: whichever it notices first) drop and stops the process ("... connection
        # terminated. Did the application crash?"). The app's own log gives the reason.
        comet_tail = c.net.nodes[3].tail()
        assert ("error during handshake" in comet_tail
                or "connection terminated. Did the application crash?" in comet_tail), c.logs(3)
        app3_process = c.net.apps[3]
        assert app3_process is not None
        assert "refusing to start" in " ".join(app3_process.tail(100).split()), c.logs(3)
        # The Tally process either exits (its watchdog sees the ABCI peer gone) or keeps
        # serving; while it serves, it must never have committed a block.
        heights_seen: list[int] = []

        def answered_or_exited() -> bool:
            height = tally_height(c.api_urls[3])
            if height is not None:
                heights_seen.append(height)
            return height is not None or not app.running

        wait_until(answered_or_exited, 30, "node 3's API or its exit")
        assert all(h == 0 for h in heights_seen), (heights_seen, c.logs(3))
        with sqlite3.connect(c.db(3)) as con:  # what it stored, whichever way it went
            assert con.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 0
        app_state = "exited" if not app.running else "still running, serving height 0"
        say("other chain id, empty data dir",
            f"CometBFT exits with code {rc} in the handshake; the Tally process is {app_state}")
        c.net.stop([3])

        # 3. Same chain id and validators, one extra role: CometBFT halts it in replay.
        shutil.rmtree(app3 / "data")
        subtle = json.loads(original)
        subtle["roles"][c.key("alice").address] = ["issuer"]
        genesis_path.write_text(json.dumps(subtle))
        c.net.start([3])
        rc = c.net.nodes[3].wait(60)
        tail = c.net.nodes[3].tail(80)
        assert rc not in (0, None), c.logs(3)
        assert re.search(r"AppHash does not match AppHash after replay", tail), c.logs(3)
        served = tally_height(c.api_urls[3])
        assert served is None or served <= 1, c.logs(3)
        network_block_1 = httpx.get(f"{c.api_urls[0]}/v1/blocks/1").json()["hash"]
        if served == 1:
            own = httpx.get(f"{c.api_urls[3]}/v1/blocks/1").json()["hash"]
            assert own != network_block_1
            note = httpx.get(f"{c.api_urls[3]}/v1/checkpoints/1").text
            keyset = {v.name: (v.public_key, v.power) for v in c.genesis().validators}
            with pytest.raises(NoteError):
                verify_quorum(note, keyset, c.genesis().suite)
        shown = (f"is still up, serving its own block 1 {own[:16]}, not quorum-signed"
                 if served == 1 else "serves no block")
        say("extra role in the Tally genesis, empty data dir",
            f"CometBFT panics replaying block 2 (exit code {rc}); the Tally process {shown} "
            f"(the network's block 1: {network_block_1[:16]})")
        c.net.stop([3])

        # 4. Back to the right genesis on an empty data dir: rebuilt by replay.
        shutil.rmtree(app3 / "data")
        genesis_path.write_text(original)
        target = comet_height(c.rpc_urls[0]) or 0
        began = time.monotonic()
        c.net.start([3])
        wait_tally_heights([c.api_urls[3]], target, 120)
        say("empty Tally data dir rebuilt by CometBFT's handshake replay",
            f"{target} blocks replayed, at the network's height {time.monotonic() - began:.1f} s "
            "after the start")

        # 5. An altered event row on node 1 (stopped): the audit names it.
        c.net.stop([1])
        load.set_targets([0, 2, 3])
        with sqlite3.connect(c.db(1)) as con:
            idx, leaf = con.execute("SELECT idx, leaf FROM events ORDER BY idx LIMIT 1 OFFSET 3"
                                    ).fetchone()
            fields = codec.decode(bytes(leaf))
            fields["quantity"] = fields["quantity"] + 1_000
            con.execute("UPDATE events SET leaf=? WHERE idx=?", (codec.encode(fields), idx))
        cli = subprocess.run([sys.executable, "-m", "tally", "audit", "--home", str(c.app_dir(1))],
                             capture_output=True, text=True, timeout=120)
        out = " ".join((cli.stdout + cli.stderr).split())
        assert cli.returncode == 1, out
        pair = f"events {idx - idx % 2}-{idx - idx % 2 + 1}: leaf bytes differ from the logged hashes"
        assert pair in out, out
        served_audit = audit_copy(c.db(1), c.genesis(), work / "audit1")
        # The altered leaf, then every block from its own on: the log root recomputed
        # from the stored events no longer matches any later header; and the stored
        # interior nodes above it differ from the recomputed ones.
        assert served_audit.problems[0] == pair
        assert served_audit.problems[1:] and all(
            re.fullmatch(r"block \d+: log root recomputed from events differs", p)
            or p.startswith("log_nodes: ") for p in served_audit.problems[1:]
        ), served_audit.problems
        c.net.start([1])
        wait_tally_heights([c.api_urls[1]], comet_height(c.rpc_urls[0]) or 0, 60)
        load.set_targets([0, 1, 2, 3])
        event = httpx.get(f"{c.api_urls[1]}/v1/events", params={"after": idx - 1, "limit": 1}
                          ).json()[0]
        assert event["quantity"] == fields["quantity"]  # served as stored: altered
        bundle = httpx.get(f"{c.api_urls[1]}/v1/evidence/{idx}").json()
        with pytest.raises(EvidenceError):
            verify_bundle(bundle, genesis_hash=c.genesis().hash.hex())
        verify_bundle(httpx.get(f"{c.api_urls[0]}/v1/evidence/{idx}").json(),
                      genesis_hash=c.genesis().hash.hex())
        say("altered event row", "tally audit exits 1 naming the event; the node still agrees "
            "on every block, serves the altered event, and its evidence bundle fails to verify")

        # 6. An altered state value on node 2 (stopped): detected when it is next used.
        load.stop()
        acks = load.acked()
        c.net.stop([2])
        alice = c.key("alice")
        key = f"holding/{ASSET}/{alice.address}".encode()
        with sqlite3.connect(c.db(2)) as con:
            value = codec.decode(bytes(con.execute("SELECT value FROM kv WHERE key=?", (key,)
                                                   ).fetchone()[0]))
            value["q"] += 500
            con.execute("UPDATE kv SET value=? WHERE key=?", (codec.encode(value), key))
        state_audit = audit_copy(c.db(2), c.genesis(), work / "audit2")
        # The root no longer recomputes, and the stored trie nodes on the value's path
        # are not those of the recomputed trie.
        assert state_audit.problems[0] == (
            "state: the root recomputed from stored values differs from the latest block's "
            "state root"), state_audit.problems
        assert len(state_audit.problems) == 2 and re.fullmatch(
            r"state: \d+ stored trie node\(s\) differ from the trie recomputed from stored "
            r"values", state_audit.problems[1]), state_audit.problems
        c.net.start([2])
        wait_tally_heights([c.api_urls[2]], comet_height(c.rpc_urls[0]) or 0, 60)
        with TallyClient(c.api_urls[2]) as client:
            # Verified reads of untouched values work once the node's latest block carries
            # a quorum of cosignatures; the altered value's proof never verifies.
            quorum_after = wait_until(lambda: _verifies(client, c.key("bob").address), 30,
                                      "node 2 serving a quorum-signed checkpoint")
            assert client.holding(ASSET, alice.address).value["q"] == value["q"]
            with pytest.raises(VerificationFailed, match="state proof is invalid"):
                client.verified_holding(ASSET, alice.address)
        say("node 2 after restart", f"verified reads work after {quorum_after:.1f} s")
        # Node 2 must be voting (not block-syncing) when the value is used, so that it
        # sees the others' signatures on that block's checkpoint.
        with CometRPC(c.rpc_urls[2]) as rpc2:
            wait_until(lambda: not rpc2.status()["sync_info"]["catching_up"], 60,
                       "node 2's CometBFT to leave block sync")
        with TallyClient(c.api_urls[0]) as client:
            nonce = client.next_nonce(alice.address)
            touched = client.submit_and_wait(sign(alice, c.chain_id, nonce,
                                                  "custody.transfer",
                                                  {"asset": ASSET, "to": c.key("bob").address,
                                                   "quantity": 1}))
        assert touched.ok
        h = touched.height
        halted_after = wait_until(
            lambda: "wrong Block.Header.AppHash" in c.net.nodes[2].tail(200), 60,
            "node 2's CometBFT refusing the next block")
        wait_until(lambda: c.low([0, 1, 3]) >= h + 5, 60, "the three others")
        node2 = comet_height(c.rpc_urls[2])
        assert node2 is None or node2 <= h, (node2, h, c.logs(2))
        # Which part of CometBFT refuses depends on where node 2 was when the next block
        # came: in consensus (it prevotes nil on it, or halts with CONSENSUS FAILURE), or
        # still in block sync after its restart ("Error in validation", retried). The
        # wait above saw the reason; the heights show the effect: nothing after h.
        refusal = c.net.nodes[2].tail(400)
        path = ("consensus failure" if "CONSENSUS FAILURE" in refusal else
                "block sync" if "Error in validation" in refusal else
                "consensus, prevoting nil" if "deems this block invalid" in refusal else
                "another path")
        wait_all_heights(c.api_urls, c.rpc_urls, [0, 1, 3], max(a.height for a in acks))
        agreed = check_agreement(c.api_urls, c.rpc_urls, [0, 1, 3])
        touched_ack = Ack(touched.tx, touched.height, 0, touched.code, time.monotonic())
        assert assert_acknowledged_present(agreed, [*acks, touched_ack]) == len(acks) + 1
        # Node 2 knows it: the others' signatures on block h's checkpoint did not verify
        # against its own. Its API now refuses reads (the status says why), and so it
        # no longer serves the state it computed.
        wait_until(lambda: httpx.get(f"{c.api_urls[2]}/v1/status").json()["diverged"], 30,
                   "node 2 to report its divergence")
        diverged = httpx.get(f"{c.api_urls[2]}/v1/status").json()["diverged"]
        assert diverged["height"] == h, diverged
        assert len(diverged["dissenters"]) >= 2 and "node2" not in diverged["dissenters"]
        for endpoint in [f"/v1/blocks/{h}", f"/v1/assets/{ASSET}/holdings/{alice.address}",
                         f"/v1/checkpoints/{h}"]:
            refused = httpx.get(f"{c.api_urls[2]}{endpoint}")
            assert refused.status_code == 503, (endpoint, refused.text)
            assert refused.json()["code"] == "UNAVAILABLE"
            assert f"diverged from the network at height {h}" in refused.json()["message"]
        assert "tally_diverged 1.0" in httpx.get(f"{c.api_urls[2]}/metrics").text
        shown = subprocess.run([sys.executable, "-m", "tally", "net", "status", "--dir",
                                str(c.base)], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "COLUMNS": "250"})
        assert f"DIVERGED at {h}" in shown.stdout, shown.stdout + shown.stderr
        own = Store(copy_db(c.db(2), work / "diverged" / "chain.sqlite"))
        try:
            row = own.block(h)
            assert row is not None and row.hash.hex() != agreed.blocks[h].tally_hash
            assert BlockHeader.decode(row.header).state.hex() != agreed.blocks[h].state_root
            keyset = {v.name: (v.public_key, v.power) for v in c.genesis().validators}
            with pytest.raises(NoteError):
                verify_quorum(row.checkpoint, keyset, c.genesis().suite)
        finally:
            own.close()
        assert tally_height(c.api_urls[2]) == h
        say("altered state value", f"node 2 diverged at height {h} (the first block touching "
            f"the value); its CometBFT refused block {h + 1} after {halted_after:.1f} s "
            f"(in {path}; process left running, no more commits); node 2 itself found "
            f"the divergence at that commit ({', '.join(diverged['dissenters'])} signed "
            "another checkpoint) and its API refuses reads since")

        # 7. A node joining from nothing (both data dirs empty) with a Tally genesis that
        #    differs only in roles: InitChain gave its CometBFT this genesis's hash as the
        #    first app hash, so it refuses the network's block 1 in block sync, and the
        #    Tally process never stores a block.
        c.net.stop([3])
        shutil.rmtree(app3 / "data")
        subprocess.run([str(find_cometbft()), "unsafe-reset-all", "--home",
                        c.specs[3].home], check=True, capture_output=True, timeout=60)
        genesis_path.write_text(json.dumps(subtle))
        comet_log = c.net.nodes[3].log_path
        earlier = comet_log.stat().st_size  # step 3 logged the same reason: read past it
        began = time.monotonic()
        c.net.start([3])

        def refusing_block_1() -> bool:
            with comet_log.open("rb") as f:
                f.seek(earlier)
                return b"wrong Block.Header.AppHash" in f.read()

        refused_after = wait_until(refusing_block_1, 60, "node 3's CometBFT refusing block 1")
        wait_until(lambda: tally_height(c.api_urls[3]) is not None, 30, "node 3's API")
        assert tally_height(c.api_urls[3]) == 0, c.logs(3)
        with sqlite3.connect(c.db(3)) as con:
            assert con.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 0
        say("extra role, both data dirs empty", f"CometBFT refused the network's block 1 "
            f"{refused_after:.1f} s after the start ({time.monotonic() - began:.1f} s in "
            "all); the Tally process stored no block")
    finally:
        c.net.stop()


def _verifies(client: TallyClient, holder: str) -> bool:
    try:
        client.verified_holding(ASSET, holder)
    except TallyError:
        return False
    return True


# --- stop, halt, restart; SIGKILL mid-block (one shared network) ---------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("faults")
    # Node 1's CometBFT logs its handshake (module consensus at info) so the SIGKILL
    # test can say what state the crash left: appHeight/storeHeight/stateHeight.
    c = start_cluster(base / "net", "tally-faults")
    try:
        update_config(c.specs[1].home, {"": {"log_level": "consensus:info,*:error"}})
        yield c
    finally:
        c.net.stop()


def test_one_down_flows_two_down_halts_restart_catches_up(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    """1 of 4 validators down: blocks keep coming and every acknowledged transaction is
    on every live node. 2 of 4 down (half the power, not more than 2/3): no block
    commits, no two nodes differ at any height, stopped nodes' ledgers included. Both
    restarted: the chain resumes, they catch up, every acknowledged transaction is on
    all four nodes at the same height, and the ledgers audit clean."""
    c = cluster
    c.ensure_all_up()
    load = c.load(targets=[0, 1, 2, 3]).start()
    try:
        wait_until(lambda: len(load.acked()) >= 8, 60, "acknowledgements from all four")
        h0 = c.high([0, 1, 2, 3])
        four = wait_until(lambda: c.low([0, 1, 2, 3]) >= h0 + 10, 60, "10 blocks with all four")

        # One of four down.
        load.set_targets([0, 1, 2])
        c.net.stop([3])
        t_stop3 = time.monotonic()
        before = len(load.acked())
        h_stop3 = c.high([0, 1, 2])
        took = wait_until(lambda: c.low([0, 1, 2]) >= h_stop3 + 10, 60, "10 blocks, node 3 down")
        wait_until(lambda: len(load.acked()) >= before + 10, 60, "acks with node 3 down")
        say("block interval under load", f"4 of 4 validators: {four * 100:.0f} ms; "
            f"3 of 4: {took * 100:.0f} ms (over 10 blocks each)")
        agreed = check_agreement(c.api_urls, c.rpc_urls, [0, 1, 2])
        acked = [a for a in load.acked() if a.height <= agreed.hi]
        assert assert_acknowledged_present(agreed, acked) >= before + 1
        receipts_on_every_node(c, [0, 1, 2], acked)

        # Two of four down: halt.
        load.set_targets([0, 1])
        c.net.stop([2])
        t_halt = time.monotonic()
        time.sleep(1.5)  # a height already decided may still commit
        stuck = c.comet_heights([0, 1])
        stuck_tally = c.tally_heights([0, 1])
        time.sleep(6.0)  # more than a dozen rounds of timeouts
        assert c.comet_heights([0, 1]) == stuck, "a block committed without a 2/3 quorum"
        assert c.tally_heights([0, 1]) == stuck_tally
        top = max(h or 0 for h in stuck)
        assert all(a.height <= top for a in load.acked())
        halted = check_agreement(c.api_urls, c.rpc_urls, [0, 1])
        for i in (2, 3):  # the stopped nodes' ledgers hold the same blocks
            stored = stored_block_hashes(c.db(i), tmp_path)
            for h in range(1, min(max(stored), halted.hi) + 1):
                assert stored[h] == halted.blocks[h].tally_hash, (i, h)
            report = audit_copy(c.db(i), c.genesis(), tmp_path / f"audit{i}")
            assert report.problems == [], (i, report.problems)
        say("with 2 of 4 down", f"heights {stuck} unchanged for 6 s; nodes 0 and 1 agree on "
            f"1..{halted.hi}; stopped nodes' ledgers hold the same blocks and audit clean")

        # Both back.
        t_restart = time.monotonic()
        c.net.start([2, 3])
        resumed = wait_until(lambda: (comet_height(c.rpc_urls[0]) or 0) > top, 90,
                             "the chain resuming")
        t_resume = time.monotonic()
        target = comet_height(c.rpc_urls[0]) or 0
        caught_up = wait_tally_heights(c.api_urls, target, 90)
        load.set_targets([0, 1, 2, 3])
        n_acks = len(load.acked())
        wait_until(lambda: len([a for a in load.acked()[n_acks:] if a.node in (2, 3)]) >= 2, 60,
                   "acknowledgements from the restarted nodes")
        halted_for = t_resume - t_halt
        during = [a for a in load.acked() if a.sent < t_restart < a.at]  # waited it out
        assert during, "no submission was waiting through the halt"
        assert all(a.height > top for a in during)
        say("halt", f"{halted_for:.1f} s without a block: 7.5 s on purpose, then "
            f"{t_resume - t_restart:.1f} s from the restart of nodes 2 and 3 to the first new "
            f"block ({resumed:.1f} s of it after their processes were started)")
        say("catch-up after restart", f"restarted nodes at the others' height {target} "
            f"{caught_up:.1f} s after the first new block")
        say("submissions in flight through the halt", f"{len(during)}, acknowledged once the "
            "chain resumed, in blocks above the halted height")
        say("node 3 down for", f"{t_restart - t_stop3:.1f} s")
    finally:
        load.stop()
    acks = load.acked()
    wait_all_heights(c.api_urls, c.rpc_urls, range(4), max(a.height for a in acks))
    final = check_agreement(c.api_urls, c.rpc_urls, [0, 1, 2, 3])
    checked = assert_acknowledged_present(final, acks)
    receipts_on_every_node(c, [0, 1, 2, 3], acks)
    say("stop test", f"{checked} acknowledged transactions on all 4 nodes; agreement at "
        f"heights 1..{final.hi}; {load.failures} submissions failed (never acknowledged): "
        f"{load.failure_kinds}")


REPLAY = re.compile(r"ABCI Replay Blocks\s+module=consensus appHeight=(\d+) "
                    r"storeHeight=(\d+) stateHeight=(\d+)")


def test_sigkill_app_mid_block_rejoins_with_same_hashes(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL of one validator's Tally process while blocks of a few hundred
    transactions are executing, three times at different moments, then a restart.

    What CometBFT does (v0.38, measured): the ABCI connections drop ("consensus
    connection terminated. Did the application crash? Please restart CometBFT") and it
    stops its services. Usually it then exits with code 0 within a second; but when
    its consensus routine was inside an ABCI call (FinalizeBlock, Commit, a proposal)
    the shutdown hangs: the process stays up, doing nothing (2 of 12 kills in one
    exploratory run). The test then stops it (SIGTERM is enough). Both are restarted;
    the handshake (its log: appHeight, storeHeight, stateHeight) replays what the app
    had not committed, or takes the app's word for a block the app committed but
    CometBFT had not yet recorded. Every time, the ledger the crash left audits clean,
    the node rejoins,
    and at every height its app hash and Tally block equal everyone else's; no
    acknowledged transaction is lost.
    """
    c = cluster
    c.ensure_all_up()
    burster = c.key(BURSTER)
    with TallyClient(c.api_urls[0]) as client:
        burst_nonce = client.next_nonce(burster.address)
    load = c.load(targets=[0, 2, 3]).start()
    try:
        wait_until(lambda: len(load.acked()) >= 4, 60, "acknowledgements")
        for attempt, delay in enumerate([0.15, 0.45, 0.9]):
            top = comet_height(c.rpc_urls[0]) or 0
            wait_tally_heights([c.api_urls[1]], top, 60)
            raws = [sign(burster, c.chain_id, burst_nonce + n, "custody.transfer",
                         {"asset": ASSET, "to": c.key("issuer").address, "quantity": 1})
                    for n in range(300)]
            burst_nonce += len(raws)
            with TallyClient(c.api_urls[0]) as client:
                taken = client.submit_batch(raws)
            assert all(isinstance(t, str) for t in taken), taken
            time.sleep(delay)
            app = c.net.apps[1]
            assert app is not None
            killed_at = tally_height(c.api_urls[1])
            t_kill = time.monotonic()
            app.kill()
            assert app.returncode == -9
            try:
                comet_rc: int | str | None = c.net.nodes[1].wait(15)
                exited = (f"exited with code {comet_rc} "
                          f"{time.monotonic() - t_kill:.2f} s after the kill")
            except TimeoutError:  # its shutdown hung: a supervisor's job to finish it
                stopped = c.net.nodes[1].stop(timeout=5)
                how = {-15: "SIGTERM", -9: "SIGKILL"}.get(stopped or 0, f"exit code {stopped}")
                exited = f"began shutting down but still ran 15 s later (stopped by {how})"
            report = audit_copy(c.db(1), c.genesis(), tmp_path / f"audit-{attempt}")
            assert report.problems == [], report.problems
            c.net.start([1])
            target = comet_height(c.rpc_urls[0]) or 0
            rejoined = wait_tally_heights([c.api_urls[1]], target, 90)
            replays = REPLAY.findall(c.net.nodes[1].tail(400))
            handshake = ("appHeight={} storeHeight={} stateHeight={}".format(*replays[-1])
                         if replays else "no handshake line found")
            say(f"SIGKILL #{attempt + 1} ({delay}s after a 300-tx burst)",
                f"app at height {killed_at}; CometBFT {exited}; restart handshake "
                f"{handshake}; rejoined (height {target}) in {rejoined:.1f} s")

        # And the other way round: SIGKILL of node 2's CometBFT. Its Tally process stays
        # up (nothing tells it); CometBFT alone is restarted and catches up.
        load.set_targets([0, 1, 3])
        c.net.nodes[2].kill()
        time.sleep(2.0)
        app2 = c.net.apps[2]
        assert app2 is not None and app2.running
        began = time.monotonic()
        c.net.start([2])  # the app is running: this starts CometBFT only
        target = comet_height(c.rpc_urls[0]) or 0
        wait_tally_heights([c.api_urls[2]], target, 90)
        say("SIGKILL of a CometBFT process", f"its Tally process kept running; CometBFT "
            f"restarted alone, at height {target} {time.monotonic() - began:.1f} s later")
    finally:
        load.stop()
    acks = load.acked()
    wait_all_heights(c.api_urls, c.rpc_urls, range(4), max(a.height for a in acks))
    agreed = check_agreement(c.api_urls, c.rpc_urls, [0, 1, 2, 3])
    assert assert_acknowledged_present(agreed, acks) == len(acks)
    with TallyClient(c.api_urls[0]) as client:
        wait_until(lambda: client.next_nonce(burster.address) == burst_nonce, 60,
                   "every burst transaction committed")
    say("SIGKILL test", f"{len(acks)} acknowledged transactions and 900 burst ones on all 4 "
        f"nodes; agreement at heights 1..{agreed.hi}")
