"""Feeding a node's checkpoints to witnesses (tally.witness) and keeping their cosignatures.

After each commit a background thread takes the newest checkpoint that a quorum of
validators signed, sends it to every configured witness with a consistency proof from
the size that witness last cosigned (c2sp.org/tlog-witness ``add-checkpoint``), and
stores the cosignature line it gets back (`Store.add_witness_cosignature`), from where
evidence bundles carry it. A witness that answers 409 names the size it holds: the
feeder sends again from there. Nothing here touches consensus: a witness that is down,
slow or refuses costs the node a log line, never a block.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

from tally.ledger import CommittedBlock
from tally.node.reader import ChainReader
from tally.state.store import Store

if TYPE_CHECKING:
    from tally.node.node import Node

log = logging.getLogger("tally.witnessing")


class WitnessFeeder:
    def __init__(self, reader: ChainReader, store: Store, urls: Sequence[str],
                 timeout: float = 5.0) -> None:
        self.reader = reader
        self.store = store
        self.urls = [u.rstrip("/") for u in urls]
        #: The size each witness last cosigned, as far as this node knows.
        self.sizes: dict[str, int] = {}
        self._client = httpx.Client(timeout=timeout)
        self._wake = threading.Condition()
        self._pending = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tally-witnessing", daemon=True)
        #: Heights whose checkpoint every witness has cosigned (for tests and metrics).
        self.fed: set[int] = set()

    @classmethod
    def attach(cls, node: Node, urls: Sequence[str]) -> WitnessFeeder:
        """A started feeder that wakes on each of ``node``'s commits."""
        feeder = cls(node.reader, node.store, urls).start()
        node.add_listener(feeder.on_commit)
        return feeder

    def start(self) -> WitnessFeeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(10)
        self._client.close()

    def on_commit(self, block: CommittedBlock) -> None:
        """A node listener: wake the feeder (it reads the newest checkpoint itself)."""
        with self._wake:
            self._pending = True
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._stop)
                if self._stop:
                    return
                self._pending = False
            try:
                self.feed_latest()
            except Exception:  # a witness's trouble must never stop the node
                log.exception("feeding witnesses failed")

    def feed_latest(self) -> None:
        proofs = self.reader.validator_proofs()
        latest = proofs.latest_quorum_checkpoint()
        if latest is None:
            return
        block, note = latest
        done = 0
        for url in self.urls:
            line = self._feed(url, block.log_size, note)
            if line is not None:
                self.store.add_witness_cosignature(block.height, line.split(" ", 2)[1], line)
                done += 1
        if done == len(self.urls):
            self.fed.add(block.height)

    def _feed(self, url: str, size: int, note: str) -> str | None:
        for _ in range(2):  # the second time from the size a 409 named
            old = min(self.sizes.get(url, 0), size)
            log_view = self.reader.log_view(size)
            proof = log_view.consistency_proof(old, size) if 0 < old < size else []
            body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n"
                                            for h in proof) + "\n" + note
            try:
                answer = self._client.post(f"{url}/add-checkpoint", content=body.encode())
            except httpx.HTTPError as exc:
                log.warning("witness %s unreachable: %s", url, exc)
                return None
            if answer.status_code == 200:
                self.sizes[url] = size
                return answer.text
            if answer.status_code == 409 and answer.text.strip().isdigit():
                held = int(answer.text.strip())
                if held > size:
                    return None  # the witness is ahead of this node (it is catching up)
                self.sizes[url] = held
                continue
            log.warning("witness %s refused the checkpoint of size %d: %s %s", url, size,
                        answer.status_code, answer.text.strip())
            return None
        return None
