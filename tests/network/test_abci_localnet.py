"""Four validators: four cometbft processes, four Python kvstore app processes.

Checks agreement (same block and app hash at every height on every node), liveness with
one of four down, safety with two of four down (no progress, no fork), and recovery.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from bench.kvstore_app import kvstore_argv, state_hash
from tally.net.cometbft.binary import CometBFTNotFound, find_cometbft
from tally.net.cometbft.localnet import Localnet, free_port_block, make_localnet
from tally.net.cometbft.rpc import CometRPC, wait_for_rpc

try:
    find_cometbft()
except CometBFTNotFound as e:  # pragma: no cover - depends on the machine
    if os.environ.get("TALLY_REQUIRE_COMETBFT"):  # CI sets this: never skip silently
        raise
    pytest.skip(f"{e}", allow_module_level=True)


def chain_view(rpc: CometRPC, lo: int, hi: int) -> dict[int, tuple[str, str, str]]:
    """height -> (block hash, header app hash, app hash after the block), one node's view.

    The header hash comes from /commit (the signed header), the block hash from /block.
    """
    out = {}
    for h in range(lo, hi + 1):
        header = rpc.commit(h)["signed_header"]["header"]
        out[h] = (
            rpc.block(h)["block_id"]["hash"],
            header["app_hash"],
            rpc.block_results(h)["app_hash"],
        )
    return out


def heights(net: Localnet, nodes: list[int]) -> list[int]:
    out = []
    for i in nodes:
        with net.rpc(i) as rpc:
            out.append(rpc.latest_height())
    return out


def assert_agree(net: Localnet, nodes: list[int], hi: int) -> dict[int, tuple[str, str, str]]:
    views = []
    for i in nodes:
        with net.rpc(i) as rpc:
            views.append(chain_view(rpc, 1, hi))
    for i, v in zip(nodes[1:], views[1:], strict=True):
        assert v == views[0], f"node {i} disagrees with node {nodes[0]}"
    view = views[0]
    for h in range(1, hi):  # block h+1's header commits to the app hash after block h
        assert bytes.fromhex(view[h + 1][1]) == base64.b64decode(view[h][2])
    return view


def test_four_validators_agree_survive_one_halt_at_two_and_recover(tmp_path: Path) -> None:
    specs = make_localnet(tmp_path, 4, free_port_block(40), timeout_commit="200ms")
    net = Localnet(specs, app=kvstore_argv)
    try:
        net.start()
        for i in range(4):
            with net.rpc(i) as rpc:
                wait_for_rpc(rpc)
        net.wait_for_height(3, timeout=60)
        with net.rpc(0) as rpc:
            vals = rpc.validators()["validators"]
            assert sorted(v["address"] for v in vals) == sorted(s.validator_address for s in specs)
            assert {v["voting_power"] for v in vals} == {"10"}
            sigs = rpc.commit(2)["signed_header"]["commit"]["signatures"]
            assert len(sigs) == 4

        # Transactions sent to different nodes end up in every replica.
        state = {}
        for n in range(40):
            k, v = b"k%d" % n, b"v%d" % n
            with net.rpc(n % 4) as rpc:
                assert rpc.broadcast_tx_sync(k + b"=" + v)["code"] == 0
            state[k] = v
        deadline = time.monotonic() + 30
        with net.rpc(3) as rpc:
            while rpc.abci_query("", b"k39")["response"]["log"] != "exists":
                assert time.monotonic() < deadline, "txs not committed"
                time.sleep(0.05)
            h, app_hash = rpc.latest_app_hash()
            assert app_hash == state_hash(state.items())
        net.wait_for_height(h, timeout=30)
        assert_agree(net, [0, 1, 2, 3], h)

        # One of four down (3/4 of the power > 2/3): blocks keep coming.
        net.stop([3])
        h0 = max(heights(net, [0, 1, 2]))
        net.wait_for_height(h0 + 4, nodes=[0, 1, 2], timeout=60)

        # Two of four down (1/2 of the power): no block can commit.
        net.stop([2])
        time.sleep(1.0)  # let a height in flight, if any, settle
        stuck = heights(net, [0, 1])
        time.sleep(4.0)  # > several rounds of timeouts
        assert heights(net, [0, 1]) == stuck, "progress without a 2/3 quorum"
        hs = min(stuck)
        view = assert_agree(net, [0, 1], hs)

        # Both come back (apps from their own persisted state): the net resumes,
        # the stopped nodes catch up, and nobody's history changed.
        net.start([2, 3])
        net.wait_for_height(max(stuck) + 3, timeout=90)
        top = min(heights(net, [0, 1, 2, 3]))
        final = assert_agree(net, [0, 1, 2, 3], top)
        assert {h: final[h] for h in view} == view
    finally:
        net.stop()
