"""A Tally node: ledger, mempool and engine, and the queries the API serves.

Writes go one way: ``submit`` → mempool admission → engine → ledger. Reads never touch
the engine's state: they run on their own SQLite connections against the last committed
block, inside one read transaction each, so a proof and the checkpoint it is checked
against always come from the same block.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tally import codec
from tally.consensus.bundle import pack
from tally.consensus.coalesce import GroupSender
from tally.consensus.solo import SoloEngine
from tally.errors import Code, NotFound, TallyError
from tally.evidence.verify import jsonable
from tally.exec.custody import asset_key, holding_key
from tally.exec.executor import TxOutcome, nonce_key
from tally.exec.roles import role_key
from tally.genesis import Genesis
from tally.keys import NamedKey
from tally.ledger import LEAF_TABLES, CommittedBlock, Ledger
from tally.log.merkle import leaf_hash
from tally.log.tree import MerkleLog
from tally.mempool import Mempool
from tally.metrics import NodeMetrics
from tally.state.store import EventRow, Store, TxRow
from tally.state.trie import StateTrie

if TYPE_CHECKING:
    from tally.consensus.app import Divergence


@dataclass(frozen=True)
class Receipt:
    tx_id: str
    height: int
    position: int
    code: str
    message: str
    first_event: int | None
    event_count: int
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tx": self.tx_id, "height": self.height, "position": self.position,
            "code": self.code, "message": self.message,
            "events": list(range(self.first_event, self.first_event + self.event_count))
            if self.first_event is not None else [],
            "result": jsonable(self.result),
        }

    @classmethod
    def from_row(cls, row: TxRow) -> Receipt:
        return cls(row.id.hex(), row.height, row.position, row.code, row.message,
                   row.first_event, row.event_count,
                   None if row.result is None else codec.decode(row.result))


def event_to_dict(row: EventRow) -> dict[str, Any]:
    leaf = codec.decode(row.leaf)
    out = jsonable(leaf)
    out["log_index"] = row.index
    out["details"] = jsonable(codec.decode(row.details)) if row.details else {}
    return out


class _ReadLogNodes:
    """The log's nodes as readers see them (leaf hashes come from the event rows)."""

    def __init__(self, store: Store, hash_fn: Any, table: str = "log_nodes") -> None:
        self.store = store
        self.hash_fn = hash_fn
        self.table = table
        self.events = LEAF_TABLES[table]

    def get(self, level: int, index: int) -> bytes | None:
        if level == 0:
            leaf = self.store.read_event_leaf(index, self.events)
            return None if leaf is None else leaf_hash(self.hash_fn, leaf)
        return self.store.read_log_node(level, index, self.table)

    def put_many(self, items: list) -> None:  # pragma: no cover - reads only
        raise RuntimeError("read-only view of the log")


class _CommittedState:
    """Committed state, decoded, for read-only contract queries."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: bytes) -> Any | None:
        raw = self.store.read_value(key)
        return None if raw is None else codec.decode(raw)


class _ReadTrieNodes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, path: bytes) -> bytes | None:
        return self.store.read_trie_node(path)


@dataclass(frozen=True)
class CometSettings:
    """Where this node's CometBFT process talks to it, and where its RPC listens."""

    abci_address: str
    rpc_url: str


