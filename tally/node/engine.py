"""What a node needs from the engine that orders its transactions, and the two engines.

:class:`Engine` is the protocol: start and stop; admit one transaction or a batch
(the typed checks, the nonce counted against the committed state and what is pending);
hand what was admitted over for ordering; wait for an admitted transaction's outcome;
and the facts an operator reads (its name, its mempool depth where it keeps one, the
error it stopped on, a divergence it detected). The node is written against this
protocol alone; the one place that chooses an engine is :func:`make_engine`.

* :class:`Solo` — the embedded engine (:mod:`tally.consensus.solo`): this process orders
  the transactions of its own :class:`~tally.mempool.Mempool` and commits blocks.
* :class:`Comet` — CometBFT orders them: this process serves it as an ABCI 2.0
  application (:mod:`tally.consensus.app`), hands admitted transactions to its RPC
  (grouped, as bundles: decision 0011) and settles each waiter when its block commits.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from tally.consensus.bundle import pack
from tally.consensus.coalesce import GroupSender
from tally.consensus.solo import SoloEngine
from tally.errors import Code, TallyError
from tally.exec.executor import TxOutcome
from tally.keys import NamedKey
from tally.ledger import CommittedBlock, Ledger
from tally.mempool import Mempool
from tally.tx import Transaction

if TYPE_CHECKING:
    from tally.consensus.app import Divergence

__all__ = ["Admitted", "Comet", "CometSettings", "Engine", "Solo", "make_engine"]


@dataclass(frozen=True)
class CometSettings:
    """Where this node's CometBFT process talks to it, and where its RPC listens."""

    abci_address: str
    rpc_url: str


class Admitted(NamedTuple):
    """A transaction the engine admitted, and (when admitted with ``wait``) the future
    of its outcome, settled once its block is durable."""

    tx: Transaction
    outcome: Future[TxOutcome] | None = None


class Engine(Protocol):
    """What a node needs from the engine that orders its transactions."""

    #: ``solo`` or ``cometbft``: what ``/v1/status`` and the metrics name.
    name: str

    def start(self) -> None:
        """Begin ordering (and committing) blocks."""

    def stop(self, error: TallyError | None = None) -> None:
        """Stop ordering; fail every outcome still awaited with ``error`` (by default:
        the node is shutting down). Stopping twice is harmless."""

    def admit(self, raw: bytes, *, wait: bool = False) -> Admitted:
        """Admit one transaction; raise the TallyError that refuses it. With ``wait``,
        the result carries the future of its outcome."""
        ...

    def admit_many(self, raws: list[bytes], *, wait: bool = False
                   ) -> list[Admitted | TallyError]:
        """Admit a batch (signatures verified on every core): per transaction, what
        :meth:`admit` returns, or the error that refused it."""
        ...

    def hand_over(self, raws: list[bytes]) -> None:
        """Hand admitted transactions over for ordering (a no-op where admission already
        queued them); raise a TallyError if the orderer did not take them."""

    def outcome(self, admitted: Admitted, timeout: float) -> TxOutcome:
        """Wait for an admitted transaction's outcome (it was admitted with ``wait``);
        raise a TallyError if it was refused later, the engine stopped, or ``timeout``
        seconds passed (``UNAVAILABLE``)."""
        ...

    @property
    def mempool_depth(self) -> int | None:
        """Admitted transactions waiting for a block, where this process keeps them."""

    @property
    def failure(self) -> BaseException | None:
        """The error the engine stopped on, or None while it runs."""

    @property
    def diverged(self) -> Divergence | None:
        """A divergence of this node's state from the network's it detected, or None."""


def _shutting_down() -> TallyError:
    return TallyError("the node is shutting down", Code.UNAVAILABLE)


def _wait(admitted: Admitted, timeout: float) -> TxOutcome:
    if admitted.outcome is None:
        raise ValueError("the transaction was admitted without wait=True")
    try:
        return admitted.outcome.result(timeout)
    except TimeoutError:
        raise TallyError(f"not committed within {timeout:.0f} s", Code.UNAVAILABLE) from None


