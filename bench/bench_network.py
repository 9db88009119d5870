#!/usr/bin/env python3
"""Custody transfers per second on a local CometBFT network, against the engine's ceiling.

One run, one machine, three networks' worth of measurements:

1. **kvstore** -- CometBFT's built-in Go kvstore on N validators: the consensus
   engine's ceiling on this machine (no application cost to speak of);
2. **tally** -- Tally on N validators (``net_init`` + the same node processes as
   ``tally net up``), custody transfers submitted through the Tally API's
   ``POST /v1/txs/batch`` (``--path api``, the user path) or straight to CometBFT's
   ``broadcast_tx_async`` (``--path rpc``);
3. **degraded** -- the same Tally network with the last validator stopped;
4. **kv-after** -- the kvstore again, on a fresh network, so that the ratio is taken
   against the ceiling measured on both sides of Tally's ladders: this machine's speed
   drifts by tens of per cent over minutes, and one kvstore ladder measured before
   Tally's can be far from the ceiling during it (``--no-kv-after`` skips it).

Each is an open-loop rate ladder: at every offered rate the load generator sends the
pre-built batches on a fixed schedule (it never waits for commits; a stream only waits
for the previous HTTP answer of that stream so one sender's nonces arrive in order),
then waits for the mempools to drain.  Per step it reports the committed rate in
steady state (the middle 60 % of the committed transactions), end to end (committed /
first send to last commit) and the commit latency of every transaction (send of its
batch -> the moment node 0 announced its block's commit on the ``NewBlockHeader``
websocket event, which CometBFT fires after the application's Commit).  A step "keeps
up" when the steady committed rate is >= 90 % of the offered rate, the end-to-end
rate >= 80 % of it, everything accepted was committed, and the last commit came within
5 s of the last send (the backlog did not build up).  The ladder stops at the first
step that does not keep up, then bisects towards it; the **sustained** figure is the
best step that kept up.  Why this method: docs/decisions/0801-*.md; method and
conclusions: docs/network-performance.md; the runs themselves: bench/results/.

    .venv/bin/python bench/bench_network.py --profile 2000 --write bench/results/network-DATE-run-X.md
    .venv/bin/python bench/bench_network.py --only tally --rate 800
    .venv/bin/python bench/bench_network.py --only kvstore --kv-rates 3000 4000

All processes are started attached (they die with this process) and stopped in
``finally``; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tally import keys  # noqa: E402
from tally import tx as txmod  # noqa: E402
from tally.consensus.bundle import decode_bundle, is_bundle, pack  # noqa: E402
from tally.keys import NamedKey  # noqa: E402
from tally.net.cometbft.binary import cometbft_version  # noqa: E402
from tally.net.cometbft.config import update_config  # noqa: E402
from tally.net.cometbft.localnet import (  # noqa: E402
    Localnet,
    NodeSpec,
    free_port_block,
    load_localnet,
    make_localnet,
)
from tally.net.cometbft.rpc import CometRPC, wait_for_height, wait_for_rpc  # noqa: E402
from tally.net.local import (  # noqa: E402
    TIMEOUT_PROPOSE_ONE_MACHINE,
    api_url,
    net_init,
    tally_node_argv,
    wait_for_apis,
)

CHAIN = "tally-bench"
ASSET = "BOND"
EXPIRY = 50_000  # blocks; far beyond any run, within the 100,000-block window
TX_BYTES = 260  # an intl custody.transfer is 260 bytes; kvstore txs are padded to match
MAX_DRAIN = 5.0  # s from the last send to the last commit, for a step to count as kept up
BEGIN, END = "<!-- bench_network:begin -->", "<!-- bench_network:end -->"


# --- machine and processes --------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the numbers were measured on (they mean little without it)."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    tree = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tally"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        tree = head + (" with uncommitted changes under tally/" if dirty else "")
    return {
        "tree": tree,
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "cometbft": cometbft_version(),
        "loadavg_before": load,
    }


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_busy() -> float:
    """CPU seconds all cores spent not idle, machine-wide (to see other jobs' share)."""
    with contextlib.suppress(OSError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


def process_table(net: Localnet) -> dict[str, int | None]:
    """role -> pid for every process of the net, plus this load generator."""
    out: dict[str, int | None] = {"load generator": os.getpid()}
    for i, (node, app) in enumerate(zip(net.nodes, net.apps, strict=True)):
        if node.running:
            out[f"cometbft {i}"] = node.pid
        if app is not None and app.running:
            out[f"tally {i}"] = app.pid
    return out


def others_share(pids: Sequence[int | None], seconds: float = 2.0) -> float:
    """Cores that processes other than ``pids`` kept busy over the next ``seconds``."""
    ours0, busy0, t0 = sum(cpu_seconds(p) for p in pids), system_busy(), time.monotonic()
    time.sleep(seconds)
    ours = sum(cpu_seconds(p) for p in pids) - ours0
    return max(0.0, (system_busy() - busy0 - ours) / (time.monotonic() - t0))


QUIET = {"threshold": 0.3, "max_wait": 0.0}  # set from --quiet/--quiet-wait in main


def wait_quiet(pids: Sequence[int | None]) -> float:
    """Wait (up to ``--quiet-wait`` s) until other jobs use less than ``--quiet`` cores.

    On a shared machine a step measured while someone else's test suite runs says more
    about them than about us; this trades wall time for comparable steps.  Returns the
    last share seen, which the report prints either way.
    """
    deadline = time.monotonic() + QUIET["max_wait"]
    while True:
        share = others_share(pids)
        if share <= QUIET["threshold"] or time.monotonic() >= deadline:
            return share
        _say(f"  waiting: other processes use {share:.2f} cores")


# --- load shape ---------------------------------------------------------------------------


@dataclass
class Batch:
    """One HTTP request's worth of transactions, already serialised."""

    body: bytes
    hashes: list[bytes]  # sha256 of each tx: CometBFT's tx hash
    senders: list[int]  # sender index of each tx (-1 for kvstore txs)
    first_id: int = 1  # JSON-RPC id of the first call (rpc path)


@dataclass
class Stream:
    """Batches one connection sends, in order, to one node."""

    node: int
    url: str
    batches: list[Batch]


def api_body(raws: Sequence[bytes]) -> bytes:
    """A ``POST /v1/txs/batch`` body, serialised before the step so sending is cheap."""
    return json.dumps({"txs": [base64.b64encode(r).decode() for r in raws],
                       "wait": False}).encode()


def rpc_body(raws: Sequence[bytes], start_id: int) -> bytes:
    """A JSON-RPC batch of ``broadcast_tx_async`` calls, serialised before the step."""
    return json.dumps([
        {"jsonrpc": "2.0", "id": start_id + n, "method": "broadcast_tx_async",
         "params": {"tx": base64.b64encode(r).decode()}}
        for n, r in enumerate(raws)
    ]).encode()


def build_streams(per_stream: list[list[tuple[int, bytes]]], nodes: list[int],
                  urls: dict[int, str], path: str, batch: int) -> list[Stream]:
    """Cut each stream's (sender, tx) sequence into batches bodies for its node."""
    streams = []
    for s, seq in enumerate(per_stream):
        node = nodes[s % len(nodes)]
        batches = []
        for lo in range(0, len(seq), batch):
            part = seq[lo:lo + batch]
            raws = [r for _, r in part]
            body = api_body(raws) if path == "api" else rpc_body(raws, lo + 1)
            batches.append(Batch(body, [hashlib.sha256(r).digest() for r in raws],
                                 [i for i, _ in part], lo + 1))
        streams.append(Stream(node, urls[node], batches))
    return streams


# --- one step of the ladder ---------------------------------------------------------------


@dataclass
class StepResult:
    """What one offered rate gave; every rate in tx/s, every time in seconds."""

    phase: str
    path: str
    live: int
    offered: float
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    committed: int = 0
    send_rate: float = 0.0
    steady: float = 0.0
    e2e: float = 0.0
    p50: float = math.nan
    p90: float = math.nan
    p99: float = math.nan
    max_latency: float = math.nan
    blocks: int = 0
    txs_per_block: float = 0.0
    max_block: int = 0
    block_interval: float = math.nan
    late_heights: int = 0  # heights decided after round 0 (a proposer timed out or was down)
    drain: float = math.nan  # last send -> last commit
    max_lag: float = 0.0  # worst delay of a batch behind its schedule (generator or API)
    kept_up: bool = False
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # role -> share of one core
    wall: float = 0.0
    others_before: float = 0.0  # cores other jobs used just before the step
    cpu_ms_per_tx: float = math.nan  # this benchmark's processes' CPU / committed txs
    marginal_ms_per_tx: float = math.nan  # the same, less what the idle network burns
    retried: bool = False  # a first attempt failed while other jobs were busy

    @property
    def sustained(self) -> float:
        """The steady rate, capped at what was sent (block granularity can overshoot)."""
        return min(self.steady, self.send_rate)


@dataclass
class SendLog:
    t_first: float = math.inf
    t_last: float = 0.0  # the last answer
    final_lag: float = 0.0  # how late the streams' last batches left
    sent_at: dict[bytes, float] = field(default_factory=dict)
    accepted: set[bytes] = field(default_factory=set)
    rejected_senders: set[int] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    max_lag: float = 0.0


async def _watch(ws_url: str, commits: dict[int, float], ready: asyncio.Event) -> None:
    """Record wall time of every NewBlockHeader event of one node (fired after Commit)."""
    async with websockets.connect(ws_url, max_size=1 << 24, ping_interval=None) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                  "params": {"query": "tm.event='NewBlockHeader'"}}))
        ready.set()
        async for msg in ws:
            now = time.time()
            with contextlib.suppress(KeyError, TypeError, ValueError):
                header = json.loads(msg)["result"]["data"]["value"]["header"]
                commits[int(header["height"])] = now


