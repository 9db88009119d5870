"""Shared helpers of the network fault tests (test_network_faults, test_network_partition).

Why a module of its own: both test files drive real networks (CometBFT + Tally
processes) and need the same three things, which must not drift apart between them:

* an **agreement check** that compares, at every height, what every node says: its
  Tally block (hash, state root, log root, transaction ids, from ``GET
  /v1/blocks/{h}``), CometBFT's block id, and CometBFT's app hash (which must be the
  Tally block hash: Tally's FinalizeBlock returns the block hash as the app hash);
* a **load generator** that sends signed transfers through the SDK to chosen nodes'
  APIs and records every acknowledged transaction (a receipt came back = the block
  holding it was committed), so a test can check none of them is ever lost;
* an **audit** of a node's SQLite ledger as the node serves it, with the cosignatures
  collected over the network merged into each checkpoint.

Nothing here starts or stops processes: the tests own their processes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tally import tx as txmod
from tally.audit import AuditReport, audit_ledger
from tally.genesis import Genesis
from tally.keys import NamedKey
from tally.net.cometbft.binary import CometBFTNotFound, find_cometbft
from tally.net.cometbft.rpc import CometRPC, RPCError
from tally.sdk import TallyClient

#: Expiry far beyond any height a test reaches (it is an absolute height; the genesis
#: allows up to 100,000 past the current one).
EXPIRY = 50_000


def require_cometbft() -> None:
    """Skip the calling test module without cometbft, except in CI: there
    TALLY_REQUIRE_COMETBFT is set, and a missing binary must fail, never skip."""
    try:
        find_cometbft()
    except CometBFTNotFound as e:  # pragma: no cover - depends on the machine
        if os.environ.get("TALLY_REQUIRE_COMETBFT"):
            raise
        pytest.skip(f"{e}", allow_module_level=True)


def say(name: str, value: object) -> None:
    """Print one measurement (``pytest -s`` shows them; docs/network.md quotes them)."""
    print(f"[measure] {name}: {value}", flush=True)


# --- simple reads -------------------------------------------------------------------------


def tally_height(api_url: str, timeout: float = 3.0) -> int | None:
    """The node's committed Tally height, or None if its API does not answer."""
    try:
        return int(httpx.get(f"{api_url}/v1/status", timeout=timeout).json()["height"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def comet_height(rpc_url: str, timeout: float = 3.0) -> int | None:
    """CometBFT's latest committed height, or None if its RPC does not answer."""
    try:
        with CometRPC(rpc_url, timeout=timeout) as rpc:
            return rpc.latest_height()
    except (httpx.HTTPError, RPCError, ValueError, KeyError):
        return None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               poll: float = 0.1) -> float:
    """Poll ``predicate`` until it holds; returns the seconds it took."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
    return time.monotonic() - began


def wait_tally_heights(api_urls: Sequence[str], height: int, timeout: float) -> float:
    """Until every given node's Tally height is >= ``height``; returns the seconds."""
    def done() -> bool:
        return all((tally_height(u) or 0) >= height for u in api_urls)
    return wait_until(done, timeout, f"Tally height {height} on {list(api_urls)}")


def wait_all_heights(api_urls: Sequence[str], rpc_urls: Sequence[str], nodes: Iterable[int],
                     height: int, timeout: float = 90.0) -> float:
    """Until the given nodes' Tally and CometBFT heights are all >= ``height`` (before a
    final agreement check, so that every acknowledged block is on every node)."""
    idx = list(nodes)

    def done() -> bool:
        return all((tally_height(api_urls[i]) or 0) >= height
                   and (comet_height(rpc_urls[i]) or 0) >= height for i in idx)
    return wait_until(done, timeout, f"height {height} on nodes {idx}")


# --- agreement --------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockFacts:
    """What one node says about one height; equal on every honest node."""

    tally_hash: str
    state_root: str
    log_root: str
    txs: tuple[str, ...]
    comet_block_id: str
    app_hash: str  # hex of CometRPC.app_hash_at(h)


@dataclass
class Agreement:
    """The one history every checked node agreed on, heights lo..hi."""

    lo: int
    hi: int
    blocks: dict[int, BlockFacts]
    tx_heights: dict[str, int] = field(default_factory=dict)


def _batch(rpc: CometRPC, calls: list[tuple[str, dict[str, str]]]) -> list[object]:
    """call_batch, except that CometBFT answers a one-call batch with a bare object."""
    if len(calls) == 1:
        try:
            return [rpc.call(*calls[0])]
        except RPCError as exc:
            return [exc]
    return rpc.call_batch(calls)


def node_view(api_url: str, rpc_url: str, lo: int, hi: int) -> dict[int, BlockFacts]:
    """One node's view of heights lo..hi, read through its Tally API and CometBFT RPC.

    CometBFT data comes in JSON-RPC batches (block_results for the app hash after each
    height; blockchain for block ids and headers, 20 per call), so checking hundreds of
    heights on four nodes takes seconds, not minutes.
    """
    heights = list(range(lo, hi + 1))
    app_hashes: dict[int, str] = {}
    block_ids: dict[int, str] = {}
    header_app_hash: dict[int, str] = {}
    with CometRPC(rpc_url, timeout=30) as rpc:
        for start in range(0, len(heights), 400):
            chunk = heights[start:start + 400]
            results = _batch(rpc, [("block_results", {"height": str(h)}) for h in chunk])
            for h, r in zip(chunk, results, strict=True):
                if isinstance(r, RPCError):
                    raise r
                app_hashes[h] = base64.b64decode(r["app_hash"]).hex()
        calls = [("blockchain", {"minHeight": str(h), "maxHeight": str(min(h + 19, hi))})
                 for h in range(lo, hi + 1, 20)]
        for start in range(0, len(calls), 50):
            for r in _batch(rpc, calls[start:start + 50]):
                if isinstance(r, RPCError):
                    raise r
                for meta in r["block_metas"]:
                    h = int(meta["header"]["height"])
                    block_ids[h] = meta["block_id"]["hash"].lower()
                    header_app_hash[h] = meta["header"]["app_hash"].lower()
    out: dict[int, BlockFacts] = {}
    with httpx.Client(base_url=api_url, timeout=30) as api:
        for h in heights:
            resp = api.get(f"/v1/blocks/{h}")
            resp.raise_for_status()
            b = resp.json()
            out[h] = BlockFacts(b["hash"], b["header"]["state"], b["header"]["log_root"],
                                tuple(b["txs"]), block_ids[h], app_hashes[h])
    # CometBFT's own chaining: block h+1's header commits to the app hash after h.
    for h in heights:
        if h + 1 in header_app_hash:
            assert header_app_hash[h + 1] == app_hashes[h], \
                f"{rpc_url}: header {h + 1} app hash differs from FinalizeBlock's at {h}"
    return out


def check_agreement(api_urls: Sequence[str], rpc_urls: Sequence[str], nodes: Iterable[int],
                    lo: int = 1, hi: int | None = None) -> Agreement:
    """Assert that ``nodes`` agree on every height lo..hi (default: up to the lowest
    height all of them have committed), and that each node's CometBFT app hash is its
    Tally block hash at every height. Returns the agreed history."""
    idx = list(nodes)
    if hi is None:
        tops = []
        for i in idx:
            t, c = tally_height(api_urls[i]), comet_height(rpc_urls[i])
            assert t is not None and c is not None, f"node {i} does not answer"
            tops.append(min(t, c))
        hi = min(tops)
    assert hi >= lo, f"nothing to compare: heights {lo}..{hi}"
    views = {i: node_view(api_urls[i], rpc_urls[i], lo, hi) for i in idx}
    first = idx[0]
    for h in range(lo, hi + 1):
        for i in idx:
            facts = views[i][h]
            assert facts.app_hash == facts.tally_hash, (
                f"node {i} height {h}: CometBFT app hash {facts.app_hash} is not the Tally "
                f"block hash {facts.tally_hash}")
            assert facts == views[first][h], (
                f"fork at height {h}: node {i} says {facts}, node {first} says "
                f"{views[first][h]}")
    agreed = Agreement(lo, hi, views[first])
    for h, facts in agreed.blocks.items():
        for tx_id in facts.txs:
            agreed.tx_heights[tx_id] = h
    return agreed


def assert_acknowledged_present(agreement: Agreement, acks: Iterable[Ack]) -> int:
    """Every acknowledged transaction is in the agreed history, at its receipt's height.
    Returns how many were checked."""
    n = 0
    for ack in acks:
        assert ack.height <= agreement.hi, f"{ack} is above the checked height {agreement.hi}"
        assert agreement.tx_heights.get(ack.tx) == ack.height, \
            f"acknowledged transaction lost or moved: {ack}"
        n += 1
    return n


# --- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """An acknowledged transaction: the node at ``node`` returned its receipt."""

    tx: str
    height: int
    node: int
    code: str
    at: float  # time.monotonic() when the receipt came back
    sent: float = 0.0  # time.monotonic() when the submission began


class TxLoad:
    """Threads that keep sending transfers through the SDK and record each receipt.

    Each sender signs its own transfers (quantity 1 of ``asset`` to ``recipient``),
    sends each to the next node of ``targets`` (changeable while running), and waits for
    the receipt (``TallyClient.submit_and_wait``: the node answers once the block
    holding the transaction is committed). A failure of any kind (node down, chain
    halted past the timeout) is not an acknowledgement: the sender re-reads its nonce
    from a live node and carries on.
    """

    def __init__(self, api_urls: Sequence[str], chain_id: str, senders: Sequence[NamedKey],
                 recipient: str, asset: str, targets: Iterable[int], *,
                 thread_init: Callable[[], None] | None = None, pause: float = 0.0) -> None:
        self.api_urls = list(api_urls)
        self.chain_id = chain_id
        self.senders = list(senders)
        self.recipient = recipient
        self.asset = asset
        self._targets = list(targets)
        self.thread_init = thread_init
        self.pause = pause
        self.acks: list[Ack] = []
        self.failures = 0
        #: Why submissions failed: "ExceptionType: code or message" -> count.
        self.failure_kinds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def targets(self) -> list[int]:
        with self._lock:
            return list(self._targets)

    def set_targets(self, targets: Iterable[int]) -> None:
        with self._lock:
            self._targets = list(targets)

    def start(self) -> TxLoad:
        for n, key in enumerate(self.senders):
            t = threading.Thread(target=self._run, args=(n, key), name=f"load-{key.name}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 90.0) -> None:
        """Stop sending; waits for submissions in flight (they may still be acknowledged)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "load threads did not stop"

    def acked(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def _run(self, n: int, key: NamedKey) -> None:
        if self.thread_init is not None:
            self.thread_init()
        clients: dict[int, TallyClient] = {}
        nonce: int | None = None
        turn = n
        try:
            while not self._stop.is_set():
                targets = self.targets
                if not targets:
                    time.sleep(0.1)
                    continue
                node = targets[turn % len(targets)]
                turn += 1
                client = clients.get(node)
                if client is None:
                    client = clients[node] = TallyClient(self.api_urls[node], timeout=60)
                try:
                    if nonce is None:
                        nonce = client.next_nonce(key.address)
                    raw = txmod.sign(key.key, chain=self.chain_id, nonce=nonce, expiry=EXPIRY,
                                     kind="custody.transfer",
                                     payload={"asset": self.asset, "to": self.recipient,
                                              "quantity": 1})
                    sent = time.monotonic()
                    receipt = client.submit_and_wait(raw)
                    with self._lock:
                        self.acks.append(Ack(receipt.tx, receipt.height, node, receipt.code,
                                             time.monotonic(), sent))
                    nonce += 1
                except Exception as exc:  # not acknowledged: whatever happened, start over
                    why = f"{type(exc).__name__}: {getattr(exc, 'code', None) or str(exc)[:60]}"
                    with self._lock:
                        self.failures += 1
                        self.failure_kinds[why] = self.failure_kinds.get(why, 0) + 1
                    nonce = None
                    self._stop.wait(0.3)
                if self.pause:
                    self._stop.wait(self.pause)
        finally:
            for c in clients.values():
                c.close()


# --- audit ------------------------------------------------------------------------------

def copy_db(db: Path, dest: Path) -> Path:
    """A consistent copy of a (possibly live, WAL-mode) SQLite ledger."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as src, \
            contextlib.closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)
    return dest


def audit_copy(db: Path, genesis: Genesis, workdir: Path) -> AuditReport:
    """``tally audit`` on a consistent copy of a (possibly live) node's ledger."""
    if workdir.exists():
        shutil.rmtree(workdir)
    return audit_ledger(copy_db(db, workdir / "chain.sqlite"), genesis)
