"""Storage as the VM sees it: a read-only backend, and a write overlay with checkpoints.

Key layout (all keys are bytes; ``<name>`` is the contract name, ``<field>`` a
storage field declared in the contract class, ``<key>`` the deterministic CBOR
encoding of a map key)::

    c/<name>/!id              CBOR bytes: code id, SHA-256 of the UTF-8 source
    c/<name>/!src             CBOR text: the contract source
    c/<name>/<field>          a Var's value
    c/<name>/<field>/<key>    one entry of a Map

Contract names cannot contain ``/`` and field names are Python identifiers, so a
field never collides with the ``!`` entries or with another field's map entries.
Values are canonical CBOR (:mod:`tally.vm.values`). A ``None`` in a write set
means "delete this key".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .values import UINT_READ, UINT_SIZE, decode


@runtime_checkable
class StorageBackend(Protocol):
    """What the executor hands the VM: committed state, read-only."""

    def get(self, key: bytes) -> bytes | None:
        """The stored bytes under ``key``, or ``None`` if absent."""
        ...


def contract_prefix(name: str) -> bytes:
    return b"c/" + name.encode("ascii") + b"/"


def code_id_key(name: str) -> bytes:
    return contract_prefix(name) + b"!id"


def source_key(name: str) -> bytes:
    return contract_prefix(name) + b"!src"


_MISSING = object()


class Overlay:
    """Buffered writes over a backend, with a journal for nested checkpoints.

    Reads see the overlay first. Once a checkpoint has been taken, every write
    records the previous overlay entry in a journal, so rolling back to a checkpoint
    (a journal length) undoes exactly the writes made since, in O(writes). Writes
    made before the first checkpoint are never rolled back (a failure there drops
    the whole overlay), so until then there is no journal (``None``) and writes
    skip it. Decoded scalars are cached per key because a contract usually reads
    the same few keys several times per call.

    Decoding is charged: ``on_decode``, when given, is called with every value
    :meth:`load` decodes other than an unsigned int, except str and bytes under
    64 encoded bytes (the read's flat charge covers those). A list or dict is
    decoded afresh on every read (each read hands out a copy the contract may
    keep), so it is charged on every read; a scalar is cached, so it is charged on
    the read that decodes it. The cache and the calls depend only on the
    execution's own reads and writes, so the charges are the same on every node.
    """

    __slots__ = ("backend", "writes", "journal", "values", "reads", "on_decode")

    def __init__(
        self, backend: StorageBackend, on_decode: Callable[[Any], None] | None = None
    ) -> None:
        self.backend = backend
        self.writes: dict[bytes, bytes | None] = {}
        self.journal: list[tuple[bytes, Any]] | None = None
        self.values: dict[bytes, Any] = {}
        self.reads: dict[bytes, bytes | None] = {}
        self.on_decode = on_decode

    def get_raw(self, key: bytes) -> bytes | None:
        writes = self.writes
        if key in writes:
            return writes[key]
        reads = self.reads
        if key in reads:
            return reads[key]
        raw = self.backend.get(key)
        if raw is not None and type(raw) is not bytes:
            raw = bytes(raw)
        reads[key] = raw
        return raw

    def get_value(self, key: bytes) -> Any:
        """The decoded value, or ``_MISSING``. Lists and dicts come back as fresh copies."""
        value = self.values.get(key, _MISSING)
        if value is not _MISSING:
            return value
        return self.load(key)

    def load(self, key: bytes) -> Any:
        """:meth:`get_value` for a key the caller found missing from ``values``, the
        cache of decoded scalars (the VM's readers look there first themselves)."""
        values = self.values
        # get_raw, inlined
        writes = self.writes
        if key in writes:
            raw = writes[key]
        else:
            reads = self.reads
            if key in reads:
                raw = reads[key]
            else:
                raw = self.backend.get(key)
                if raw is not None and type(raw) is not bytes:
                    raw = bytes(raw)
                reads[key] = raw
        if raw is None:
            return _MISSING
        first = raw[0]
        if first < 0x1C and len(raw) == UINT_SIZE[first]:
            # an unsigned int (most stored values are): decode's first branch, inlined
            value = first if first < 0x18 else UINT_READ[first](raw, 1)[0]
        else:
            value = decode(raw)
            t = type(value)
            if not (t is int or t is str or t is bytes or t is bool or value is None):
                if self.on_decode is not None:
                    self.on_decode(value)
                return value
            if len(raw) >= 64 and self.on_decode is not None:
                self.on_decode(value)
        values[key] = value
        return value

    def put(self, key: bytes, raw: bytes | None, value: Any = _MISSING) -> None:
        """Write encoded bytes (``None`` deletes); ``value`` seeds the read cache."""
        writes = self.writes
        journal = self.journal
        if journal is not None:
            journal.append((key, writes.get(key, _MISSING)))
        writes[key] = raw
        t = type(value)
        if raw is not None and (t is int or t is str or t is bytes or t is bool):
            self.values[key] = value
        else:
            self.values.pop(key, None)

    def checkpoint(self) -> int:
        journal = self.journal
        if journal is None:
            journal = self.journal = []
        return len(journal)

    def rollback(self, checkpoint: int) -> None:
        journal = self.journal
        if journal is None:  # no checkpoint was taken: nothing to roll back to
            return
        writes = self.writes
        values = self.values
        while len(journal) > checkpoint:
            key, previous = journal.pop()
            if previous is _MISSING:
                del writes[key]
            else:
                writes[key] = previous
            values.pop(key, None)

    def write_set(self) -> dict[bytes, bytes | None]:
        """Final writes, sorted by key so the result does not depend on write order."""
        # Keys are distinct, so sorting the pairs sorts by key alone.
        return dict(sorted(self.writes.items()))


MISSING = _MISSING


class DictStorage:
    """A dict-backed :class:`StorageBackend`, for tests, benchmarks and tools.

    :meth:`apply` commits a write set the way an executor would.
    """

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def apply(self, write_set: dict[bytes, bytes | None]) -> None:
        for key, raw in write_set.items():
            if raw is None:
                self.data.pop(key, None)
            else:
                self.data[key] = raw
