"""The Alerter: alert rules evaluated on every committed block, off the commit path.

Invariants (decision 0031):

* **Never on the commit path.** The node calls :meth:`Alerter.on_commit` on its engine's
  thread after each commit; it only puts ``(height, commit time)`` on a bounded queue
  without waiting. When the queue is full it counts that it fell behind
  (:attr:`Alerter.fell_behind`) and drops the item: the queue only wakes the worker,
  which reads the blocks themselves from the chain reader.
* **Every committed block is evaluated once, in order.** The worker evaluates every
  height after the last one it stored, up to the reader's latest, however it was woken
  (a queue item, a timeout, a restart): a node restarted, or an alerter that fell behind,
  catches up from the reader's events. A block's alerts and the height evaluated are
  written in one SQLite transaction, so a crash neither loses nor repeats a block.
* **Alerts are stored** in their own SQLite file (``<data_dir>/alerts.sqlite``), never in
  the chain's database: each names its rule, its kind, its height, the events that make
  it (log indexes, for ``tally evidence export``) and a message, and is ``open`` until
  acknowledged (by whom, when).
* A rule that raises does not stop the others: it yields an alert of kind ``error``
  naming the exception, so a broken rule is seen, not silent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tally.errors import Code, NotFound, TallyError
from tally.ledger import CommittedBlock
from tally.node import Node
from tally.node.reader import ChainReader
from tally.supervision.rules import MAX_FINDINGS, Finding, Rule

log = logging.getLogger("tally.supervision")

#: Blocks the queue holds between the commit and the worker (beyond: counted, dropped).
QUEUE_BLOCKS = 1024
#: Events read from the reader per page while evaluating a block.
PAGE = 1000
#: Alerts one list answers at most.
MAX_LIST = 1000
#: Commit-to-stored latencies kept for the benchmark and tests (seconds).
LATENCIES = 100_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    height INTEGER NOT NULL,
    events TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    created_at REAL NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, id);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule: str
    kind: str
    height: int
    events: list[int]
    message: str
    status: str
    created_at: float
    acknowledged_by: str | None
    acknowledged_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


class AlertStore:
    """Alerts in SQLite: one connection, shared by the worker and the API's threads
    under a lock (writes are one per evaluated block, reads are small)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def evaluated_height(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='evaluated'").fetchone()
        return row[0] if row else 0

    def record(self, height: int, alerts: list[tuple[str, str, Finding]]) -> None:
        """Store a block's alerts and mark it evaluated, atomically."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO alerts (rule, kind, height, events, message, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(rule, kind, height, json.dumps(list(f.events)), f.message, now)
                     for rule, kind, f in alerts])
                self._db.execute("INSERT INTO meta (key, value) VALUES ('evaluated', ?) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                 (height,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def list(self, *, status: str | None = None, rule: str | None = None,
             from_height: int = 0, after: int = 0, limit: int = 100) -> list[Alert]:
        """Alerts with id > ``after``, in id order, filtered by status, rule and least
        height."""
        clauses = ["id > ?", "height >= ?"]
        args: list[int | str] = [after, from_height]
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if rule is not None:
            clauses.append("rule = ?")
            args.append(rule)
        sql = f"SELECT * FROM alerts WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, min(limit, MAX_LIST))).fetchall()
        return [_alert(r) for r in rows]

    def get(self, alert_id: int) -> Alert:
        with self._lock:
            row = self._db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        return _alert(row)

    def acknowledge(self, alert_id: int, by: str) -> Alert:
        """Mark an open alert acknowledged by ``by``; acknowledging it again is refused
        (409) and names who did it first."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE alerts SET status='acknowledged', acknowledged_by=?, acknowledged_at=? "
                "WHERE id=? AND status='open'", (by, time.time(), alert_id))
            changed = cur.rowcount
        alert = self.get(alert_id)
        if not changed:
            raise TallyError(f"alert {alert_id} was already acknowledged by "
                             f"{alert.acknowledged_by}", Code.DUPLICATE)
        return alert


def _alert(row: tuple) -> Alert:
    (id_, rule, kind, height, events, message, status, created, by, at) = row
    return Alert(id_, rule, kind, height, json.loads(events), message, status, created, by, at)


