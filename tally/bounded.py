"""A least-recently-inserted cache bounded in bytes as well as in entries.

Every cache a node keeps of what strangers send it (admitted transactions, decoded
bundles) or of state (the ledger's decoded values) holds items of very different sizes:
a bound in entries alone lets 50,000 small entries become 50,000 large ones (issue 13
found a cache of payloads grow a node by 2.6 GB). Each entry here is charged the size
its owner gives for it, and the oldest entries go once either bound is passed.

Invariants: ``bytes`` is the sum of the sizes of the entries held; after every ``put``,
``len(self) <= max_entries`` and ``bytes <= max_bytes`` (an entry larger than
``max_bytes`` alone is not kept).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict-like cache that evicts in insertion order past ``max_entries`` entries or
    ``max_bytes`` bytes. Safe to share between threads (admission runs on API threads
    and the consensus thread at once): changes hold a lock, reads need none."""

    __slots__ = ("max_entries", "max_bytes", "bytes", "_items", "_lock")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K, default: V | None = None) -> V | None:
        item = self._items.get(key)
        return default if item is None else item[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep ``value`` under ``key``, charged ``size`` bytes (the caller's estimate of
        what the entry holds, key included)."""
        with self._lock:
            items = self._items
            old = items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            if size > self.max_bytes:
                return
            items[key] = (value, size)
            self.bytes += size
            while len(items) > self.max_entries or self.bytes > self.max_bytes:
                _, (_, dropped) = items.popitem(last=False)
                self.bytes -= dropped

    def pop(self, key: K) -> V | None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is None:
                return None
            self.bytes -= item[1]
            return item[0]