class Node:
    """One node. ``comet=None`` runs the solo engine in this process; with
    :class:`CometSettings`, CometBFT orders the transactions and this node serves it as
    an ABCI application (the ledger and executor are the same)."""

    def __init__(self, data_dir: Path, genesis: Genesis, validator: NamedKey | None = None,
                 *, clock_ms: Callable[[], int] | None = None,
                 comet: CometSettings | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.genesis = genesis
        self.suite = genesis.suite
        self.validator = validator
        self.store = Store(self.data_dir / "chain.sqlite")
        self.ledger = Ledger(self.store, genesis, validator.key if validator else None,
                             validator.name if validator else None)
        self._listeners: list[Callable[[CommittedBlock], None]] = []
        self._height_changed = threading.Condition()
        from tally.vm import VM

        self._query_vm = VM()
        self._query_lock = threading.Lock()
        self.comet = comet
        if comet is None:
            self.engine_name = "solo"
            self.mempool = Mempool(
                self.ledger.executor,
                committed_nonce=self._committed_nonce,
                next_height=lambda: self.ledger.height + 1,
            )
            if clock_ms:
                self.engine = SoloEngine(self.ledger, self.mempool, self._on_commit,
                                         clock_ms=clock_ms)
            else:
                self.engine = SoloEngine(self.ledger, self.mempool, self._on_commit)
        else:
            from tally.consensus.abci import ThreadedServer
            from tally.consensus.app import TallyApplication
            from tally.net.cometbft import CometRPC

            self.engine_name = "cometbft"
            self.app = TallyApplication(self.ledger, validator, on_commit=self._on_commit)
            self.abci = ThreadedServer(self.app, comet.abci_address)
            self.rpc = CometRPC(comet.rpc_url, timeout=30)
            self._waiters: dict[bytes, Future] = {}
            #: Concurrent submissions share one hand-over to CometBFT (so as bundles).
            self._sender = GroupSender(self._broadcast)
            self._waiters_lock = threading.Lock()
        self.metrics = NodeMetrics(self)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Node:
        if self.comet is None:
            self.engine.start()
        else:
            self.abci.start()
        return self

    def stop(self) -> None:
        shutting_down = TallyError("the node is shutting down", Code.UNAVAILABLE)
        if self.comet is None:
            self.engine.stop()
            self.mempool.fail_all(shutting_down)
        else:
            self.abci.stop()
            with self._waiters_lock:
                for future in self._waiters.values():
                    if not future.done():
                        future.set_exception(shutting_down)
        self.store.close()

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_listener(self, listener: Callable[[CommittedBlock], None]) -> None:
        self._listeners.append(listener)

    def _on_commit(self, block: CommittedBlock) -> None:
        with self._height_changed:
            self._height_changed.notify_all()
        if self.comet is not None:
            with self._waiters_lock:
                for outcome in block.outcomes:
                    future = self._waiters.pop(outcome.tx.id, None)
                    if future is not None:
                        future.set_result(outcome)
        for listener in list(self._listeners):
            listener(block)

    def wait_for_height(self, height: int, timeout: float) -> bool:
        with self._height_changed:
            return self._height_changed.wait_for(lambda: self.ledger.height >= height, timeout)

    # --- writes -------------------------------------------------------------------------

    def _check_engine(self) -> None:
        if self.comet is None and self.engine.failure is not None:
            raise TallyError(f"the node's engine stopped: {self.engine.failure!r}; restart the "
                             "node", Code.UNAVAILABLE)

    def submit(self, raw: bytes) -> str:
        """Admit a transaction; returns its id. Raises a TallyError if refused."""
        self._check_engine()
        with self._counted():
            if self.comet is None:
                tx, _ = self.mempool.admit(raw)
                return tx.id_hex
            tx = self.app.admit(raw)
        self._sender.send([raw])
        return tx.id_hex

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """Count one admission in the metrics: accepted, or refused with its code."""
        try:
            yield
        except TallyError as exc:
            self.metrics.count_submissions([exc])
            raise
        self.metrics.count_submissions([None])

    def submit_and_wait(self, raw: bytes, timeout: float = 30.0) -> Receipt:
        """Admit a transaction and wait until its block is durable."""
        self._check_engine()
        with self._counted():
            if self.comet is None:
                _, future = self.mempool.admit(raw, want_receipt=True)
                assert future is not None
            else:
                tx = self.app.admit(raw)
                future = self._wait_for(tx.id)
        if self.comet is not None:
            self._sender.send([raw])
        settled = self._settle(future, timeout)
        if isinstance(settled, TallyError):
            raise settled
        return settled

    def submit_many(self, raws: list[bytes], *, wait: bool) -> list[Receipt | str | TallyError]:
        """Admit a batch. Each result is a receipt (``wait``), a transaction id (not
        ``wait``), or the error that refused that transaction."""
        self._check_engine()
        pending: list[Future | str | TallyError] = []
        if self.comet is None:
            for result in self.mempool.admit_many(raws, want_receipts=wait):
                if isinstance(result, TallyError):
                    pending.append(result)
                else:
                    tx, future = result
                    pending.append(future if wait and future is not None else tx.id_hex)
        else:
            accepted = []
            for result in self.app.admit_many(raws):
                if isinstance(result, TallyError):
                    pending.append(result)
                    continue
                pending.append(self._wait_for(result.id) if wait else result.id_hex)
                accepted.append(result.raw)
            self._sender.send(accepted)
        self.metrics.count_submissions(pending)
        return [self._settle(p, 120) if isinstance(p, Future) else p for p in pending]

    def _wait_for(self, tx_id: bytes) -> Future:
        future: Future = Future()
        with self._waiters_lock:
            self._waiters[tx_id] = future
        return future

    def _broadcast(self, raws: list[bytes], chunk: int = 100) -> None:
        """Hand admitted transactions to CometBFT's mempool, a batch as bundles
        (tally.consensus.bundle), asynchronously: the typed checks already ran here, and
        CheckTx will not count them twice."""
        carried = list(pack(raws))
        for start in range(0, len(carried), chunk):
            calls = [("broadcast_tx_async", {"tx": base64.b64encode(r).decode()})
                     for r in carried[start:start + chunk]]
            try:
                if len(calls) == 1:  # CometBFT answers a one-call batch with a bare object
                    self.rpc.call(*calls[0])
                else:
                    self.rpc.call_batch(calls)
            except Exception as exc:
                raise TallyError(f"CometBFT did not take the transactions: {exc}",
                                 Code.UNAVAILABLE) from None

    def _settle(self, future: Future, timeout: float) -> Receipt | TallyError:
        try:
            return self._receipt_of(future.result(timeout))
        except TallyError as exc:
            return exc
        except TimeoutError:
            return TallyError(f"not committed within {timeout:.0f} s", Code.UNAVAILABLE)

    def _receipt_of(self, outcome: TxOutcome) -> Receipt:
        row = self.store.tx(outcome.tx.id)
        if row is None:
            raise TallyError("the transaction's block was not found after commit", Code.UNAVAILABLE)
        return Receipt.from_row(row)

    def _committed_nonce(self, account: str) -> int:
        raw = self.store.read_value(nonce_key(account))
        return 0 if raw is None else codec.decode(raw)

    # --- reads --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        latest = self.store.latest_block()
        header = codec.decode(latest.header) if latest else None
        return {
            "chain_id": self.genesis.chain_id,
            "suite": self.suite.name,
            "genesis_hash": self.genesis.hash.hex(),
            "height": latest.height if latest else 0,
            "block_hash": latest.hash.hex() if latest else None,
            "log_size": latest.log_size if latest else 0,
            "state_root": (header["state"] if header else
                           self.store.read_meta("state_root") or b"").hex(),
            "mempool": len(self.mempool) if self.comet is None else None,
            "engine": self.engine_name,
            "engine_failure": repr(self.engine.failure)
            if self.comet is None and self.engine.failure else None,
            "validator": self.validator.name if self.validator else None,
            "diverged": self.diverged.to_dict() if self.diverged else None,
        }

    @property
    def diverged(self) -> Divergence | None:
        """What this node detected of its own divergence (network nodes only), or None."""
        return self.app.diverged if self.comet is not None else None

    def receipt(self, tx_id: str) -> Receipt:
        row = self.store.tx(_parse_hex(tx_id, "transaction id"))
        if row is None:
            raise NotFound(f"no committed transaction {tx_id}")
        return Receipt.from_row(row)

    def transaction(self, tx_id: str) -> dict[str, Any]:
        row = self.store.tx(_parse_hex(tx_id, "transaction id"))
        if row is None:
            raise NotFound(f"no committed transaction {tx_id}")
        tx = self.ledger.executor.decode(row.raw)
        return {
            "id": tx.id_hex, "chain": tx.chain, "suite": tx.suite, "tier": tx.tier,
            "sender": tx.sender, "signer": tx.signer.hex(), "nonce": tx.nonce,
            "expiry": tx.expiry, "kind": tx.kind, "payload": jsonable(tx.payload),
            "signature": tx.signature.hex(), "raw": base64.b64encode(row.raw).decode(),
            "receipt": Receipt.from_row(row).to_dict(),
            "events": [event_to_dict(e) for e in self.store.events_of_tx(row.id)],
        }

    def block(self, height: int) -> dict[str, Any]:
        row = self.store.block(height)
        if row is None:
            raise NotFound(f"no block at height {height}")
        header = codec.decode(row.header)
        return {
            "height": row.height, "hash": row.hash.hex(), "header": jsonable(header),
            "checkpoint": row.checkpoint,
            "txs": [t.id.hex() for t in self.store.block_txs(height)],
        }

    def value(self, key: bytes) -> Any | None:
        raw = self.store.read_value(key)
        return None if raw is None else codec.decode(raw)

    def asset(self, asset: str) -> dict[str, Any]:
        record = self.value(asset_key(asset))
        if record is None:
            raise NotFound(f"no asset {asset!r}")
        holders = {
            key.decode().rsplit("/", 1)[1]: codec.decode(value)
            for key, value in self.store.read_prefix(f"holding/{asset}/".encode())
        }
        return {"asset": asset, **jsonable(record), "holders": holders}

    def holding(self, asset: str, holder: str) -> dict[str, int]:
        return self.value(holding_key(asset, holder)) or {"q": 0, "p": 0, "f": 0}

    def account(self, address: str) -> dict[str, Any]:
        return {
            "address": address,
            "nonce": self.value(nonce_key(address)) or 0,
            "roles": self.value(role_key(address)) or [],
        }

    def history(self, asset: str, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return [event_to_dict(e) for e in self.store.events_of_asset(asset, after, limit)]

    def events(self, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return [event_to_dict(e) for e in self.store.events_after(after, limit)]

    def state_proof(self, key: bytes) -> dict[str, Any]:
        """A key's value (or absence) with a proof against the latest signed checkpoint."""
        with self.store.snapshot():
            latest = self.store.latest_block()
            if latest is None:
                raise NotFound("no block has been committed yet")
            header = codec.decode(latest.header)
            trie = StateTrie(self.suite.hash, _ReadTrieNodes(self.store))
            proof = trie.prove(key)
            raw = self.store.read_value(key)
            from tally.evidence.export import Exporter

            updates = Exporter(self).validator_updates(latest.height)
        return {
            "key": key.decode(errors="replace"), "key_hex": key.hex(),
            "value": jsonable(codec.decode(raw)) if raw is not None else None,
            "value_cbor": raw.hex() if raw is not None else None,
            "state_root": header["state"].hex(), "height": latest.height,
            "checkpoint": self.checkpoint_note(latest.height), "proof": proof.to_dict(),
            "validator_updates": updates,
        }

    def checkpoint_note(self, height: int) -> str:
        """The signed checkpoint of block ``height``, with every cosignature collected
        (one line per signer, in name order)."""
        row = self.store.block(height)
        if row is None:
            raise NotFound(f"no block at height {height}")
        from tally.audit import with_cosignatures

        return with_cosignatures(row.checkpoint, list(self.store.cosignatures(height).values()))

    def inclusion_proof(self, index: int, size: int) -> dict[str, Any]:
        self._check_log_size(size)
        log = self.log_view(size)
        if not 0 <= index < size:
            raise TallyError(f"index {index} is outside a log of size {size}", Code.INVALID_REQUEST)
        return {"index": index, "tree_size": size, "leaf_hash": log.leaf_hash_at(index).hex(),
                "root": log.root(size).hex(),
                "proof": [h.hex() for h in log.inclusion_proof(index, size)]}

    def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        self._check_log_size(second)
        if first > second:
            raise TallyError("the first size must not exceed the second", Code.INVALID_REQUEST)
        log = self.log_view(second)
        return {"first": first, "second": second, "first_root": log.root(first).hex(),
                "second_root": log.root(second).hex(),
                "proof": [h.hex() for h in log.consistency_proof(first, second)]}

    def _check_log_size(self, size: int) -> None:
        latest = self.store.latest_block()
        committed = latest.log_size if latest else 0
        if size > committed:
            raise TallyError(f"the log has {committed} entries; {size} requested",
                             Code.INVALID_REQUEST)

    def log_view(self, size: int, table: str = "log_nodes") -> MerkleLog:
        return MerkleLog(self.suite.hash, _ReadLogNodes(self.store, self.suite.hash, table),
                         size=size)

    # --- contracts (tier 2) -----------------------------------------------------------

    def contract(self, name: str) -> dict[str, Any]:
        from tally.exec.contracts import contract_key

        record = self.value(contract_key(name))
        if record is None:
            raise NotFound(f"no contract {name!r}")
        return {"name": name, **record}

    def contract_source(self, name: str, version: int | None = None) -> str:
        from tally.exec.contracts import contract_source_key

        record = self.contract(name)
        wanted: int = record["version"] if version is None else version
        source = self.value(contract_source_key(name, wanted))
        if source is None:
            raise NotFound(f"contract {name!r} has no version {wanted}")
        return source

    def contract_query(self, name: str, method: str, args: list[Any]) -> Any:
        """Run a @view method against the last committed block (no transaction)."""
        from tally.exec.contracts import StateStorage, custody_host, vm_error_to_tally
        from tally.vm import Context, VMError

        self.contract(name)
        latest = self.store.latest_block()
        header = codec.decode(latest.header) if latest else {"height": 0, "time": 0}
        with self._query_lock:
            try:
                result = self._query_vm.query(
                    name, method, args, storage=StateStorage(_CommittedState(self.store)),
                    ctx=Context("query", header["height"], header["time"], b"\0" * 32),
                    host=custody_host)
            except VMError as exc:
                raise vm_error_to_tally(exc) from None
        return result.return_value

    def commercial_events(self, after: int = -1, limit: int = 1000,
                          contract: str | None = None) -> list[dict[str, Any]]:
        out = []
        for idx, _height, _tx, _contract, _name, leaf in self.store.events2_after(
                after, limit, contract):
            fields = codec.decode(leaf)
            out.append({"log_index": idx, "contract": fields["contract"],
                        "name": fields["name"], "data": jsonable(codec.decode(fields["data"])),
                        "height": fields["height"], "tx": fields["tx"].hex(),
                        "index": fields["index"], "time": fields["time"]})
        return out


def _parse_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TallyError(f"{what} must be hex", Code.INVALID_REQUEST) from None