class Alerter:
    """Evaluates ``rules`` on every block a node commits, on its own thread, and stores
    the alerts (see the module docstring for the invariants)."""

    def __init__(self, reader: ChainReader, rules: list[Rule], path: Path, *,
                 queue_blocks: int = QUEUE_BLOCKS) -> None:
        self.reader = reader
        self.rules = rules
        self.alerts = AlertStore(path)
        self._queue: queue.Queue[tuple[int, float] | None] = queue.Queue(queue_blocks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-alerts", daemon=True)
        self._committed_at: dict[int, float] = {}
        #: Commits that found the queue full (the worker caught up from the reader).
        self.fell_behind = 0
        #: (height, seconds from commit to its alerts stored, alerts) per evaluated block
        #: whose commit this alerter saw.
        self.latencies: deque[tuple[int, float, int]] = deque(maxlen=LATENCIES)
        self._evaluated = self.alerts.evaluated_height()
        self._evaluated_changed = threading.Condition()
        self._node: Node | None = None

    @classmethod
    def attach(cls, node: Node, rules: list[Rule], path: Path | None = None,
               **kw: Any) -> Alerter:
        """A started alerter on ``node``'s commits, storing into ``path`` (default
        ``<data_dir>/alerts.sqlite``). Stop it (:meth:`stop`) before the node."""
        alerter = cls(node.reader, rules, path or node.data_dir / "alerts.sqlite", **kw)
        alerter._node = node
        node.add_listener(alerter.on_commit)
        return alerter.start()

    def start(self) -> Alerter:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker (after the block it is evaluating) and close the store."""
        if self._node is not None:
            self._node.remove_listener(self.on_commit)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.alerts.close()

    # --- the commit side: constant time, never waits ---------------------------------------

    def on_commit(self, block: CommittedBlock) -> None:
        try:
            self._queue.put_nowait((block.height, time.monotonic()))
        except queue.Full:
            self.fell_behind += 1

    # --- the worker ------------------------------------------------------------------------

    @property
    def evaluated_height(self) -> int:
        """The last height whose alerts are stored."""
        return self._evaluated

    def wait_for(self, height: int, timeout: float) -> bool:
        """Wait until every block up to ``height`` is evaluated (tests, benchmarks)."""
        with self._evaluated_changed:
            return self._evaluated_changed.wait_for(lambda: self._evaluated >= height,
                                                    timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            while item is not None:  # drain: keep the commit times, evaluate once
                height, at = item
                if height > self._evaluated and len(self._committed_at) < LATENCIES:
                    self._committed_at[height] = at
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            try:
                self._catch_up()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("alert evaluation failed; retrying")
                self._stop.wait(1.0)

    def _catch_up(self) -> None:
        latest = self.reader.height()
        while self._evaluated < latest and not self._stop.is_set():
            height = self._evaluated + 1
            alerts = self.evaluate(height)
            self.alerts.record(height, alerts)
            at = self._committed_at.pop(height, None)
            if at is not None:
                self.latencies.append((height, time.monotonic() - at, len(alerts)))
            with self._evaluated_changed:
                self._evaluated = height
                self._evaluated_changed.notify_all()

    def block_events(self, height: int) -> list[dict[str, Any]]:
        """The events block ``height`` committed, in log order."""
        row = self.reader.block_row(height)
        previous = self.reader.block_row(height - 1) if height > 1 else None
        if row is None:
            return []
        first = previous.log_size if previous is not None else 0
        if height == 1:
            first = 0
        events: list[dict[str, Any]] = []
        cursor = first - 1
        while cursor + 1 < row.log_size:
            page = self.reader.events(cursor, min(PAGE, row.log_size - cursor - 1))
            if not page:
                break
            events.extend(page)
            cursor = page[-1]["log_index"]
        return events

    def evaluate(self, height: int) -> list[tuple[str, str, Finding]]:
        """Every rule on block ``height``: (rule name, kind, finding) per alert."""
        events = self.block_events(height)
        out: list[tuple[str, str, Finding]] = []
        for rule in self.rules:
            try:
                found = rule.evaluate(events, self.reader) if events else []
            except Exception as exc:
                log.warning("rule %s failed on block %d: %r", rule.name, height, exc)
                out.append((rule.name, "error", Finding([], (
                    f"the rule raised on block {height}: {exc!r}"[:500]))))
                continue
            if len(found) > MAX_FINDINGS:
                cut = len(found) - MAX_FINDINGS + 1
                found = [*found[:MAX_FINDINGS - 1], Finding(
                    [], f"{cut} more findings of this rule in block {height} were not stored")]
            out.extend((rule.name, rule.kind, f) for f in found)
        return out
