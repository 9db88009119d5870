"""Admission and the pool of transactions waiting for a block.

Admission runs every check that can be run before a block: decoding, chain, suite,
signature, kind and payload shape, and the nonce against the sender's committed nonce
plus the transactions it already has waiting. A transaction that passes is the next one
its sender can execute, so the engine can take the pool in order and build valid blocks.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from tally.admission import admit_batch
from tally.errors import Code, TallyError, TxRejected
from tally.exec.executor import Executor, TxOutcome
from tally.tx import Transaction


class Mempool:
    def __init__(
        self,
        executor: Executor,
        committed_nonce: Callable[[str], int],
        next_height: Callable[[], int],
        capacity: int = 200_000,
        capacity_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.executor = executor
        self._committed_nonce = committed_nonce
        self._next_height = next_height
        #: Bounds in transactions and in wire bytes: a transaction can be 1,000 times the
        #: size of another, so a count alone does not bound the node's memory.
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self._bytes = 0
        self._lock = threading.Condition()
        self._queue: deque[Transaction] = deque()
        self._ids: set[bytes] = set()
        #: Next nonce per sender with transactions waiting or in a block being made.
        self._next_nonce: dict[str, int] = {}
        self._outstanding: dict[str, int] = {}
        self._waiters: dict[bytes, Future[TxOutcome]] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def admit(self, raw: bytes, *, want_receipt: bool = False) -> tuple[Transaction, Future | None]:
        """Check and queue one transaction. Raises a TallyError with the reason if refused."""
        tx = self.executor.decode(raw)
        self.executor.check_stateless(tx)  # signature check happens here, outside the lock
        return self._enqueue(tx, want_receipt)

    def _enqueue(self, tx: Transaction, want_receipt: bool) -> tuple[Transaction, Future | None]:
        with self._lock:
            if tx.id in self._ids:
                raise TxRejected(f"transaction {tx.id_hex} is already waiting", Code.DUPLICATE)
            if len(self._queue) >= self.capacity or \
                    self._bytes + len(tx.raw) > self.capacity_bytes:
                raise TxRejected("the mempool is full; retry later", Code.MEMPOOL_FULL)
            expected = self._next_nonce.get(tx.sender)
            if expected is None:
                expected = self._committed_nonce(tx.sender)
            self.executor.check_nonce_and_expiry(tx, expected, self._next_height())
            self._next_nonce[tx.sender] = expected + 1
            self._outstanding[tx.sender] = self._outstanding.get(tx.sender, 0) + 1
            self._queue.append(tx)
            self._bytes += len(tx.raw)
            self._ids.add(tx.id)
            future: Future | None = None
            if want_receipt:
                future = Future()
                self._waiters[tx.id] = future
            self._lock.notify()
        return tx, future

    def admit_many(self, raws: list[bytes], *, want_receipts: bool = False
                   ) -> list[tuple[Transaction, Future | None] | TallyError]:
        """Admit a batch, verifying its signatures on every core (tally.admission)."""
        return admit_batch(raws, self.executor.suite, self.executor.precheck,
                           lambda tx: self._enqueue(tx, want_receipts))

    def take(self, limit: int, timeout: float) -> list[Transaction]:
        """Up to ``limit`` transactions in admission order, waiting up to ``timeout`` for one."""
        with self._lock:
            if not self._queue:
                self._lock.wait(timeout)
            batch = []
            while self._queue and len(batch) < limit:
                tx = self._queue.popleft()
                self._bytes -= len(tx.raw)
                batch.append(tx)
            return batch

    def committed(self, outcomes: list[TxOutcome]) -> None:
        """Called by the engine after a block is durable: settle waiters and nonce tracking."""
        with self._lock:
            resync: set[str] = set()
            for outcome in outcomes:
                tx = outcome.tx
                self._ids.discard(tx.id)
                left = self._outstanding.get(tx.sender, 1) - 1
                if left:
                    self._outstanding[tx.sender] = left
                else:
                    self._outstanding.pop(tx.sender, None)
                    self._next_nonce.pop(tx.sender, None)
                if not outcome.ran:
                    resync.add(tx.sender)
                future = self._waiters.pop(tx.id, None)
                if future is not None:
                    future.set_result(outcome)
            if resync:
                self._drop_senders(resync)

    def _drop_senders(self, senders: set[str]) -> None:
        """A sender's transaction could not run (e.g. it expired before its block), so its
        later ones would all fail on the nonce: refuse them now and start it afresh."""
        kept: deque[Transaction] = deque()
        for tx in self._queue:
            if tx.sender in senders:
                self._ids.discard(tx.id)
                future = self._waiters.pop(tx.id, None)
                if future is not None:
                    future.set_exception(TxRejected(
                        "an earlier transaction of this sender could not run; resubmit",
                        Code.NONCE_GAP))
            else:
                kept.append(tx)
        self._queue = kept
        self._bytes = sum(len(tx.raw) for tx in kept)
        for sender in senders:
            self._next_nonce.pop(sender, None)
            self._outstanding.pop(sender, None)

    def fail_all(self, error: TallyError) -> None:
        with self._lock:
            for future in self._waiters.values():
                if not future.done():
                    future.set_exception(error)
            self._waiters.clear()


__all__ = ["Mempool", "TallyError"]