async def _send_stream(stream: Stream, client: httpx.AsyncClient, t0: float,
                       stream_rate: float, offset: float, path: str, log: SendLog) -> None:
    """Each batch leaves when the stream's count so far, at ``stream_rate``, says so
    (a short last batch keeps the average exact)."""
    sent = 0
    for batch in stream.batches:
        due = t0 + offset + sent / stream_rate
        sent += len(batch.hashes)
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.time()
        log.max_lag = max(log.max_lag, now - due)
        if batch is stream.batches[-1]:
            log.final_lag = max(log.final_lag, now - due)
        log.t_first = min(log.t_first, now)
        for h in batch.hashes:
            log.sent_at[h] = now
        try:
            resp = await client.post(stream.url, content=batch.body,
                                     headers={"content-type": "application/json"})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.errors[f"http: {type(exc).__name__}"] += len(batch.hashes)
            log.rejected_senders.update(batch.senders)
            continue
        finally:
            log.t_last = max(log.t_last, time.time())
        if path == "api":
            results = body.get("results") if isinstance(body, dict) else None
            if results is None:
                log.errors[f"api {resp.status_code}: {str(body)[:80]}"] += len(batch.hashes)
                log.rejected_senders.update(batch.senders)
                continue
            for h, s, r in zip(batch.hashes, batch.senders, results, strict=True):
                if r.get("status") == "pending":
                    log.accepted.add(h)
                else:
                    log.errors[str(r.get("code"))] += 1
                    log.rejected_senders.add(s)
        else:
            items = body if isinstance(body, list) else [body]
            by_id = {int(r.get("id", -1)): r for r in items}
            for n, (h, s) in enumerate(zip(batch.hashes, batch.senders, strict=True)):
                r = by_id.get(batch.first_id + n, {"error": {"message": "no answer"}})
                if "error" in r or r.get("result", {}).get("code", 0) != 0:
                    msg = (r.get("error") or {}).get("data") or (r.get("error") or {}).get(
                        "message") or f"code {r['result']['code']}"
                    log.errors[str(msg)[:60]] += 1
                    log.rejected_senders.add(s)
                else:
                    log.accepted.add(h)


def _pending(rpcs: list[CometRPC]) -> int:
    """Transactions still in the live nodes' mempools (drained = all zero)."""
    total = 0
    for rpc in rpcs:
        with contextlib.suppress(httpx.HTTPError, Exception):
            total += int(rpc.num_unconfirmed_txs()["n_txs"])
    return total


async def _drive(streams: list[Stream], rate: float, path: str, ws_url: str,
                 rpcs: list[CometRPC], drain_timeout: float
                 ) -> tuple[SendLog, dict[int, float], float, float]:
    """Send every stream on its schedule, then wait until the live mempools are empty."""
    commits: dict[int, float] = {}
    ready = asyncio.Event()
    watcher = asyncio.create_task(_watch(ws_url, commits, ready))
    await asyncio.wait_for(ready.wait(), 15)
    log = SendLog()
    n = len(streams)
    batch = max(len(b.hashes) for s in streams for b in s.batches)
    interval = batch * n / rate  # between one stream's batches: all together offer `rate`
    clients = {s.url: httpx.AsyncClient(timeout=120) for s in streams}
    cpu0 = time.process_time()
    t0 = time.time() + 0.2
    try:
        await asyncio.gather(*(
            _send_stream(s, clients[s.url], t0, rate / n, interval * i / n, path, log)
            for i, s in enumerate(streams)))
        gen_cpu = (time.process_time() - cpu0) / max(1e-9, time.time() - t0)
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(_pending, rpcs) == 0:
                break
            await asyncio.sleep(0.25)
        # one block past the drain, so the last transactions' commit is observed
        top = max(commits) if commits else 0
        while time.monotonic() < deadline and (max(commits) if commits else 0) < top + 2:
            await asyncio.sleep(0.05)
        t_end = time.time()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        for c in clients.values():
            await c.aclose()
    return log, commits, gen_cpu, t_end


