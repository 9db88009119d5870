"""Pending state of a block being executed, with a journal per transaction.

Values are held decoded (plain dicts, lists, ints, strings, bytes) while a block runs and
encoded once, at the end, for the keys that changed. A transaction's writes go to its own
journal first, so a failed transaction is undone by dropping the journal: nothing it
wrote reaches the block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tally import codec

_DELETED = object()


class Raw:
    """A value already in its canonical encoding (contract storage, written by the VM):
    kept as bytes so it is never decoded and encoded again."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raw) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"Raw({self.data!r})"


class StateReader(Protocol):
    """Reads of state only (what a committed view, such as a node's reader, offers)."""

    def get(self, key: bytes) -> Any | None: ...


class StateAccess(StateReader, Protocol):
    """What a module's functions need of state: :class:`BlockState` for transactions,
    :class:`tally.exec.module.HostState` for contracts' host calls."""

    def put(self, key: bytes, value: Any) -> None: ...
    def delete(self, key: bytes) -> None: ...


class BlockState:
    def __init__(self, read_committed: Callable[[bytes], Any | None]) -> None:
        self._read_committed = read_committed
        self._block: dict[bytes, Any] = {}
        self._tx: dict[bytes, Any] | None = None

    # Reads and writes, as seen by the running transaction.
    def get(self, key: bytes) -> Any | None:
        if self._tx is not None and key in self._tx:
            value = self._tx[key]
            return None if value is _DELETED else value
        if key in self._block:
            value = self._block[key]
            return None if value is _DELETED else value
        return self._read_committed(key)

    def put(self, key: bytes, value: Any) -> None:
        target = self._tx if self._tx is not None else self._block
        target[key] = value

    def delete(self, key: bytes) -> None:
        target = self._tx if self._tx is not None else self._block
        target[key] = _DELETED

    # Transaction boundaries.
    def begin(self) -> None:
        if self._tx is not None:
            raise RuntimeError("a transaction is already open")
        self._tx = {}

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("no open transaction")
        self._block.update(self._tx)
        self._tx = None

    def rollback(self) -> None:
        self._tx = None

    # End of block.
    def changes(self) -> dict[bytes, bytes | None]:
        """Encoded writes of the block: key → canonical value bytes, or None for a delete."""
        if self._tx is not None:
            raise RuntimeError("a transaction is still open")
        return {
            key: None if value is _DELETED
            else value.data if type(value) is Raw else codec.encode_trusted(value)
            for key, value in self._block.items()
        }

    def decoded_changes(self) -> dict[bytes, Any | None]:
        return {k: (None if v is _DELETED else v) for k, v in self._block.items()}
