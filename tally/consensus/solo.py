"""The solo engine: one process decides the order of transactions and commits blocks.

For development, tests and single-operator deployments. It makes a block as soon as
transactions are waiting, so under load the blocks grow by themselves (everything that
arrived while the previous block was being written), and an idle node makes none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tally.ledger import CommittedBlock, Ledger
from tally.mempool import Mempool

log = logging.getLogger("tally.solo")


class SoloEngine:
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        on_commit: Callable[[CommittedBlock], None],
        *,
        max_block_txs: int | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.ledger = ledger
        self.mempool = mempool
        self.on_commit = on_commit
        #: A fixed block size for tests; None follows the chain parameter, which the
        #: committee may change (protocol version 2 on).
        self.max_block_txs = max_block_txs
        self.clock_ms = clock_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-solo", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                limit = self.max_block_txs or self.ledger.executor.params.max_block_txs
                batch = self.mempool.take(limit, timeout=0.05)
                if batch:
                    self.produce(batch)
        except BaseException as exc:  # the engine must not die silently
            log.exception("the solo engine stopped")
            self.failure = exc
            raise

    def produce(self, batch: list) -> CommittedBlock:
        pending = self.ledger.execute(batch, self.clock_ms(), is_verified=lambda _tx_id: True)
        block = self.ledger.commit(pending)
        self.mempool.committed(block.outcomes)
        self.on_commit(block)
        return block