def _blocks(rpc: CometRPC, lo: int, hi: int) -> tuple[dict[int, list[bytes]], dict[int, int]]:
    """height -> sha256 of each tx, for lo..hi (from node 0's RPC), a Tally bundle counting
    as the transactions it carries; and height -> the round that decided it, for lo..hi-1
    (block h+1's last commit says which round decided h)."""
    txs, rounds = {}, {}
    for h in range(lo, hi + 1):
        blk = rpc.block(h)["block"]
        raws = [base64.b64decode(t) for t in blk["data"]["txs"] or []]
        txs[h] = [hashlib.sha256(t).digest()
                  for raw in raws for t in (decode_bundle(raw) if is_bundle(raw) else [raw])]
        if h > lo:
            rounds[h - 1] = int(blk["last_commit"]["round"])
    return txs, rounds


def _pct(sorted_values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of an already sorted list."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_step(phase: str, path: str, net: Localnet, live: list[int],
             streams: list[Stream], rate: float, *, idle_cores: float = 0.0,
             on_start: Callable[[], None] | None = None, drain_timeout: float = 90.0
             ) -> tuple[StepResult, SendLog, set[bytes]]:
    """One offered rate on a running net: drive, then read the blocks and measure.

    ``idle_cores``: what the same net burns with no load (for the marginal cost);
    ``on_start``: called once the machine is quiet, just before the first send.
    """
    rpc0 = CometRPC(net.specs[live[0]].rpc_url, timeout=60)
    rpcs = [CometRPC(net.specs[i].rpc_url, timeout=10) for i in live]
    procs = process_table(net)
    others_before = wait_quiet(list(procs.values()))
    if on_start is not None:
        on_start()
    cpu_before = {role: cpu_seconds(pid) for role, pid in procs.items()}
    busy0 = system_busy()
    wall0 = time.time()
    try:
        h_start = rpc0.latest_height()
        ws_url = net.specs[live[0]].rpc_url.replace("http://", "ws://") + "/websocket"
        log, commits, gen_cpu, t_end = asyncio.run(
            _drive(streams, rate, path, ws_url, rpcs, drain_timeout))
        wall = time.time() - wall0
        cpu = {role: (cpu_seconds(pid) - cpu_before[role]) / wall for role, pid in procs.items()}
        cpu["other processes on the machine"] = max(
            0.0, (system_busy() - busy0) / wall - sum(cpu.values()))
        h_end = max(commits) if commits else rpc0.latest_height()
        blocks, rounds = _blocks(rpc0, h_start + 1, h_end)
    finally:
        rpc0.close()
        for r in rpcs:
            r.close()
    res = StepResult(phase, path, len(live), rate)
    res.wall = wall
    res.others_before = others_before
    res.cpu = {k: round(v, 3) for k, v in cpu.items()}
    res.cpu["load generator (send phase)"] = round(gen_cpu, 3)
    res.sent = len(log.sent_at)
    res.accepted = len(log.accepted)
    res.rejected = res.sent - res.accepted
    res.errors = dict(log.errors.most_common(8))
    res.max_lag = log.max_lag
    # on schedule, sending takes sent / rate; a late generator (or an API answering
    # slower than the schedule) stretches it by the last batches' lag
    res.send_rate = res.sent / (res.sent / rate + max(0.0, log.final_lag))
    latencies: list[float] = []
    per_block: list[tuple[float, int]] = []  # (commit time, our txs) for blocks with ours
    committed: set[bytes] = set()
    for h in sorted(blocks):
        ours = [x for x in blocks[h] if x in log.sent_at]
        if not ours:
            continue
        t = commits.get(h)
        if t is None:  # the event was missed: take the next seen commit
            t = min((v for k, v in commits.items() if k > h), default=t_end)
        per_block.append((t, len(ours)))
        committed.update(ours)
        latencies.extend(t - log.sent_at[x] for x in ours)
    res.committed = len(committed)
    ours = sum(v for k, v in cpu.items() if not k.startswith("other")) * wall
    res.cpu_ms_per_tx = 1000 * ours / res.committed if res.committed else math.nan
    res.marginal_ms_per_tx = (1000 * (ours - idle_cores * wall) / res.committed
                              if res.committed else math.nan)
    res.blocks = len(per_block)
    res.late_heights = sum(1 for r in rounds.values() if r > 0)
    if per_block:
        sizes = [n for _, n in per_block]
        res.txs_per_block = sum(sizes) / len(sizes)
        res.max_block = max(sizes)
        t_last = per_block[-1][0]
        res.e2e = res.committed / (t_last - log.t_first)
        res.drain = t_last - log.t_last
        res.steady = _steady(per_block, log.t_first)
    times = sorted(commits[h] for h in commits if h_start < h <= h_end)
    if len(times) > 1:
        res.block_interval = (times[-1] - times[0]) / (len(times) - 1)
    latencies.sort()
    res.p50, res.p90, res.p99 = (_pct(latencies, q) for q in (0.50, 0.90, 0.99))
    res.max_latency = latencies[-1] if latencies else math.nan
    res.kept_up = (res.committed >= res.accepted > 0 and res.rejected == 0
                   and res.steady >= 0.9 * rate and res.e2e >= 0.8 * rate
                   and res.drain <= MAX_DRAIN)
    return res, log, committed


def _steady(per_block: list[tuple[float, int]], t_first: float) -> float:
    """Committed tx/s over the middle 60 % of the committed transactions.

    From the commit of the block that took the cumulative count past 20 % to the one
    that took it past 80 %: ramp-up and drain are left out, and when the offered rate
    is above capacity the mempool is full throughout, so this is the capacity.
    """
    total = sum(n for _, n in per_block)
    cum, t_a, c_a, t_b, c_b = 0, None, 0, None, 0
    for t, n in per_block:
        cum += n
        if t_a is None and cum >= 0.2 * total:
            t_a, c_a = t, cum
        if cum >= 0.8 * total:
            t_b, c_b = t, cum
            break
    if t_a is None or t_b is None or t_b <= t_a:
        t_last = per_block[-1][0]
        return total / (t_last - t_first) if t_last > t_first else math.nan
    return (c_b - c_a) / (t_b - t_a)


# --- Tally: network, funding, transactions ---------------------------------------------


@dataclass
class Senders:
    keys: list[NamedKey]
    next_nonce: list[int]


def _tune(specs: Sequence[NodeSpec], args: argparse.Namespace) -> None:
    """The mempool and indexer settings under test, identical for both applications."""
    for s in specs:
        update_config(s.home, {
            "mempool": {"size": args.mempool_size, "cache_size": 2 * args.mempool_size,
                        "recheck": args.recheck},
            "tx_index": {"indexer": args.tx_index},
        })


def start_tally(base: Path, args: argparse.Namespace) -> Localnet:
    """``tally net init`` + ``tally net up``, but attached: the nodes die with us."""
    specs = net_init(base, args.validators, suite_name=args.suite, chain_id=CHAIN,
                     timeout_commit=args.timeout_commit, timeout_propose=args.timeout_propose,
                     log_level="error")
    _tune(specs, args)
    net = Localnet(load_localnet(base), app=tally_node_argv, detached=False)
    net.start()
    wait_for_apis(net.specs, timeout=120)
    return net


