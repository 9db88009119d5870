"""Restart time of an embedded node holding N events, after SIGKILL under load.

Target (the issue): a node holding 1,000,000 events, killed with SIGKILL, is back to
serving within 10 s of being restarted.

1. Build a chain of N custody events as fast as this machine allows: transfers are
   signed by a pool of worker processes and written in blocks of ``--block``
   transactions through the node's own block path (``Ledger.execute`` + ``Ledger.commit``,
   the calls the solo engine makes), so the database is exactly what a node writes.
   Senders pass units to ``--holders`` distinct addresses, so state grows too.
2. Open the ledger in-process and time it (store, genesis check, log frontier, trie).
3. Run ``python -m tally node run`` on the home, put it under load (a stream of batches
   submitted without waiting) and SIGKILL it mid-stream, ``--restarts`` times; each time
   measure from starting the new process to its first successful ``GET /v1/status``,
   and to the receipt of the first new transaction committed after the restart.

    python bench/bench_restart.py [--events 1000000] [--suite intl|gm] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.home import Home, init_home  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.ledger import Ledger  # noqa: E402
from tally.state.store import Store  # noqa: E402

ASSET = "BENCH-BOND"
EXPIRY = 90_000  # within the genesis expiry window for the whole build

# --- signing workers (separate processes: signing is the build's CPU-bound half) --------

_W: dict = {}


def _init_worker(suite_name: str, chain: str, sender_keys: list[bytes], holders: list[str],
                 per_block: int) -> None:
    suite = get_suite(suite_name)
    _W.update(keys=[suite.load_private_key(k) for k in sender_keys], holders=holders,
              chain=chain, per_block=per_block)


def _sign_block(block: int) -> list[bytes]:
    """The transfers of block ``block``: transaction i is sent by sender i mod S with
    nonce i div S, so every block holds consecutive nonces of every sender."""
    keys, holders, per_block = _W["keys"], _W["holders"], _W["per_block"]
    senders = len(keys)
    out = []
    for i in range(block * per_block, (block + 1) * per_block):
        sender, nonce = i % senders, i // senders
        to = holders[(i * 7919) % len(holders)]
        out.append(txmod.sign(keys[sender], chain=_W["chain"], nonce=nonce, expiry=EXPIRY,
                              kind="custody.transfer",
                              payload={"asset": ASSET, "to": to, "quantity": 1}))
    return out


# --- building the chain --------------------------------------------------------------------

def holder_addresses(n: int) -> list[str]:
    return [hashlib.sha256(f"holder-{i}".encode()).digest()[:20].hex() for i in range(n)]


def build(home: Home, events: int, senders: int, holders: int, per_block: int,
          workers: int) -> tuple[int, float]:
    """Write a chain of ``events`` custody events into ``home``; returns (events, seconds)."""
    genesis = home.genesis()
    validator = home.validator()
    issuer = home.key("issuer")
    suite = genesis.suite
    sender_keys = [generate(f"s{i}", suite.name) for i in range(senders)]
    store = Store(home.data_dir / "chain.sqlite")
    ledger = Ledger(store, genesis, validator.key, validator.name)

    def commit(raws: list[bytes]) -> None:
        txs = [ledger.executor.decode(r) for r in raws]
        block = ledger.commit(ledger.execute(txs, time.time_ns() // 1_000_000,
                                             is_verified=lambda _tx_id: True))
        bad = [o for o in block.outcomes if o.code != "OK"]
        if bad:
            raise RuntimeError(f"block {block.height}: {bad[0].code} {bad[0].message}")

    started = time.perf_counter()
    # Issue, then fund each sender: 1 + S events.
    funding = [txmod.sign(issuer.key, chain=genesis.chain_id, nonce=0, expiry=EXPIRY,
                          kind="asset.issue",
                          payload={"asset": ASSET, "class": "security", "name": "Bench bond",
                                   "quantity": 2 * 10**15})]
    funding += [txmod.sign(issuer.key, chain=genesis.chain_id, nonce=i + 1, expiry=EXPIRY,
                           kind="custody.transfer",
                           payload={"asset": ASSET, "to": k.address, "quantity": 10**12})
                for i, k in enumerate(sender_keys)]
    for i in range(0, len(funding), per_block):
        commit(funding[i:i + per_block])
    transfers = max(0, events - len(funding))
    blocks = -(-transfers // per_block)
    last_report = time.perf_counter()
    with mp.get_context("fork").Pool(
        workers, _init_worker,
        (suite.name, genesis.chain_id, [k.key.to_bytes() for k in sender_keys],
         holder_addresses(holders), per_block),
    ) as pool:
        window = 2 * workers  # blocks signed ahead of the writer, to bound memory
        pending = [pool.apply_async(_sign_block, (b,)) for b in range(min(window, blocks))]
        for b in range(blocks):
            raws = pending.pop(0).get()
            if b + window < blocks:
                pending.append(pool.apply_async(_sign_block, (b + window,)))
            if b == blocks - 1:
                raws = raws[:transfers - b * per_block]
            commit(raws)
            if time.perf_counter() - last_report > 15:
                last_report = time.perf_counter()
                done = len(funding) + (b + 1) * per_block
                print(f"  … {done:,} events in {last_report - started:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    size = ledger.log.size
    store.close()
    return size, elapsed


def db_bytes(home: Home) -> int:
    return sum(p.stat().st_size for p in home.data_dir.glob("chain.sqlite*"))


def time_open(home: Home) -> tuple[float, int]:
    """Seconds to open the store and the ledger in-process and read through them (after
    a crash this includes SQLite's WAL recovery), and the height found."""
    genesis, validator = home.genesis(), home.validator()
    began = time.perf_counter()
    store = Store(home.data_dir / "chain.sqlite")
    ledger = Ledger(store, genesis, validator.key, validator.name)
    # The log frontier, the trie root and one state value are usable.
    _ = ledger.log.root(), ledger.state_root, ledger.read(f"asset/{ASSET}".encode())
    elapsed = time.perf_counter() - began
    height = ledger.height
    store.close()
    return elapsed, height


# --- the node process ----------------------------------------------------------------------

def import_baseline() -> float:
    """Seconds a fresh interpreter takes to import what ``tally node run`` imports: the
    part of a restart that does not depend on the chain at all."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tally.cli.main, tally.api.app, tally.node, "
                    "uvicorn"], check=True)
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(home: Home, port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tally", "node", "run", "--home", str(home.path),
             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)


def wait_serving(url: str, proc: subprocess.Popen, log_path: Path,
                 timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the node exited with code {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/v1/status", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"the node did not serve within {timeout} s")


def load_then_kill(url: str, proc: subprocess.Popen, home: Home, load_txs: int,
                   kill_after: float) -> tuple[int, int]:
    """Stream pre-signed transfers at the node without waiting for receipts and SIGKILL
    it ``kill_after`` seconds into the stream; returns (height seen last, WAL bytes)."""
    issuer = home.key("issuer")
    genesis = home.genesis()
    with httpx.Client(base_url=url, timeout=60) as client:
        nonce = client.get(f"/v1/accounts/{issuer.address}").json()["nonce"]
        height = client.get("/v1/status").json()["height"]
        holders = holder_addresses(1000)
        raws = [txmod.sign(issuer.key, chain=genesis.chain_id, nonce=nonce + i,
                           expiry=height + 1000, kind="custody.transfer",
                           payload={"asset": ASSET, "to": holders[i % 1000], "quantity": 1})
                for i in range(load_txs)]

        def stream() -> None:
            try:
                for i in range(0, len(raws), 500):
                    body = {"txs": [base64.b64encode(r).decode() for r in raws[i:i + 500]]}
                    client.post("/v1/txs/batch", json=body)
            except httpx.HTTPError:
                pass  # killed

        t = threading.Thread(target=stream, daemon=True)
        t.start()
        time.sleep(kill_after)
        seen = client.get("/v1/status").json()["height"]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t.join(30)
    wal = home.data_dir / "chain.sqlite-wal"
    return seen, wal.stat().st_size if wal.exists() else 0


def restart(home: Home, log_path: Path) -> tuple[subprocess.Popen, str, float, float, int]:
    """Start the node; seconds to the first status and to the first new committed tx."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    issuer = home.key("issuer")
    chain_id = home.genesis().chain_id
    began = time.perf_counter()
    proc = start_node(home, port, log_path)
    try:
        wait_serving(url, proc, log_path)
        serving = time.perf_counter() - began
        with httpx.Client(base_url=url, timeout=60) as client:
            nonce = client.get(f"/v1/accounts/{issuer.address}").json()["nonce"]
            height = client.get("/v1/status").json()["height"]
            raw = txmod.sign(issuer.key, chain=chain_id, nonce=nonce, expiry=height + 1000,
                             kind="custody.transfer",
                             payload={"asset": ASSET, "to": holder_addresses(1)[0],
                                      "quantity": 1})
            response = client.post("/v1/txs", params={"wait": "commit"},
                                    json={"tx": base64.b64encode(raw).decode()})
            response.raise_for_status()
            if response.json()["code"] != "OK":
                raise RuntimeError(f"the first transaction after restart failed: "
                                   f"{response.text}")
    except BaseException:
        proc.kill()  # the caller never gets this process: do not leave it running
        proc.wait()
        raise
    committed = time.perf_counter() - began
    return proc, url, serving, committed, height


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events to build (default 1M)")
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--senders", type=int, default=1000)
    ap.add_argument("--holders", type=int, default=100_000, help="distinct recipient addresses")
    ap.add_argument("--block", type=int, default=10_000, help="transactions per block")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                    help="signing processes")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--load-txs", type=int, default=20_000,
                    help="transfers streamed at the node before each kill")
    ap.add_argument("--kill-after", type=float, default=1.5,
                    help="seconds into the stream at which the node is killed")
    ap.add_argument("--keep", type=Path, help="build in (or reuse) this home directory")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        home_path = args.keep
    else:
        tmp = Path(tempfile.mkdtemp(prefix="tally-restart-"))
        home_path = tmp / "home"
    try:
        if not (home_path / "genesis.json").exists():
            home = init_home(home_path, suite_name=args.suite, chain_id="bench-restart",
                             accounts={"issuer": ["issuer"]})
            print(f"building {args.events:,} events (suite {args.suite}, {args.senders} "
                  f"senders, {args.holders:,} holders, {args.block:,} txs/block, "
                  f"{args.workers} signing processes)", flush=True)
            events, elapsed = build(home, args.events, args.senders, args.holders,
                                    args.block, args.workers)
            print(f"built {events:,} events in {elapsed:.1f} s "
                  f"({events / elapsed:,.0f} events/s)")
        else:
            home = Home(home_path)
            print(f"reusing the chain in {home_path}")
        print(f"database: {db_bytes(home) / 2**20:,.1f} MiB")
        opened, height = time_open(home)
        print(f"in-process Store + Ledger open at height {height}: {opened * 1000:.1f} ms")

        log_path = home_path / "node.log"
        port = free_port()
        proc = start_node(home, port, log_path)
        url = f"http://127.0.0.1:{port}"
        servings, commits = [], []
        try:
            began = time.perf_counter()
            wait_serving(url, proc, log_path)
            print(f"first start (clean database): serving after "
                  f"{time.perf_counter() - began:.2f} s")
            for run in range(1, args.restarts + 1):
                seen, wal = load_then_kill(url, proc, home, args.load_txs, args.kill_after)
                proc, url, serving, committed, height = restart(home, log_path)
                if height < seen:
                    raise RuntimeError(f"height went back from {seen} to {height}")
                servings.append(serving)
                commits.append(committed)
                print(f"restart {run}: SIGKILL under load at height ≥ {seen} (WAL "
                      f"{wal / 2**20:.1f} MiB) → serving at height {height} after "
                      f"{serving:.2f} s, first new tx committed after {committed:.2f} s")
            # Once more, and open the crashed database in-process: WAL recovery included.
            _, wal = load_then_kill(url, proc, home, args.load_txs, args.kill_after)
            opened, height = time_open(home)
            print(f"in-process Store + Ledger open after SIGKILL (WAL {wal / 2**20:.1f} MiB, "
                  f"recovered to height {height}): {opened * 1000:.1f} ms")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        print(f"restart after SIGKILL, {args.restarts} runs: to serving median "
              f"{statistics.median(servings):.2f} s (max {max(servings):.2f} s); to first "
              f"committed tx median {statistics.median(commits):.2f} s "
              f"(max {max(commits):.2f} s)")
        print(f"of which interpreter + imports (python -c 'import …'): "
              f"{import_baseline():.2f} s")
        print(f"database after the runs: {db_bytes(home) / 2**20:,.1f} MiB")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
