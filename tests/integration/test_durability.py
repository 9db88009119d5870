"""Durability of the embedded (solo) node under SIGKILL, with real node processes.

The promise under test (docs/durability.md): a receipt is only returned once the block
holding the transaction is durable in SQLite (WAL, ``synchronous=FULL``), so killing
the node at any moment loses no acknowledged transaction, never leaves part of a
block, and the restarted node carries on from exactly where it stopped.

Every test starts ``python -m tally node run`` as a subprocess on a free port, drives it
over HTTP with the SDK, kills it with SIGKILL (no shutdown hook runs) and restarts it on
the same home. Nothing is mocked.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tally import tx as txmod
from tally.audit import audit_ledger
from tally.home import Home, init_home
from tally.keys import NamedKey
from tally.sdk import Event, NodeUnreachable, TallyClient, TallyError, TxRejected

ASSET = "BOND-DUR"
SUPPLY = 1_000_000_000
SENDERS = [f"sender{i}" for i in range(6)]
#: Accounts of the test homes: an issuer and senders that pass units round a ring.
ACCOUNTS: dict[str, list[str]] = {
    "admin": ["admin"],
    "issuer": ["issuer"],
    **{name: [] for name in SENDERS},
}
READY_TIMEOUT = 60.0


# --- node processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeProcess:
    """``tally node run`` on one home, started and killed as a user's supervisor would."""

    def __init__(self, home: Home, log_dir: Path) -> None:
        self.home = home
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start the node and wait until it serves /v1/status; returns the seconds taken."""
        assert self.proc is None, "the node is already running"
        self.port = free_port()
        self.starts += 1
        log = open(self.log_dir / f"node-{self.starts}.log", "wb")  # noqa: SIM115
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tally",
                "node",
                "run",
                "--home",
                str(self.home.path),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = began + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise AssertionError(f"the node exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/v1/status", timeout=1.0).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"the node did not serve within {READY_TIMEOUT} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no handler, no flush, no clean close of the database."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.returncode == -signal.SIGKILL
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_dir / f"node-{self.starts}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


@dataclass
class Chain:
    """A home with its running node, the issued asset and the sender keys."""

    home: Home
    node: NodeProcess
    keys: dict[str, NamedKey]
    chain_id: str

    def client(self) -> TallyClient:
        return TallyClient(self.node.url, timeout=30.0)

    def addr(self, name: str) -> str:
        return self.keys[name].address

    def sign_transfer(self, sender: str, nonce: int, expiry: int) -> bytes:
        """A transfer of one unit to the next sender in the ring."""
        to = SENDERS[(SENDERS.index(sender) + 1) % len(SENDERS)]
        return txmod.sign(
            self.keys[sender].key,
            chain=self.chain_id,
            nonce=nonce,
            expiry=expiry,
            kind="custody.transfer",
            payload={"asset": ASSET, "to": self.addr(to), "quantity": 1},
        )


@pytest.fixture
def make_chain(tmp_path: Path) -> Iterator[Any]:
    """Builds a home, starts its node and funds the senders; kills every node at the end."""
    nodes: list[NodeProcess] = []

    def make(suite_name: str) -> Chain:
        home = init_home(
            tmp_path / f"home-{suite_name}",
            suite_name=suite_name,
            chain_id=f"dur-{suite_name}",
            accounts=ACCOUNTS,
        )
        node = NodeProcess(home, tmp_path)
        nodes.append(node)
        node.start()
        keys = {name: home.key(name) for name in ACCOUNTS}
        chain = Chain(home, node, keys, home.genesis().chain_id)
        with chain.client() as client:
            issuer = client.account(keys["issuer"])
            issuer.issue(ASSET, asset_class="security", name="Durability bond", quantity=SUPPLY)
            for name in SENDERS:
                issuer.transfer(ASSET, to=chain.addr(name), quantity=SUPPLY // 100)
        return chain

    yield make
    for node in nodes:
        node.kill()


# --- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    tx: str
    sender: str
    nonce: int
    raw: bytes = b""


@dataclass(frozen=True)
class Ack:
    tx: str
    sender: str
    nonce: int
    height: int
    position: int
    code: str


@dataclass
class Load:
    """Client threads, one per sender, each sending transfers one after another and
    waiting for each receipt (the acknowledgement), until the node goes away."""

    chain: Chain
    start_nonces: dict[str, int]
    expiry: int
    acks: list[Ack] = field(default_factory=list)
    in_doubt: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for name in SENDERS:
            t = threading.Thread(target=self._run, args=(name,), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, sender: str) -> None:
        nonce = self.start_nonces[sender]
        with self.chain.client() as client:
            while True:
                raw = self.chain.sign_transfer(sender, nonce, self.expiry)
                tx_id = txmod.decode(raw, max_size=1 << 20).id_hex
                try:
                    receipt = client.submit_and_wait(raw)
                except NodeUnreachable:
                    # The node died with this request open: committed or not, nobody knows.
                    with self.lock:
                        self.in_doubt.append(Sent(tx_id, sender, nonce, raw))
                    return
                except TallyError as exc:
                    with self.lock:
                        self.errors.append(f"{sender} nonce {nonce}: {exc.code}: {exc}")
                    return
                with self.lock:
                    self.acks.append(
                        Ack(
                            receipt.tx,
                            sender,
                            nonce,
                            receipt.height,
                            receipt.position,
                            receipt.code,
                        )
                    )
                nonce += 1

    def join(self) -> None:
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a client thread did not notice the node's death"


# --- checks -----------------------------------------------------------------------------


def receipt_or_none(client: TallyClient, tx_id: str) -> Any:
    try:
        return client.receipt(tx_id)
    except TallyError as exc:
        assert exc.code == "NOT_FOUND", exc
        return None


def check_supply(client: TallyClient) -> None:
    """Units are conserved: every holder's units add up to the asset's supply."""
    asset = client.asset(ASSET)
    assert asset.supply == SUPPLY
    assert sum(h.q for h in asset.holders.values()) == SUPPLY, asset.holders


def check_audit(chain: Chain) -> None:
    """Every root, hash link and checkpoint signature recomputes from the stored rows."""
    report = audit_ledger(chain.home.data_dir / "chain.sqlite", chain.home.genesis())
    assert report.problems == [], report.problems


def next_nonces(client: TallyClient, chain: Chain) -> dict[str, int]:
    return {name: client.next_nonce(chain.addr(name)) for name in SENDERS}


# --- tests ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("suite_name", ["intl", "gm"])
def test_sigkill_under_load_loses_no_acknowledged_transaction(
    make_chain: Any, suite_name: str
) -> None:
    """Kill the node three times while clients are sending; after each restart every
    acknowledged transaction is there with the receipt the client got, units are
    conserved, the audit passes and every sender carries on from its next nonce."""
    chain: Chain = make_chain(suite_name)
    # Kill at different moments: after many acks, after a few, and a short time after start.
    kill_after_acks = [300, 60, 1] if suite_name == "intl" else [80, 1]
    all_acks: list[Ack] = []
    seen_blocks: dict[int, str] = {}
    with chain.client() as client:
        nonces = next_nonces(client, chain)
        expiry = client.status().height + 50_000
    committed_count = dict(nonces)  # committed transfers per sender, before the load

    for threshold in kill_after_acks:
        load = Load(chain, dict(nonces), expiry)
        load.start()
        deadline = time.monotonic() + 60
        with chain.client() as watcher:
            while len(load.acks) < threshold and not load.errors:
                assert time.monotonic() < deadline, f"only {len(load.acks)} acks in 60 s"
                status = watcher.status()  # blocks the clients have seen exist
                seen_blocks[status.height] = status.block_hash
                time.sleep(0.02)
        if threshold == 1:
            time.sleep(0.05)  # land the kill somewhere in the middle of block writing
        chain.node.kill()
        load.join()
        assert load.errors == [], load.errors
        assert len(load.acks) >= threshold
        all_acks.extend(load.acks)
        # The files as the killed process left them already hold a consistent ledger:
        # the audit reads them (WAL included) before any recovery by a restart.
        check_audit(chain)

        chain.node.start()
        with chain.client() as client:
            status = client.status()
            assert status.height >= max(a.height for a in all_acks)
            assert status.mempool == 0
            # Every acknowledged transaction kept the receipt the client was given.
            for ack in all_acks:
                r = client.receipt(ack.tx)
                assert (r.height, r.position, r.code) == (ack.height, ack.position, ack.code)
                assert r.code == "OK"
            # Blocks that were observed before the kill are unchanged.
            for height, block_hash in seen_blocks.items():
                if height:
                    assert client.block(height).hash == block_hash
            # Nonce continuity: the next nonce is the count of committed transactions.
            in_doubt_committed = [
                s for s in load.in_doubt if receipt_or_none(client, s.tx) is not None
            ]
            for sent in in_doubt_committed:
                committed_count[sent.sender] += 1
            for ack in load.acks:
                committed_count[ack.sender] += 1
            assert next_nonces(client, chain) == committed_count
            # A client retries what it never got a receipt for by sending the same bytes:
            # a committed one is refused as a replay, a lost one is committed now.
            for sent in load.in_doubt:
                if sent in in_doubt_committed:
                    with pytest.raises(TxRejected) as refused:
                        client.submit_and_wait(sent.raw)
                    assert refused.value.code == "TX_NONCE_REPLAYED"
                else:
                    retried = client.submit_and_wait(sent.raw)
                    assert retried.ok
                    committed_count[sent.sender] += 1
            nonces = next_nonces(client, chain)
            assert nonces == committed_count
            print(
                f"{suite_name}: killed after {len(load.acks)} acks; {len(load.in_doubt)} "
                f"in doubt, {len(in_doubt_committed)} of them committed"
            )
            check_supply(client)
        check_audit(chain)

    # The node accepts new work after the last restart: one more transfer per sender.
    with chain.client() as client:
        for name in SENDERS:
            receipt = client.submit_and_wait(chain.sign_transfer(name, nonces[name], expiry))
            assert receipt.ok
            assert client.next_nonce(chain.addr(name)) == nonces[name] + 1
        check_supply(client)
    chain.node.stop()
    cli = subprocess.run(
        [sys.executable, "-m", "tally", "audit", "--home", str(chain.home.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "ledger intact" in cli.stdout


@pytest.mark.parametrize("suite_name", ["intl", "gm"])
def test_sigkill_when_idle_restarts_at_the_same_block(make_chain: Any, suite_name: str) -> None:
    """An idle node killed and restarted answers with the same height, block hash, log
    size and state root, and its state proofs verify against its signed checkpoints."""
    chain: Chain = make_chain(suite_name)
    with chain.client() as client:
        before = client.status()
        held_before = client.verified_holding(ASSET, chain.addr(SENDERS[0]))
    chain.node.kill()
    chain.node.start()
    with chain.client() as client:
        after = client.status()
        for key in ("height", "block_hash", "log_size", "state_root", "genesis_hash"):
            assert getattr(after, key) == getattr(before, key), key
        # The lazily reloaded trie serves proofs that check against the signed checkpoint.
        held_after = client.verified_holding(ASSET, chain.addr(SENDERS[0]))
        assert (held_after.held, held_after.height) == (held_before.held, held_before.height)
        # ... and the next block builds on the restored state.
        nonce = client.next_nonce(chain.addr(SENDERS[0]))
        receipt = client.submit_and_wait(
            chain.sign_transfer(SENDERS[0], nonce, before.height + 1000))
        assert receipt.ok
        assert receipt.height == before.height + 1
        assert client.block(receipt.height).header.prev == before.block_hash
        check_supply(client)
    check_audit(chain)


@pytest.mark.slow
def test_sigkill_mid_block_never_leaves_part_of_a_block(make_chain: Any) -> None:
    """Stream batches without waiting for receipts and kill the node while it is making
    blocks of them. Unacknowledged transactions may be lost, but whatever is committed is
    whole: each sender's committed transactions are exactly a prefix of its nonces, every
    committed transaction has its event in the log and nothing else does, the blocks link
    up and the audit passes."""
    chain = make_chain("intl")
    chunks, per_chunk = 6, 40  # per sender: 6 batches of 40 transfers each, in nonce order
    outcomes: list[tuple[int, int, int]] = []
    # Kill moments, as events of the stream already committed (seen through the API):
    # none ("nothing written yet"), one block's worth and about half ("some blocks
    # written, the next being written, more waiting"). Whatever a slower or faster
    # machine makes of them, the kill lands while blocks of the stream are being made.
    for kill_at in (0, 1, chunks * per_chunk * len(SENDERS) // 2):
        with chain.client() as client:
            status = client.status()
            start_height, start_log = status.height, status.log_size
            nonces = next_nonces(client, chain)
            expiry = status.height + 50_000
        raws: dict[str, Sent] = {}
        batches: list[list[bytes]] = []
        for c in range(chunks):
            batch = []
            for k in range(c * per_chunk, (c + 1) * per_chunk):
                for name in SENDERS:
                    raw = chain.sign_transfer(name, nonces[name] + k, expiry)
                    tx_id = txmod.decode(raw, max_size=1 << 20).id_hex
                    raws[tx_id] = Sent(tx_id, name, nonces[name] + k)
                    batch.append(raw)
            batches.append(batch)
        first_admitted = threading.Event()
        refused: list[Any] = []
        crashed: list[BaseException] = []

        def submit_all(
            url: str = chain.node.url,
            batches: list[list[bytes]] = batches,
            first: threading.Event = first_admitted,
            refused: list[Any] = refused,
            crashed: list[BaseException] = crashed,
        ) -> None:
            try:
                with TallyClient(url, timeout=30.0) as client:
                    for batch in batches:
                        try:
                            results = client.submit_batch(batch)
                        except NodeUnreachable:
                            return  # the node is gone: the rest was never admitted
                        finally:
                            first.set()
                        refused.extend(r for r in results if not isinstance(r, str))
            except BaseException as exc:  # reported below: a silent thread death hides bugs
                crashed.append(exc)

        submitter = threading.Thread(target=submit_all, daemon=True)
        submitter.start()
        assert first_admitted.wait(30)
        if kill_at:
            with chain.client() as watcher:
                deadline = time.monotonic() + 30
                while watcher.status().log_size - start_log < kill_at:
                    assert time.monotonic() < deadline, "the stream is not being committed"
        chain.node.kill()
        submitter.join(30)
        assert not submitter.is_alive()
        assert refused == [] and crashed == [], (refused, crashed)
        chain.node.start()

        with chain.client() as client:
            status = client.status()
            committed: dict[str, int] = {}  # tx id → height
            for height in range(start_height + 1, status.height + 1):
                block = client.block(height)
                for tx_id in block.txs:
                    committed[tx_id] = height
            assert set(committed) <= set(raws), "a block holds a transaction never sent"
            # The kill came once kill_at events were committed: none of them was lost.
            assert len(committed) >= kill_at, (kill_at, len(committed))
            outcomes.append((kill_at, len(committed), status.height - start_height))
            # Per sender, the committed transactions are exactly nonces [start, next).
            after = next_nonces(client, chain)
            for name in SENDERS:
                got = sorted(raws[t].nonce for t in committed if raws[t].sender == name)
                assert got == list(range(nonces[name], after[name])), name
            # Every committed transaction has exactly its one event, and no other is logged.
            events: list[Event] = []
            cursor = start_log - 1
            while True:
                page = client.events(after=cursor, limit=10_000)
                if not page:
                    break
                events.extend(page)
                cursor = page[-1].log_index
            assert len(events) == status.log_size - start_log == len(committed)
            by_tx = {ev.tx: ev for ev in events}
            assert set(by_tx) == set(committed)
            for tx_id, ev in by_tx.items():
                sent = raws[tx_id]
                assert ev.type == "custody.transfer" and ev.quantity == 1
                assert ev.sender == chain.addr(sent.sender)
                assert ev.height == committed[tx_id]
            if committed:
                last = max(committed, key=lambda t: (committed[t], t))
                assert client.receipt(last).ok
            check_supply(client)
        check_audit(chain)

    # The restarted node takes the senders' next transactions.
    with chain.client() as client:
        nonces = next_nonces(client, chain)
        expiry = client.status().height + 1000
        results = client.submit_batch_and_wait(
            [chain.sign_transfer(n, nonces[n], expiry) for n in SENDERS]
        )
        assert len(results) == len(SENDERS), results
        assert all(getattr(r, "ok", False) for r in results), results
    check_audit(chain)
    print(f"kill moments (events seen, committed txs, blocks): {outcomes}")