class Solo:
    """The embedded engine: this process's mempool, and a thread that makes blocks."""

    name = "solo"

    def __init__(self, ledger: Ledger, on_commit: Callable[[CommittedBlock], None], *,
                 committed_nonce: Callable[[str], int],
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.mempool = Mempool(ledger.executor, committed_nonce=committed_nonce,
                               next_height=lambda: ledger.height + 1)
        if clock_ms:
            self.blocks = SoloEngine(ledger, self.mempool, on_commit, clock_ms=clock_ms)
        else:
            self.blocks = SoloEngine(ledger, self.mempool, on_commit)

    def start(self) -> None:
        self.blocks.start()

    def stop(self, error: TallyError | None = None) -> None:
        self.blocks.stop()
        self.mempool.fail_all(error or _shutting_down())

    def admit(self, raw: bytes, *, wait: bool = False) -> Admitted:
        return Admitted(*self.mempool.admit(raw, want_receipt=wait))

    def admit_many(self, raws: list[bytes], *, wait: bool = False
                   ) -> list[Admitted | TallyError]:
        return [r if isinstance(r, TallyError) else Admitted(*r)
                for r in self.mempool.admit_many(raws, want_receipts=wait)]

    def hand_over(self, raws: list[bytes]) -> None:
        """Admission already queued them for the next block."""

    def outcome(self, admitted: Admitted, timeout: float) -> TxOutcome:
        return _wait(admitted, timeout)

    @property
    def mempool_depth(self) -> int | None:
        return len(self.mempool)

    @property
    def failure(self) -> BaseException | None:
        return self.blocks.failure

    @property
    def diverged(self) -> Divergence | None:
        return None


class Comet:
    """CometBFT orders the transactions; this process is its ABCI application."""

    name = "cometbft"

    def __init__(self, ledger: Ledger, validator: NamedKey | None, settings: CometSettings,
                 on_commit: Callable[[CommittedBlock], None]) -> None:
        # Imported here: a solo node loads neither the ABCI stack nor the RPC client.
        from tally.consensus.abci import ThreadedServer
        from tally.consensus.app import TallyApplication
        from tally.net.cometbft import CometRPC

        self._on_commit = on_commit
        self.app = TallyApplication(ledger, validator, on_commit=self._committed)
        self.abci = ThreadedServer(self.app, settings.abci_address)
        self.rpc = CometRPC(settings.rpc_url, timeout=30)
        self._waiters: dict[bytes, Future] = {}
        self._waiters_lock = threading.Lock()
        #: Concurrent submissions share one hand-over to CometBFT (so as bundles).
        self._sender = GroupSender(self._broadcast)
        self._started = False

    def start(self) -> None:
        self.abci.start()
        self._started = True

    def stop(self, error: TallyError | None = None) -> None:
        if self._started:
            self.abci.stop()
        error = error or _shutting_down()
        with self._waiters_lock:
            for future in self._waiters.values():
                if not future.done():
                    future.set_exception(error)

    def _committed(self, block: CommittedBlock) -> None:
        with self._waiters_lock:
            for outcome in block.outcomes:
                future = self._waiters.pop(outcome.tx.id, None)
                if future is not None:
                    future.set_result(outcome)
        self._on_commit(block)

    def _wait_for(self, tx: Transaction) -> Admitted:
        future: Future = Future()
        with self._waiters_lock:
            self._waiters[tx.id] = future
        return Admitted(tx, future)

    def admit(self, raw: bytes, *, wait: bool = False) -> Admitted:
        tx = self.app.admit(raw)
        return self._wait_for(tx) if wait else Admitted(tx)

    def admit_many(self, raws: list[bytes], *, wait: bool = False
                   ) -> list[Admitted | TallyError]:
        return [r if isinstance(r, TallyError) else self._wait_for(r) if wait else Admitted(r)
                for r in self.app.admit_many(raws)]

    def hand_over(self, raws: list[bytes]) -> None:
        self._sender.send(raws)

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

    def outcome(self, admitted: Admitted, timeout: float) -> TxOutcome:
        return _wait(admitted, timeout)

    @property
    def mempool_depth(self) -> int | None:
        return None  # CometBFT keeps the mempool

    @property
    def failure(self) -> BaseException | None:
        return self.abci.error

    @property
    def diverged(self) -> Divergence | None:
        return self.app.diverged


def make_engine(ledger: Ledger, on_commit: Callable[[CommittedBlock], None], *,
                comet: CometSettings | None, validator: NamedKey | None,
                committed_nonce: Callable[[str], int],
                clock_ms: Callable[[], int] | None = None) -> Engine:
    """The one place an engine is chosen: CometBFT when ``comet`` says where it is, else
    the embedded solo engine."""
    if comet is None:
        return Solo(ledger, on_commit, committed_nonce=committed_nonce, clock_ms=clock_ms)
    return Comet(ledger, validator, comet, on_commit)
