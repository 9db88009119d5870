"""Prometheus metrics of one node: what an operator graphs and alerts on.

Served by the API at ``GET /metrics`` in Prometheus' text format. Two kinds:

* **Read at scrape time** from the node's chain reader (height, log sizes, the latest
  block's time and size, cosignatures on the latest checkpoint) and its engine (mempool
  depth, whether the engine runs, a divergence it detected):
  nothing on the hot path pays for them, and they can never drift from what
  ``/v1/status`` reports.
* **Counted as things happen**: blocks and transactions committed (by outcome code),
  and submissions to this node's API (accepted, or the code that refused them). These
  count since the process started, as Prometheus counters do; ``rate()`` makes them
  throughput and refusal rates.

Process metrics (CPU seconds, resident memory, open files) come from prometheus_client's
own collectors. Nothing here feeds back into consensus: metrics are read-only.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from tally.errors import TallyError
from tally.protocol.header import BlockHeader

if TYPE_CHECKING:
    from tally.ledger import CommittedBlock
    from tally.node.engine import Engine
    from tally.node.reader import ChainReader

__all__ = ["CONTENT_TYPE", "NodeMetrics"]

#: The classic text format, which every Prometheus (2.x and 3.x) and every agent reads;
#: ``generate_latest`` writes exactly that for names and labels like ours (ASCII).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

ACCEPTED = "accepted"


class NodeMetrics:
    """The metrics registry of one node: its chain as ``reader`` reads it, its ``engine``,
    and its validator's name (None for a node that does not validate). The node calls
    :meth:`on_commit` after each block and :meth:`count_submissions` on each admission."""

    def __init__(self, reader: ChainReader, engine: Engine, validator: str | None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.blocks = Counter(
            "tally_blocks_committed", "Blocks committed since this process started.",
            registry=self.registry)
        self.transactions = Counter(
            "tally_transactions_committed",
            "Transactions in committed blocks since this process started, by outcome "
            "(OK, or the code they failed with; failed transactions are recorded too).",
            ["outcome"], registry=self.registry)
        self.submissions = Counter(
            "tally_submissions",
            "Transactions submitted to this node's API, by outcome: accepted, or the error "
            "code that refused them.", ["outcome"], registry=self.registry)
        self.registry.register(_NodeState(reader, engine, validator, self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.last_block_txs = 0
        self.last_commit_monotonic: float | None = None

    def on_commit(self, block: CommittedBlock) -> None:
        self.blocks.inc()
        for code, count in collections.Counter(o.code for o in block.outcomes).items():
            self.transactions.labels(code).inc(count)
        self.last_block_txs = len(block.outcomes)
        self.last_commit_monotonic = time.monotonic()

    def count_submissions(self, results: Iterable[object]) -> None:
        """Count one batch's results: a TallyError is a refusal, anything else accepted."""
        outcomes = collections.Counter(str(r.code) if isinstance(r, TallyError) else ACCEPTED
                         for r in results)
        for outcome, count in outcomes.items():
            self.submissions.labels(outcome).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _NodeState(Collector):
    """Gauges read from the chain reader and the engine when Prometheus scrapes."""

    def __init__(self, reader: ChainReader, engine: Engine, validator: str | None,
                 metrics: NodeMetrics) -> None:
        self.reader = reader
        self.engine = engine
        self.validator = validator
        self.metrics = metrics

    def describe(self) -> Iterator[GaugeMetricFamily]:  # names only; values at collect
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        reader, engine = self.reader, self.engine
        latest = reader.latest()
        height = latest.height if latest else 0
        yield InfoMetricFamily("tally_node", "What this node is.", value={
            "chain_id": reader.genesis.chain_id, "suite": reader.suite.name,
            "engine": engine.name, "validator": self.validator or ""})
        yield _gauge("tally_height", "Height of the latest committed block.", height)
        yield _gauge("tally_log_size", "Events in the custody log (tier 1).",
                     latest.log_size if latest else 0)
        header = BlockHeader.decode(latest.header) if latest is not None else None
        yield _gauge("tally_commercial_log_size", "Events in the commercial log (tier 2).",
                     header.commercial_size if header else 0)
        if header is not None:
            yield _gauge("tally_last_block_time_seconds",
                         "The latest block's time (Unix seconds, the chain's clock): "
                         "alert when it falls behind the wall clock.", header.time / 1000)
            yield _gauge("tally_last_block_transactions", "Transactions in the latest block.",
                         header.tx_count)
        cosigned = reader.cosignatures(height - 1) if height > 1 else {}
        yield _gauge("tally_checkpoint_cosignatures",
                     "Validators' cosignatures stored for the checkpoint before the latest "
                     "(a checkpoint's cosignatures arrive with the next block).", len(cosigned))
        depth = engine.mempool_depth
        if depth is not None:  # the embedded engine: this process holds the mempool
            yield _gauge("tally_mempool_transactions", "Admitted transactions waiting for a "
                         "block (embedded engine).", depth)
            yield _gauge("tally_engine_up", "1 while the embedded engine makes blocks, 0 "
                         "after it stopped on an error (the node must be restarted).",
                         0 if engine.failure else 1)
        else:
            yield _gauge("tally_diverged", "1 once this node found that validators holding "
                         "more than a third of the power signed another checkpoint than "
                         "its own (its state is wrong; its API refuses reads).",
                         0 if engine.diverged is None else 1)
        since = self.metrics.last_commit_monotonic
        if since is not None:
            yield _gauge("tally_seconds_since_last_commit",
                         "Seconds since this process last committed a block (process clock).",
                         time.monotonic() - since)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
