"""A Tally node: the wiring of a store, a ledger, an engine, a chain reader and metrics.

Writes go one way: ``submit`` → the engine's admission → the engine orders → the ledger
commits. Reads never touch the engine's state: they go through :attr:`Node.reader`
(:class:`~tally.node.reader.ChainReader`), on their own SQLite connections against the
last committed block, inside one read transaction each where they must agree, so a proof
and the checkpoint it is checked against always come from the same block.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tally.errors import Code, TallyError
from tally.genesis import Genesis, Params
from tally.keys import NamedKey
from tally.ledger import CommittedBlock, Ledger
from tally.metrics import NodeMetrics
from tally.node.engine import Admitted, CometSettings, Engine, make_engine
from tally.node.reader import ChainReader, receipt_of_row
from tally.protocol.receipt import Receipt
from tally.state.store import Store

if TYPE_CHECKING:
    from tally.consensus.app import Divergence

__all__ = ["CometSettings", "Node"]


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
        #: Everything clients read, from committed blocks only.
        self.reader = ChainReader(self.store, genesis, decode_tx=self.ledger.executor.decode,
                                  query_host=lambda: self.ledger.executor.rules.host)
        self._listeners: list[Callable[[CommittedBlock], None]] = []
        self._height_changed = threading.Condition()
        self.engine: Engine = make_engine(self.ledger, self._on_commit, comet=comet,
                                          validator=validator,
                                          committed_nonce=self.reader.admission_nonce,
                                          clock_ms=clock_ms)
        self.metrics = NodeMetrics(self.reader, self.engine,
                                   validator.name if validator else None)
        self.add_listener(self.metrics.on_commit)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Node:
        self.engine.start()
        return self

    def stop(self) -> None:
        self.engine.stop(TallyError("the node is shutting down", Code.UNAVAILABLE))
        self.store.close()

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_listener(self, listener: Callable[[CommittedBlock], None]) -> None:
        """Call ``listener`` with every committed block, on the engine's thread, until
        :meth:`remove_listener`: a listener is called by every commit while it is
        registered, so whoever adds one for a limited time (an event stream) removes it."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[CommittedBlock], None]) -> None:
        """Stop calling ``listener`` (one registration of it; none is fine)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def _on_commit(self, block: CommittedBlock) -> None:
        with self._height_changed:
            self._height_changed.notify_all()
        for listener in list(self._listeners):
            listener(block)

    def wait_for_height(self, height: int, timeout: float) -> bool:
        with self._height_changed:
            return self._height_changed.wait_for(lambda: self.ledger.height >= height, timeout)

    # --- what the node is ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The chain's facts (:meth:`ChainReader.status`) and this node's: its engine,
        mempool depth, validator name and any divergence it detected."""
        failure = self.engine.failure
        diverged = self.engine.diverged
        return self.reader.status() | {
            "mempool": self.engine.mempool_depth,
            "engine": self.engine.name,
            "engine_failure": repr(failure) if failure else None,
            "validator": self.validator.name if self.validator else None,
            "diverged": diverged.to_dict() if diverged else None,
        }

    @property
    def params(self) -> Params:
        """The chain parameters in force after the last committed block (from protocol
        version 2 the committee changes them: decision 0019)."""
        return self.ledger.executor.params

    @property
    def diverged(self) -> Divergence | None:
        """What this node detected of its own divergence (network nodes only), or None."""
        return self.engine.diverged

    # --- writes -------------------------------------------------------------------------

    def _check_engine(self) -> None:
        if self.engine.failure is not None:
            raise TallyError(f"the node's engine stopped: {self.engine.failure!r}; restart the "
                             "node", Code.UNAVAILABLE)

    def submit(self, raw: bytes) -> str:
        """Admit a transaction; returns its id. Raises a TallyError if refused."""
        self._check_engine()
        with self._counted():
            admitted = self.engine.admit(raw)
        self.engine.hand_over([raw])
        return admitted.tx.id_hex

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
            admitted = self.engine.admit(raw, wait=True)
        self.engine.hand_over([raw])
        settled = self._settle(admitted, timeout)
        if isinstance(settled, TallyError):
            raise settled
        return settled

    def submit_many(self, raws: list[bytes], *, wait: bool) -> list[Receipt | str | TallyError]:
        """Admit a batch. Each result is a receipt (``wait``), a transaction id (not
        ``wait``), or the error that refused that transaction."""
        self._check_engine()
        results = self.engine.admit_many(raws, wait=wait)
        self.engine.hand_over([r.tx.raw for r in results if not isinstance(r, TallyError)])
        self.metrics.count_submissions(results)
        return [r if isinstance(r, TallyError) else
                self._settle(r, 120) if wait else r.tx.id_hex for r in results]

    def _settle(self, admitted: Admitted, timeout: float) -> Receipt | TallyError:
        try:
            outcome = self.engine.outcome(admitted, timeout)
        except TallyError as exc:
            return exc
        row = self.reader.tx_row(outcome.tx.id)
        if row is None:
            return TallyError("the transaction's block was not found after commit",
                              Code.UNAVAILABLE)
        return receipt_of_row(row)