def fund(net: Localnet, base: Path, suite: str, n: int) -> Senders:
    """Issue the asset and give every sender units (not timed)."""
    issuer = keys.load(base / "keys" / "issuer.json")
    senders = [keys.generate(f"sender-{i}", suite) for i in range(n)]
    raws = [txmod.sign(issuer.key, chain=CHAIN, nonce=0, expiry=EXPIRY, kind="asset.issue",
                       payload={"asset": ASSET, "class": "security", "name": "Bench bond",
                                "quantity": 10**15})]
    raws += [txmod.sign(issuer.key, chain=CHAIN, nonce=i + 1, expiry=EXPIRY,
                        kind="custody.transfer",
                        payload={"asset": ASSET, "to": s.address, "quantity": 10**12})
             for i, s in enumerate(senders)]
    resp = httpx.post(f"{api_url(net.specs[0])}/v1/txs/batch", timeout=300,
                      json={"txs": [base64.b64encode(r).decode() for r in raws], "wait": True})
    bad = [r for r in resp.json()["results"] if r.get("code") != "OK"]
    if bad:
        raise RuntimeError(f"funding failed: {bad[:3]}")
    return Senders(senders, [0] * n)


def transfers(senders: Senders, total: int, n_streams: int) -> list[list[tuple[int, bytes]]]:
    """Sign ``total`` transfers round-robin over the senders; sender i goes to stream
    i % n_streams, its nonces in order (not timed)."""
    n = len(senders.keys)
    per_sender = max(1, math.ceil(total / n))
    per_stream: list[list[tuple[int, bytes]]] = [[] for _ in range(n_streams)]
    addresses = [k.address for k in senders.keys]
    for _ in range(per_sender):
        for i, key in enumerate(senders.keys):
            raw = txmod.sign(key.key, chain=CHAIN, nonce=senders.next_nonce[i], expiry=EXPIRY,
                             kind="custody.transfer",
                             payload={"asset": ASSET, "to": addresses[(i + 1) % n],
                                      "quantity": 1})
            senders.next_nonce[i] += 1
            per_stream[i % n_streams].append((i, raw))
    return per_stream


def resync(net: Localnet, live: list[int], senders: Senders, which: set[int]) -> None:
    """Senders with a refused or lost transaction: take their nonce from the chain."""
    url = api_url(net.specs[live[0]])
    with httpx.Client(timeout=30) as c:
        for i in which:
            senders.next_nonce[i] = c.get(f"{url}/v1/accounts/{senders.keys[i].address}"
                                          ).json()["nonce"]


def kv_txs(tag: str, total: int, n_streams: int) -> list[list[tuple[int, bytes]]]:
    """Unique ``key=value`` txs the size of a custody transfer, round-robin over streams."""
    per_stream: list[list[tuple[int, bytes]]] = [[] for _ in range(n_streams)]
    for i in range(total):
        head = b"%s-%d=" % (tag.encode(), i)
        per_stream[i % n_streams].append((-1, head + b"v" * (TX_BYTES - len(head))))
    return per_stream


# --- per-transaction costs of the ABCI calls, without a network ---------------------------


def component_costs(suite: str, n_txs: int, n_senders: int, repeats: int = 3
                    ) -> dict[str, float]:
    """The fastest of ``repeats`` runs of `_component_costs`, per row: on a shared
    machine the minimum is the figure least disturbed by other jobs."""
    runs = [_component_costs(suite, n_txs, n_senders) for _ in range(repeats)]
    return {k: min(r[k] for r in runs) for k in runs[0]}


