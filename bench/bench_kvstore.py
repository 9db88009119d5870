#!/usr/bin/env python3
"""How many kvstore tx/s does CometBFT commit: its built-in Go kvstore vs ours over ABCI.

Same network, same config, same load, side by side:

    .venv/bin/python bench/bench_kvstore.py                 # 1 and 4 nodes, both apps
    .venv/bin/python bench/bench_kvstore.py --nodes 1 --txs 30000

"go" is ``cometbft start --proxy_app=persistent_kvstore`` (in-process Go app, goleveldb);
"python" is ``bench/kvstore_app.py`` (separate process, ABCI socket, SQLite,
fsync per block).  The load generator (this process) sends unique ``key=value`` txs in
JSON-RPC batches of broadcast_tx_async (default; --method broadcast_tx_sync to wait for
CheckTx), spread over all nodes; it shares the machine's cores with the nodes, equally in both runs.

Reported per run: "accept/s" (txs the RPC took per second while sending; with
broadcast_tx_sync, txs that passed CheckTx) and
"commit/s" (committed txs / time from the start of the first block that held any to the
commit of the last, from block header times), "e2e/s" (committed txs / time from the
first send to that last commit), plus blocks and mean txs per block.  A header's time
is when the previous block was committed (BFT time), so block h is taken as committed
at header(h+1).time.  Then, with CometBFT out of the picture, the raw Python ABCI
path: pipelined CheckTx/s, and FinalizeBlock+Commit tx/s, through one socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.kvstore_app import kvstore_argv  # noqa: E402
from tally.net.cometbft.localnet import Localnet, free_port_block, make_localnet  # noqa: E402
from tally.net.cometbft.rpc import (  # noqa: E402
    AsyncCometRPC,
    CometRPC,
    RPCError,
    tx_call,
    wait_for_height,
    wait_for_rpc,
)


@dataclass
class Result:
    app: str
    nodes: int
    sent: int
    accepted: int
    committed: int
    accept_per_s: float
    commit_per_s: float
    e2e_per_s: float
    blocks: int
    txs_per_block: float
    seconds: float


def _time(s: str) -> float:
    # RFC 3339 with nanoseconds; keep microseconds for datetime
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


async def _load(
    urls: list[str], total: int, batch: int, concurrency: int, tag: str, method: str
) -> int:
    clients = [AsyncCometRPC(u, timeout=60) for u in urls]
    next_i = 0
    accepted = 0

    async def worker(w: int) -> None:
        nonlocal next_i, accepted
        rpc = clients[w % len(clients)]
        while next_i < total:
            lo = next_i
            hi = min(total, lo + batch)
            next_i = hi
            calls = [tx_call(method, b"%s-%d=v%d" % (tag.encode(), i, i)) for i in range(lo, hi)]
            for r in await rpc.call_batch(calls):
                if not isinstance(r, RPCError) and r["code"] == 0:
                    accepted += 1

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        for c in clients:
            await c.aclose()
    return accepted


def committed_between(rpc: CometRPC, lo: int, hi: int) -> list[tuple[int, int, float]]:
    """(height, num_txs, header time) for lo..hi."""
    out = []
    h = hi
    while h >= lo:
        metas = rpc.blockchain(max(lo, h - 19), h)["block_metas"]
        for m in metas:
            out.append((int(m["header"]["height"]), int(m["num_txs"]), _time(m["header"]["time"])))
        h -= 20
    return sorted(out)


def run(
    app: str,
    nodes: int,
    txs: int,
    batch: int,
    concurrency: int,
    timeout_commit: str,
    keep: bool,
    method: str,
) -> Result:
    base = Path(tempfile.mkdtemp(prefix=f"bench-{app}-{nodes}-"))
    specs = make_localnet(
        base,
        nodes,
        free_port_block(10 * nodes),
        timeout_commit=timeout_commit,
        log_level="error",
        mempool_size=max(50000, 2 * txs),
    )
    if app == "go":
        net = Localnet(specs, app=None, builtin_app="persistent_kvstore")
    else:
        net = Localnet(specs, app=kvstore_argv)
    rpc = CometRPC(specs[0].rpc_url, timeout=30)
    try:
        net.start()
        for i in range(nodes):
            with net.rpc(i) as r:
                wait_for_rpc(r)
        wait_for_height(rpc, 2, timeout=60)
        h0 = rpc.latest_height()
        t0 = time.monotonic()
        wall0 = time.time()
        accepted = asyncio.run(
            _load([s.rpc_url for s in specs], txs, batch, concurrency, f"{app}{nodes}", method)
        )
        t_sent = time.monotonic() - t0
        # Drain: until node 0's mempool is empty and one more block is in.
        deadline = time.monotonic() + 120
        while int(rpc.num_unconfirmed_txs()["n_txs"]) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        h1 = wait_for_height(rpc, rpc.latest_height() + 1, timeout=60)
        blocks = committed_between(rpc, h0, h1)
        with_txs = [b for b in blocks if b[1] > 0]
        committed = sum(b[1] for b in with_txs)
        # A header's time is (about) when the block before it was committed, so block
        # h was committed at time(h + 1); we waited for one block past the last.
        times = {h: t for h, _, t in blocks}
        if with_txs and with_txs[-1][0] + 1 in times:
            first, last = with_txs[0][0], with_txs[-1][0]
            span = times[last + 1] - times[first]
            e2e = times[last + 1] - wall0
        else:
            span = e2e = float("nan")
        return Result(
            app=app,
            nodes=nodes,
            sent=txs,
            accepted=accepted,
            committed=committed,
            accept_per_s=accepted / t_sent,
            commit_per_s=committed / span if span else 0.0,
            e2e_per_s=committed / e2e if e2e else 0.0,
            blocks=len(with_txs),
            txs_per_block=committed / max(1, len(with_txs)),
            seconds=time.monotonic() - t0,
        )
    finally:
        rpc.close()
        net.stop()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def abci_ceiling(n_txs: int = 20000, block: int = 5000) -> dict[str, float]:
    """CheckTx/s and FinalizeBlock+Commit tx/s of the Python kvstore over one socket.

    The upper bound the Python side puts on a node, with CometBFT out of the picture.
    """
    from tally.consensus.abci import ABCIClient, abci
    from tally.net.cometbft.localnet import free_port_block
    from tally.net.cometbft.process import ManagedProcess, wait_for_listen

    tmp = Path(tempfile.mkdtemp(prefix="bench-abci-"))
    addr = f"tcp://127.0.0.1:{free_port_block(1)}"
    app = ManagedProcess(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "kvstore_app.py"),
            "--address",
            addr,
            "--db",
            str(tmp / "kv.sqlite"),
            "--log-level",
            "WARNING",
        ],
        log_path=tmp / "app.log",
    )
    app.start()
    try:
        wait_for_listen(addr)
        txs = [b"ceil-%d=v%d" % (i, i) for i in range(n_txs)]
        with ABCIClient(addr, timeout=60) as c:
            c.call(abci.Request(init_chain=abci.RequestInitChain(chain_id="bench")))
            t = time.perf_counter()
            for lo in range(0, n_txs, 1000):  # CometBFT pipelines CheckTx the same way
                c.send(
                    *[
                        abci.Request(check_tx=abci.RequestCheckTx(tx=tx))
                        for tx in txs[lo : lo + 1000]
                    ]
                )
                assert all(r.check_tx.code == 0 for r in c.flush())
            check = n_txs / (time.perf_counter() - t)
            t = time.perf_counter()
            for h, lo in enumerate(range(0, n_txs, block), start=1):
                c.call(
                    abci.Request(
                        finalize_block=abci.RequestFinalizeBlock(height=h, txs=txs[lo : lo + block])
                    )
                )
                c.call(abci.Request(commit=abci.RequestCommit()))
            final = n_txs / (time.perf_counter() - t)
    finally:
        app.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"CheckTx per s": check, f"FinalizeBlock+Commit tx/s ({block}/block)": final}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--apps", nargs="+", default=["go", "python"], choices=["go", "python"])
    ap.add_argument("--txs", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--timeout-commit", default="500ms")
    ap.add_argument(
        "--method",
        default="broadcast_tx_async",
        choices=["broadcast_tx_async", "broadcast_tx_sync"],
        help="sync waits for CheckTx per tx (batches run sequentially on the node)",
    )
    ap.add_argument("--keep", action="store_true", help="keep node homes (logs) in /tmp")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the raw ABCI measurement")
    args = ap.parse_args()

    ceiling = abci_ceiling() if "python" in args.apps and not args.no_ceiling else {}
    results = []
    for n in args.nodes:
        for app in args.apps:
            r = run(
                app,
                n,
                args.txs,
                args.batch,
                args.concurrency,
                args.timeout_commit,
                args.keep,
                args.method,
            )
            results.append(r)
            with contextlib.suppress(Exception):
                print(f"  {app:6} nodes={n}: {r.commit_per_s:8.0f} commit/s", file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": [asdict(r) for r in results], "abci": ceiling}, indent=2))
        return
    print(
        f"{'app':7}{'nodes':>6}{'sent':>8}{'committed':>11}"
        f"{'accept/s':>10}{'commit/s':>10}{'e2e/s':>8}{'blocks':>8}{'tx/block':>10}"
    )
    for r in results:
        print(
            f"{r.app:7}{r.nodes:>6}{r.sent:>8}{r.committed:>11}{r.accept_per_s:>10.0f}"
            f"{r.commit_per_s:>10.0f}{r.e2e_per_s:>8.0f}{r.blocks:>8}{r.txs_per_block:>10.0f}"
        )
    if ceiling:
        print("\nPython ABCI path alone (raw client -> kvstore process, no CometBFT):")
        for k, v in ceiling.items():
            print(f"  {k:34} {v:10.0f}")


if __name__ == "__main__":
    main()