def _component_costs(suite: str, n_txs: int, n_senders: int) -> dict[str, float]:
    """Microseconds per transaction of each ABCI call Tally serves, one process, no
    CometBFT: what every validator spends on each transfer, measured without the other
    seven processes competing (so the network figures can be read against it).

    Two apps on identical state: "A" is the node whose API took the transfer (admit,
    then CheckTx's pre-admitted shortcut), "B" a node that hears it by gossip (full
    CheckTx) and then executes the block.
    """
    from tally.consensus.abci import abci
    from tally.crypto import get_suite
    from tally.genesis import make_genesis
    from tally.node import CometSettings, Node

    s = get_suite(suite)
    validator = keys.generate("validator-0", suite)
    issuer = keys.generate("issuer", suite)
    genesis = make_genesis(CHAIN, s, [(validator.name, validator.key)],
                           {issuer.address: ["issuer"]}, 1_700_000_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-comp-"))
    nodes = [Node(tmp / name, genesis, validator,
                  comet=CometSettings("tcp://127.0.0.1:1", "http://127.0.0.1:1"))
             for name in ("a", "b", "c", "d")]
    try:
        senders = Senders([keys.generate(f"s{i}", suite) for i in range(n_senders)],
                          [0] * n_senders)
        fund_raws = [txmod.sign(issuer.key, chain=CHAIN, nonce=0, expiry=EXPIRY,
                                kind="asset.issue",
                                payload={"asset": ASSET, "class": "security", "name": "B",
                                         "quantity": 10**15})]
        fund_raws += [txmod.sign(issuer.key, chain=CHAIN, nonce=i + 1, expiry=EXPIRY,
                                 kind="custody.transfer",
                                 payload={"asset": ASSET, "to": k.address, "quantity": 10**12})
                      for i, k in enumerate(senders.keys)]
        raws = [r for stream in transfers(senders, n_txs, 1) for _, r in stream]
        out: dict[str, float] = {}

        def block(app: Any, height: int, txs: list[bytes], tag: str | None) -> None:
            h = hashlib.sha256(b"%d" % height).digest()
            ts = {"seconds": 1_700_000_000 + height}
            steps = [
                ("ProcessProposal (execute the block)", lambda: app.process_proposal(
                    abci.RequestProcessProposal(hash=h, height=height, time=ts, txs=txs))),
                ("FinalizeBlock", lambda: app.finalize_block(
                    abci.RequestFinalizeBlock(hash=h, height=height, time=ts, txs=txs))),
                ("Commit (SQLite write, fsync)", lambda: app.commit(abci.RequestCommit())),
            ]
            for name, call in steps:
                t = time.perf_counter()
                call()
                if tag:
                    out[name] = (time.perf_counter() - t) * 1e6 / len(txs)

        for node in nodes:
            block(node.engine.app, 1, fund_raws, None)
        a, b, c, d = (node.engine.app for node in nodes)

        def timed(name: str, fn: Any, items: list[bytes]) -> None:
            t = time.perf_counter()
            for r in items:
                fn(r)
            out[name] = (time.perf_counter() - t) * 1e6 / len(items)

        timed("API node: admit (decode, checks, verify)", a.admit, raws)
        timed("API node: CheckTx of its own tx", lambda r: a.check_tx(
            abci.RequestCheckTx(tx=r, type=abci.NEW)), raws)
        timed("peer: CheckTx (decode, checks, verify)", lambda r: b.check_tx(
            abci.RequestCheckTx(tx=r, type=abci.NEW)), raws)
        timed("peer: CheckTx recheck (per tx left in the mempool, per block)",
              lambda r: b.check_tx(abci.RequestCheckTx(tx=r, type=abci.RECHECK)), raws)
        batches = [raws[i:i + 250] for i in range(0, len(raws), 250)]
        t = time.perf_counter()
        for batch in batches:
            c.admit_many(batch)
        out["API node: admit a batch of 250 (per tx)"] = \
            (time.perf_counter() - t) * 1e6 / len(raws)
        bundles = [b for batch in batches for b in pack(batch)]
        timed("peer: CheckTx of a bundle of 250 (per bundle)", lambda r: d.check_tx(
            abci.RequestCheckTx(tx=r, type=abci.NEW)), bundles)
        out["peer: CheckTx of a bundle of 250 (per tx)"] = \
            out.pop("peer: CheckTx of a bundle of 250 (per bundle)") * len(bundles) / len(raws)
        timed("tx.decode alone", lambda r: txmod.decode(r, max_size=1 << 16), raws)
        decoded = [txmod.decode(r, max_size=1 << 16) for r in raws]
        t = time.perf_counter()
        for d in decoded:
            txmod.check_signature(d, s)
        out["signature verify alone"] = (time.perf_counter() - t) * 1e6 / len(decoded)
        block(b, 2, raws, "peer")
        return out
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- profiling ----------------------------------------------------------------------------


def py_spy() -> str | None:
    """py-spy from the venv (``pip install py-spy``) or PATH; profiling is optional."""
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def summarize_profile(raw_path: Path, seconds: float, rate: int, top: int = 25
                      ) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output
    (inclusive: Tally's functions only).

    Shares are of all samples taken (py-spy samples every thread that is running, not
    idle), so "busy threads" = samples / (seconds * rate).
    """
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_c[_frame(frames[-1])] += c
        # inclusive: Tally's own functions only (the thread and event-loop plumbing
        # above them is ~90 % of everything and says nothing)
        for f in {_frame(f) for f in frames if _is_tally(f)}:
            incl[f] += c

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {"samples": total, "busy_threads": round(total / (seconds * rate), 2),
            "self": share(self_c), "inclusive": share(incl)}


def _is_tally(f: str) -> bool:
    """Is this py-spy frame in the tally package (paths may be relative to the cwd)?"""
    where = f.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    return "tally" in Path(where).parts


def _frame(f: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: line numbers split the counts."""
    name, _, where = f.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if "tally" in parts else Path(file).name
    return f"{name} ({short})"


# --- ladders and phases -------------------------------------------------------------------


def _say(msg: str) -> None:
    """Progress on stderr, so stdout carries only the Markdown report."""
    print(msg, file=sys.stderr, flush=True)


def _fmt_step(r: StepResult) -> str:
    """One line per step while the run goes on."""
    return (f"  {r.phase:8} offered {r.offered:6.0f}  sent {r.send_rate:6.0f}/s  "
            f"steady {r.steady:6.0f}/s  e2e {r.e2e:6.0f}/s  p50 {r.p50:5.2f}s  "
            f"p99 {r.p99:5.2f}s  blocks {r.blocks:3} x {r.txs_per_block:6.0f}  "
            f"interval {r.block_interval:4.2f}s  late {r.late_heights}  lag {r.max_lag:4.2f}s  "
            f"rej {r.rejected}{' ' + str(r.errors) if r.errors else ''}  "
            f"cpu {r.cpu_ms_per_tx:.2f} ms/tx  others {r.others_before:.2f}/{r.cpu.get('other processes on the machine', 0):.2f}  "
            f"{'kept up' if r.kept_up else 'BEHIND'}")


def step_txs(args: argparse.Namespace, rate: float) -> int:
    """Transactions one step sends: ``--txs``, or ``--step-seconds`` worth at ``rate``."""
    return args.txs or int(rate * args.step_seconds)


LADDER = {"retries": 1, "refine": 2}  # set from --retries/--refine in main
DISTURBED = 0.5  # cores other jobs used during a failed step that earn it a retry


def ladder(phase: str, rates: list[float], make: Callable[[float], list[Stream]],
           run: Callable[[float, list[Stream]], StepResult]) -> list[StepResult]:
    """Steps of increasing offered rate until one does not keep up; then bisect between
    the best rate that kept up and the one that did not (``--refine`` times).

    A step that fails while other jobs took more than half a core is run again once
    (``--retries``): on a shared machine that failure says little about us.
    """
    out: list[StepResult] = []

    def step(rate: float) -> StepResult:
        res = run(rate, make(rate))
        _say(_fmt_step(res))
        for _ in range(LADDER["retries"]):
            if res.kept_up or res.cpu.get("other processes on the machine", 0) <= DISTURBED:
                break
            out.append(res)
            res = run(rate, make(rate))
            res.retried = True
            _say(_fmt_step(res) + "  (retry)")
        out.append(res)
        return res

    passed, failed = 0.0, None
    for rate in rates:
        if step(rate).kept_up:
            passed = rate
        else:
            failed = rate
            break
    for _ in range(LADDER["refine"] if failed else 0):
        mid = round((passed + failed) / 2 / 50) * 50
        if mid <= passed or mid >= failed:
            break
        if step(mid).kept_up:
            passed = mid
        else:
            failed = mid
    return out


def best(steps: list[StepResult]) -> StepResult | None:
    """The sustained figure: the highest steady rate among the steps that kept up."""
    ok = [s for s in steps if s.kept_up]
    return max(ok, key=lambda s: s.sustained) if ok else None


@dataclass
class Idle:
    """What a network burns with no load: block production, votes, checkpoints."""

    phase: str
    cores: float
    blocks_per_s: float


IDLE: list[Idle] = []  # filled as phases run; the report prints them


def measure_idle(phase: str, net: Localnet, seconds: float = 10.0) -> Idle:
    """CPU of the network's processes (less this one) over ``seconds`` of no load."""
    procs = {k: v for k, v in process_table(net).items() if k != "load generator"}
    wait_quiet(list(procs.values()) + [os.getpid()])
    with net.rpc(0) as rpc:
        h0 = rpc.latest_height()
        c0, t0 = sum(cpu_seconds(p) for p in procs.values()), time.monotonic()
        time.sleep(seconds)
        cores = (sum(cpu_seconds(p) for p in procs.values()) - c0) / (time.monotonic() - t0)
        blocks = (rpc.latest_height() - h0) / (time.monotonic() - t0)
    idle = Idle(phase, round(cores, 3), round(blocks, 2))
    IDLE.append(idle)
    _say(f"  idle {phase}: {cores:.2f} cores, {blocks:.2f} blocks/s")
    return idle


def kvstore_phase(args: argparse.Namespace, tmp: Path, name: str = "kvstore"
                  ) -> list[StepResult]:
    """The ceiling: CometBFT's Go kvstore, same consensus config, same load shape, on a
    fresh network (``name`` tells a run before Tally's from one after)."""
    base = tmp / name
    specs = make_localnet(base, args.validators, free_port_block(10 * args.validators),
                          chain_id="kv-bench", vote_extensions_enable_height=1,
                          timeout_commit=args.timeout_commit,
                          timeout_propose=args.timeout_propose, log_level="error")
    _tune(specs, args)
    net = Localnet(specs, app=None, builtin_app=args.kv_app)
    try:
        net.start()
        with net.rpc(0) as rpc:
            wait_for_rpc(rpc, 60)
            wait_for_height(rpc, 3, timeout=60)
        live = list(range(args.validators))
        urls = {i: net.specs[i].rpc_url for i in live}
        n_streams = args.streams_per_node * len(live)
        attempt = itertools.count()

        def make(rate: float) -> list[Stream]:
            total = step_txs(args, rate)
            tag = f"kv{next(attempt)}"  # unique per attempt: a retry must not resend
            return build_streams(kv_txs(tag, total, n_streams), live, urls, "rpc", args.batch)

        idle = measure_idle(name, net)
        return ladder(name, args.kv_rates, make,
                      lambda rate, streams: run_step(name, "rpc", net, live, streams,
                                                     rate, idle_cores=idle.cores)[0])
    finally:
        net.stop()


def tally_phases(args: argparse.Namespace, tmp: Path) -> tuple[
        list[StepResult], list[StepResult], dict[str, Any] | None]:
    """Healthy ladder, optional profiled step, then the last validator stopped and the
    ladder again, all on one network (the senders' nonces carry over)."""
    base = tmp / "tally"
    net = start_tally(base, args)
    healthy: list[StepResult] = []
    degraded: list[StepResult] = []
    profile = None
    try:
        _say(f"  funding {args.senders} senders ...")
        senders = fund(net, base, args.suite, args.senders)

        def phase(name: str, live: list[int], rates: list[float]) -> list[StepResult]:
            idle = measure_idle(name, net)
            urls = {i: (api_url(net.specs[i]) + "/v1/txs/batch" if args.path == "api"
                        else net.specs[i].rpc_url) for i in live}
            n_streams = args.streams_per_node * len(live)

            def make(rate: float) -> list[Stream]:
                return build_streams(transfers(senders, step_txs(args, rate),
                                               n_streams), live, urls, args.path, args.batch)

            def run(rate: float, streams: list[Stream]) -> StepResult:
                res, log, committed = run_step(name, args.path, net, live, streams, rate,
                                               idle_cores=idle.cores)
                lost = {s for st in streams for b in st.batches
                        for h, s in zip(b.hashes, b.senders, strict=True) if h not in committed}
                if lost or log.rejected_senders:
                    resync(net, live, senders, lost | log.rejected_senders)
                return res

            return ladder(name, rates, make, run)

        live = list(range(args.validators))
        if "tally" in args.only:
            healthy = phase("tally", live, args.rates)
        if args.profile:
            profile = profile_step(args, net, senders, live, tmp)
        if "degraded" in args.only:
            net.stop([args.validators - 1])
            live = list(range(args.validators - 1))
            with net.rpc(0) as rpc:  # let the survivors settle into 3-of-4 rounds
                wait_for_height(rpc, rpc.latest_height() + 3, timeout=60)
            degraded = phase("degraded", live, args.degraded_rates or args.rates)
    finally:
        net.stop()
    return healthy, degraded, profile


def profile_step(args: argparse.Namespace, net: Localnet, senders: Senders,
                 live: list[int], tmp: Path) -> dict[str, Any] | None:
    """One extra step at ``--profile`` tx/s with py-spy on node 0's Tally process."""
    spy = py_spy()
    if spy is None:
        _say("  py-spy not found (pip install py-spy): no profile")
        return None
    urls = {i: (api_url(net.specs[i]) + "/v1/txs/batch" if args.path == "api"
                else net.specs[i].rpc_url) for i in live}
    rate = args.profile
    streams = build_streams(transfers(senders, step_txs(args, rate),
                                      args.streams_per_node * len(live)),
                            live, urls, args.path, args.batch)
    out = tmp / "py-spy-node0.txt"
    seconds = math.ceil(step_txs(args, rate) / rate) + 2
    sample_rate = 50
    pid = net.apps[0].pid if net.apps[0] else None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate",
            str(sample_rate), "--format", "raw", "--nonblocking", "-o", str(out)]
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:  # once the machine is quiet, not before the wait
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))

    try:
        res, _, _ = run_step("profiled", args.path, net, live, streams, rate, on_start=start)
        if procs:
            procs[0].wait(timeout=seconds + 30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    _say(_fmt_step(res))
    if not out.exists():
        _say("  py-spy wrote nothing (is ptrace allowed here?)")
        return None
    summary = summarize_profile(out, seconds, sample_rate)
    summary["step"] = asdict(res)
    summary["raw"] = str(out)
    return summary


# --- report -------------------------------------------------------------------------------


def _f(x: float, digits: int = 0) -> str:
    """A number for the Markdown tables; a dash for NaN (nothing was measured)."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def report(args: argparse.Namespace, info: dict[str, str], kv: list[StepResult],
           healthy: list[StepResult], degraded: list[StepResult],
           profile: dict[str, Any] | None, command: str,
           components: dict[str, float] | None = None,
           kv_after: list[StepResult] | None = None) -> str:
    """The Markdown the doc embeds: summary, every step, CPU shares, profile."""
    kv_after = kv_after or []
    b_kv, b_t, b_d, b_ka = best(kv), best(healthy), best(degraded), best(kv_after)
    per_step = f"{args.txs} txs" if args.txs else f"{args.step_seconds:g} s of sending"
    lines = [
        f"Run {datetime.now().strftime('%Y-%m-%d %H:%M')}: `{command}`",
        "",
        f"Machine: {info['nproc']} cores, {info['cpu']}; Python {info['python']}; "
        f"CometBFT {info['cometbft']}; code at {info.get('tree', '?')}; load average "
        f"before the run {info['loadavg_before']}.",
        f"Settings: {args.validators} validators, suite {args.suite}, path `{args.path}`, "
        f"timeout_commit {args.timeout_commit}, timeout_propose {args.timeout_propose}, "
        f"{args.senders} senders, batches of "
        f"{args.batch}, {args.streams_per_node} stream(s) per node, {per_step} per step, "
        f"mempool size {args.mempool_size}, "
        f"recheck {'on' if args.recheck else 'off'}, tx_index {args.tx_index}, "
        f"ceiling app `{args.kv_app}`.",
        "",
        "| figure | value |",
        "|---|---|",
    ]

    def row(name: str, value: str) -> None:
        lines.append(f"| {name} | {value} |")

    def floor(steps: list[StepResult]) -> str:
        """"≥ " when every step kept up: the ladder ended before the capacity did."""
        return "≥ " if steps and all(s.kept_up for s in steps) else ""

    if b_t:
        row("Tally sustained (best step that kept up)",
            f"**{floor(healthy)}{_f(b_t.sustained)} tx/s** (offered {_f(b_t.offered)}; "
            f"{_f(b_t.e2e)} tx/s end to end)")
        row("Tally commit latency at that load", f"p50 {_f(b_t.p50, 2)} s, "
            f"p99 {_f(b_t.p99, 2)} s (max {_f(b_t.max_latency, 2)} s)")
    elif healthy:
        row("Tally sustained", "no step kept up")
    low = [s for s in healthy if s.kept_up and s.p99 <= 2.0]
    if low:
        b_l = max(low, key=lambda s: s.sustained)
        row("Tally best step with p99 ≤ 2 s", f"{_f(b_l.sustained)} tx/s (offered "
            f"{_f(b_l.offered)}), p50 {_f(b_l.p50, 2)} s, p99 {_f(b_l.p99, 2)} s")
    if healthy:
        row("Tally peak steady rate (any step)", f"{_f(max(s.steady for s in healthy))} tx/s")
    for when, steps, b in (("", kv, b_kv), (" after Tally", kv_after, b_ka)):
        if b:
            row(f"kvstore ceiling{when} (best step that kept up)",
                f"**{floor(steps)}{_f(b.sustained)} tx/s** (offered {_f(b.offered)}), "
                f"p50 {_f(b.p50, 2)} s, p99 {_f(b.p99, 2)} s")
        if steps:
            row(f"kvstore{when} peak steady rate (any step)",
                f"{_f(max(s.steady for s in steps))} tx/s")
    ceiling = None
    if b_t and b_kv and b_ka:
        ceiling = (b_kv.sustained + b_ka.sustained) / 2
        row("Tally / kvstore (sustained)",
            f"**{100 * b_t.sustained / ceiling:.0f} %** of the mean of the kvstore's "
            f"runs before and after Tally's ({100 * b_t.sustained / b_kv.sustained:.0f} % "
            f"of the one before, {100 * b_t.sustained / b_ka.sustained:.0f} % of the one "
            f"after; the kvstore moved {100 * (b_ka.sustained / b_kv.sustained - 1):+.0f} % "
            "between them)")
    elif b_t and b_kv:
        ceiling = b_kv.sustained
        row("Tally / kvstore (sustained)",
            f"**{100 * b_t.sustained / b_kv.sustained:.0f} %**")
    if low and ceiling:  # the stricter reading: only Tally's steps that also met the p99
        row("Tally with p99 ≤ 2 s / kvstore",
            f"{100 * max(s.sustained for s in low) / ceiling:.0f} %")
    if b_d:
        row(f"Degraded ({args.validators - 1} of {args.validators}) sustained",
            f"{floor(degraded)}{_f(b_d.sustained)} tx/s (offered {_f(b_d.offered)}), "
            f"p50 {_f(b_d.p50, 2)} s, "
            f"p99 {_f(b_d.p99, 2)} s")
    if b_d and b_t:
        row("Degraded / healthy", f"**{100 * b_d.sustained / b_t.sustained:.0f} %**")
    if any(floor(steps) for steps in (kv, healthy, degraded, kv_after)):
        lines += ["", "≥: every step of that ladder kept up, so its capacity is above the "
                  "top step; a ratio with it in the numerator is a lower bound, in the "
                  "denominator an upper bound. Extend the ladder (`--rates`, `--kv-rates`)."]
    if IDLE:
        lines += ["", "Idle networks (no load; consensus, empty blocks, checkpoints): " + "; ".join(
            f"{i.phase} {i.cores:.2f} cores at {i.blocks_per_s:.2f} blocks/s" for i in IDLE)
            + "."]
    lines += ["", "Every step (rates in tx/s, latencies in s; \"kept up\": steady ≥ 90 % "
              "and e2e ≥ 80 % of offered, every accepted tx committed, drain ≤ 5 s; \"lag\": the worst delay of "
              "a batch behind its schedule, i.e. the API answering slower than the schedule; "
              "\"other jobs\": cores used by processes outside this benchmark just before "
              "/ during the step; \"CPU ms/tx\": CPU time of all this benchmark's processes "
              "(nodes, apps, load generator) per committed transaction, idle block "
              "production included; in brackets without it, i.e. less what the same "
              "network burns with no load; \"late\": heights decided after round 0, "
              "i.e. whose first proposer was down or timed out):",
              "",
              "| phase | offered | sent/s | steady | e2e | p50 | p90 | p99 | max | blocks × "
              "txs | interval s | late | drain s | lag s | refused | CPU ms/tx (marginal) | "
              "other jobs, cores | kept up |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in [*kv, *healthy, *degraded, *kv_after]:
        lines.append(
            f"| {r.phase} | {_f(r.offered)} | {_f(r.send_rate)} | {_f(r.steady)} | "
            f"{_f(r.e2e)} | {_f(r.p50, 2)} | {_f(r.p90, 2)} | {_f(r.p99, 2)} | "
            f"{_f(r.max_latency, 2)} | {r.blocks} × {_f(r.txs_per_block)} (max {r.max_block}) | "
            f"{_f(r.block_interval, 2)} | {r.late_heights} | {_f(r.drain, 2)} | "
            f"{_f(r.max_lag, 2)} | "
            f"{r.rejected} | {_f(r.cpu_ms_per_tx, 2)} ({_f(r.marginal_ms_per_tx, 2)}) | "
            f"{r.others_before:.2f} / "
            f"{r.cpu.get('other processes on the machine', 0):.2f} | "
            f"{'yes' if r.kept_up else 'no'}{' (retry)' if r.retried else ''} |")
    shown = [s for s in (b_kv, b_t, b_d, b_ka) if s]
    if shown:
        roles = sorted({k for s in shown for k in s.cpu},
                       key=lambda k: (k.startswith("other"), k.split()[0] != "load", k))
        lines += ["", "CPU per process during the sustained step (share of one core, "
                  "averaged over the step's wall time, drain included):", "",
                  "| process | " + " | ".join(f"{s.phase} @ {_f(s.offered)}" for s in shown)
                  + " |", "|---|" + "---|" * len(shown)]
        for role in roles:
            lines.append(f"| {role} | " + " | ".join(
                _f(s.cpu[role], 2) if role in s.cpu else "–" for s in shown) + " |")
        lines.append("| **total of this benchmark's processes** | " + " | ".join(
            _f(sum(v for k, v in s.cpu.items() if "send phase" not in k
                   and not k.startswith("other")), 2)
            for s in shown) + " |")
    if components:
        lines += ["", "Per-transaction cost of each step in one Tally process, no network "
                  "(µs per transfer; every validator pays the peer rows, the node whose API "
                  "took the transfer pays the API rows instead of the first peer row):", "",
                  "| step | µs/tx |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in components.items()]
    if profile:
        st = profile["step"]
        lines += ["", f"py-spy on node 0's Tally process during a {_f(st['offered'])} tx/s "
                  f"step ({profile['samples']} samples, {profile['busy_threads']} threads "
                  f"busy on average; steady {_f(st['steady'])} tx/s):", "",
                  "| self % | function | | inclusive % | Tally function |",
                  "|---|---|---|---|---|"]
        for left, right in itertools.zip_longest(profile["self"], profile["inclusive"]):
            fs, ps = left or ("", "")
            fi, pi = right or ("", "")
            lines.append(f"| {ps} | {f'`{fs}`' if fs else ''} | | {pi} | "
                         f"{f'`{fi}`' if fi else ''} |")
    return "\n".join(lines) + "\n"


def write_doc(path: Path, section: str) -> None:
    """Replace the generated section of ``path`` (between the markers), keeping the
    hand-written analysis around it; create the file if it does not exist."""
    block = f"{BEGIN}\n{section}{END}\n"
    if path.exists() and BEGIN in (text := path.read_text()) and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        tail = tail.lstrip("\n")
        path.write_text(head + block + ("\n" + tail if tail else ""))
    else:
        path.write_text("# Network performance\n\n" + block)


# --- main ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM -> KeyboardInterrupt, so ``finally`` stops every process we started."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--only", nargs="+", default=["kvstore", "tally", "degraded"],
                    choices=["kvstore", "tally", "degraded"])
    ap.add_argument("--path", default="api", choices=["api", "rpc"],
                    help="api: POST /v1/txs/batch on each Tally node (the user path); "
                         "rpc: CometBFT broadcast_tx_async (CheckTx does the admission)")
    ap.add_argument("--rates", type=float, nargs="+",
                    default=[250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000],
                    help="Tally's offered tx/s ladder")
    ap.add_argument("--rate", type=float, help="one offered rate for Tally (and degraded)")
    ap.add_argument("--degraded-rates", type=float, nargs="+",
                    help="default: the same as --rates")
    ap.add_argument("--kv-rates", type=float, nargs="+",
                    default=[1000, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000])
    ap.add_argument("--txs", type=int,
                    help="transactions per step (default: rate x --step-seconds)")
    ap.add_argument("--step-seconds", type=float, default=12.0, help="send time per step")
    ap.add_argument("--senders", type=int, default=400)
    ap.add_argument("--batch", type=int, default=250, help="transactions per HTTP request")
    ap.add_argument("--streams-per-node", type=int, default=1,
                    help="connections per node (each sends its batches in order)")
    ap.add_argument("--timeout-commit", default="300ms",
                    help="consensus.timeout_commit of both networks (default: 300ms, what `tally net init` writes)")
    ap.add_argument("--timeout-propose", default=TIMEOUT_PROPOSE_ONE_MACHINE,
                    help="consensus.timeout_propose of both networks (default: "
                         f"{TIMEOUT_PROPOSE_ONE_MACHINE}, what `tally net init` writes for "
                         "one machine); every height of the stopped validator waits it out")
    ap.add_argument("--mempool-size", type=int, default=100_000)
    ap.add_argument("--recheck", action="store_true",
                    help="mempool.recheck = true (CometBFT's and `tally net`'s default; off "
                         "here: in v0.38 the recheck holds up the next height, see "
                         "docs/network-performance.md)")
    ap.add_argument("--tx-index", default="null", choices=["null", "kv"])
    ap.add_argument("--kv-app", default="kvstore", choices=["kvstore", "persistent_kvstore"])
    ap.add_argument("--no-kv-after", dest="kv_after", action="store_false",
                    help="skip the kvstore's second ladder after Tally's (the ratio is "
                         "then to the one before only; see 'The ceiling, twice' in "
                         "docs/network-performance.md)")
    ap.add_argument("--profile", type=int, default=0, metavar="RATE",
                    help="after the healthy ladder, one step at RATE with py-spy on node 0")
    ap.add_argument("--components", type=int, default=3000, metavar="N",
                    help="first time each ABCI call on N transfers in one process (0: skip)")
    ap.add_argument("--quiet", type=float, default=0.3, metavar="CORES",
                    help="before each step, wait until other jobs use less than this")
    ap.add_argument("--quiet-wait", type=float, default=120.0, metavar="S",
                    help="... but at most this long (0: never wait)")
    ap.add_argument("--retries", type=int, default=1,
                    help="re-run a failed step once if other jobs took > 0.5 cores during it")
    ap.add_argument("--refine", type=int, default=2,
                    help="bisection steps between the best passing and the failing rate")
    ap.add_argument("--write", type=Path, metavar="FILE",
                    help="write the report into this Markdown file, between its "
                         "bench_network:begin/end markers (text around them is kept; a file "
                         "without them is replaced), e.g. "
                         "bench/results/network-YYYY-MM-DD-run-X.md (see bench/results/README.md)")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the node homes")
    args = ap.parse_args()
    if args.rate:
        args.rates = [args.rate]
    QUIET.update(threshold=args.quiet, max_wait=args.quiet_wait)
    LADDER.update(retries=args.retries, refine=args.refine)
    command = "python bench/bench_network.py " + " ".join(sys.argv[1:])

    info = machine()
    _say(f"machine: {info}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-net-"))
    kv: list[StepResult] = []
    kv_after: list[StepResult] = []
    healthy: list[StepResult] = []
    degraded: list[StepResult] = []
    profile = None
    components: dict[str, float] = {}
    try:
        with _terminate_as_interrupt():
            if args.components:
                wait_quiet([])
                components = component_costs(args.suite, args.components,
                                             min(args.senders, args.components))
                for k, v in components.items():
                    _say(f"  {k:64} {v:7.1f} µs/tx")
            if "kvstore" in args.only:
                _say(f"kvstore ({args.kv_app}), {args.validators} validators")
                kv = kvstore_phase(args, tmp)
            if {"tally", "degraded"} & set(args.only) or args.profile:
                _say(f"tally, {args.validators} validators, path {args.path}")
                healthy, degraded, profile = tally_phases(args, tmp)
            if "kvstore" in args.only and args.kv_after and {"tally", "degraded"} & set(args.only):
                _say(f"kvstore again ({args.kv_app}), {args.validators} validators")
                kv_after = kvstore_phase(args, tmp, "kv-after")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _say(f"node homes kept in {tmp}")
    section = report(args, info, kv, healthy, degraded, profile, command, components,
                     kv_after)
    print(section)
    if args.write:
        write_doc(args.write, section)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
            "kvstore": [asdict(s) for s in kv], "tally": [asdict(s) for s in healthy],
            "kvstore_after": [asdict(s) for s in kv_after],
            "degraded": [asdict(s) for s in degraded], "profile": profile,
            "components": components, "idle": [asdict(i) for i in IDLE]}, indent=2))


if __name__ == "__main__":
    main()
