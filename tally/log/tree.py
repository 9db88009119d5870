"""An append-only RFC 9162 Merkle log over a pluggable node store.

The store keeps the hash of every *perfect* subtree, keyed ``(level, index)``:
level 0 holds the leaf hashes and node ``(l, i)`` covers leaves
``[i * 2**l, (i + 1) * 2**l)``. A perfect subtree never changes once its last
leaf is appended, so every node is written exactly once and the store is itself
append-only. The hash of any tree of size ``n`` — now or in the past — is a fold
of the at most ``log2(n)`` perfect subtrees that ``n`` decomposes into (one per
set bit of ``n``), so roots, inclusion proofs and consistency proofs at any size
cost ``O(log n)`` store reads. The right edge of a non-perfect tree is composed on
the fly, as Trillian's and transparency-dev's compact ranges do.

In memory the log keeps only its *frontier* (the compact range ``[0, size)``: one
hash per set bit of ``size``). It is reloaded from the store with ``O(log n)``
reads at start, so restarting a node never reads its leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Protocol, runtime_checkable

from tally.log.merkle import HashFn

__all__ = ["NodeStore", "DictNodeStore", "MerkleLog", "StoreError"]

NodeKey = tuple[int, int]


class StoreError(RuntimeError):
    """The node store lacks a node the log's size says it must have: the store and
    the persisted size disagree (lost write, wrong database, wrong size)."""


@runtime_checkable
class NodeStore(Protocol):
    """Where perfect-subtree hashes live. Kept to two methods so that a SQLite
    table ``(level, idx, hash)`` written inside the node's own block transaction
    can implement it.

    ``put_many`` must replace an existing key (``INSERT OR REPLACE``): if a node
    crashed after writing nodes but before persisting its size, the same
    positions are written again on the next append.
    """

    def get(self, level: int, index: int) -> bytes | None: ...

    def put_many(self, items: list[tuple[NodeKey, bytes]]) -> None: ...


class DictNodeStore:
    """An in-memory :class:`NodeStore`, for tests, tools and verifiers that rebuild
    a tree from a bundle.

    Nodes live in one list per level (a log writes each level left to right), so a
    million-leaf tree is two million list slots rather than two million tuple-keyed
    dict entries, which the garbage collector would have to scan over and over.
    Writes out of order (never made by :class:`MerkleLog`) go to a side dict.
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []
        self._other: dict[NodeKey, bytes] = {}

    def get(self, level: int, index: int) -> bytes | None:
        if level >= 0 and index >= 0:
            try:
                return self._levels[level][index]
            except IndexError:
                pass
        return self._other.get((level, index))

    def put_many(self, items: list[tuple[NodeKey, bytes]]) -> None:
        levels, other = self._levels, self._other
        for (level, index), value in items:
            while len(levels) <= level:
                levels.append([])
            row = levels[level] if level >= 0 else None
            if row is not None and index == len(row):
                row.append(value)
                if other:
                    other.pop((level, index), None)
            elif row is not None and 0 <= index < len(row):
                row[index] = value
            else:
                other[(level, index)] = value

    @property
    def nodes(self) -> dict[NodeKey, bytes]:
        """A snapshot of every stored node, keyed ``(level, index)``."""
        out = {(lv, i): h for lv, row in enumerate(self._levels) for i, h in enumerate(row)}
        for key, value in self._other.items():
            out.setdefault(key, value)
        return out

    def __len__(self) -> int:
        return len(self.nodes)


class MerkleLog:
    """An RFC 9162 log: append leaves, get roots and proofs at any size.

    The caller persists :attr:`size` (e.g. in the block header row written in the
    same transaction as the nodes) and passes it back on restart. Not thread-safe:
    a node appends from its single block-execution thread.
    """

    def __init__(self, hash_fn: HashFn, store: NodeStore, size: int = 0) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        self._h = hash_fn
        self._store = store
        self._size = size
        self._empty = hash_fn(b"")
        self._hash_size = len(self._empty)
        # _frontier[l] is the hash of perfect node (l, (size >> l) - 1) when bit l
        # of size is set, else None.
        frontier: list[bytes | None] = []
        for level in range(size.bit_length()):
            if size >> level & 1:
                frontier.append(self._get(level, (size >> level) - 1))
            else:
                frontier.append(None)
        self._frontier = frontier
        self._root: bytes | None = None  # the current root, computed once per size

    # -- reading ---------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hash_fn(self) -> HashFn:
        return self._h

    def _get(self, level: int, index: int) -> bytes:
        value = self._store.get(level, index)
        if value is None:
            raise StoreError(
                f"node ({level}, {index}) is missing from the store of a log of size {self._size}"
            )
        return value

    def _check_size_arg(self, size: int, what: str = "size") -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"{what} must be a non-negative int, got {size!r}")
        if size > self._size:
            raise ValueError(f"{what} {size} is beyond the log's size {self._size}")

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the tree of the first ``size`` leaves (default: all)."""
        if size is None or size == self._size:
            if self._root is None:
                self._root = self._fold_frontier()
            return self._root
        self._check_size_arg(size)
        return self._range_hash(0, size)

    def _fold_frontier(self) -> bytes:
        h = self._h
        acc: bytes | None = None
        for node in self._frontier:
            if node is not None:
                acc = node if acc is None else h(b"\x01" + node + acc)
        return self._empty if acc is None else acc

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)``, where ``lo`` is a multiple of a power of two
        at least ``hi - lo`` (true of every subtree the RFC's split rule produces),
        from at most ``log2(hi - lo) + 1`` perfect nodes."""
        n = hi - lo
        if n == 0:
            return self._empty
        if n & (n - 1) == 0:
            level = n.bit_length() - 1
            return self._get(level, lo >> level)
        h = self._h
        acc: bytes | None = None
        # Perfect pieces from the right (smallest) to the left (largest).
        end = hi
        for level in range(n.bit_length()):
            if n >> level & 1:
                start = end - (1 << level)
                node = self._get(level, start >> level)
                acc = node if acc is None else h(b"\x01" + node + acc)
                end = start
        assert acc is not None
        return acc

    def leaf_hash_at(self, index: int) -> bytes:
        """The stored leaf hash (``h(0x00 || data)``) at ``index``."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self._size:
            raise IndexError(f"leaf index {index!r} not in [0, {self._size})")
        return self._get(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf-side hash first."""
        if size is None:
            size = self._size
        self._check_size_arg(size)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
            raise IndexError(f"leaf index {index!r} not in [0, {size})")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)  # largest power of 2 < hi - lo
            mid = lo + k
            if index < mid:
                path.append(self._range_hash(mid, hi))
                hi = mid
            else:
                level = k.bit_length() - 1
                path.append(self._get(level, lo >> level))
                lo = mid
        path.reverse()
        return path

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]); empty when ``size1`` is 0 or
        equal to ``size2``."""
        if size2 is None:
            size2 = self._size
        self._check_size_arg(size2, "size2")
        self._check_size_arg(size1, "size1")
        if size1 > size2:
            raise ValueError(f"size1 {size1} > size2 {size2}")
        if size1 == 0 or size1 == size2:
            return []
        path: list[bytes] = []
        lo, hi, m = 0, size2, size1
        complete = True  # the RFC's b: is the subtree a complete subtree of the old tree?
        while m != hi - lo:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            mid = lo + k
            if m <= k:
                path.append(self._range_hash(mid, hi))
                hi = mid
            else:
                level = k.bit_length() - 1
                path.append(self._get(level, lo >> level))
                lo = mid
                m -= k
                complete = False
        if not complete:
            path.append(self._range_hash(lo, hi))
        path.reverse()
        return path

    def prefix_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from ``size1`` with its seed always present (see
        :func:`tally.log.merkle.roots_from_prefix_proof`): evidence, from this
        tree, of what a checkpoint of ``size1`` must have said."""
        if size2 is None:
            size2 = self._size
        proof = self.consistency_proof(size1, size2)
        if 0 < size1 < size2 and size1 & (size1 - 1) == 0:
            proof.insert(0, self.root(size1))
        return proof

    # -- writing ---------------------------------------------------------------

    def append(self, leaf_data: bytes) -> int:
        """Append one leaf; returns its index."""
        return self.append_many((leaf_data,))

    def append_many(self, leaves: Sequence[bytes] | Iterable[bytes]) -> int:
        """Append leaves in order, writing all new nodes with one ``put_many``;
        returns the index of the first one.

        Works level by level: at each level the newly completed nodes form one
        contiguous run, so each level is one list comprehension of hash calls
        (one call per node) instead of a per-leaf carry loop.
        """
        h = self._h
        first = self._size
        level_hashes = [h(b"\x00" + d) for d in leaves]
        count = len(level_hashes)
        if count == 0:
            return first
        new_size = first + count
        items: list[tuple[NodeKey, bytes]] = list(
            zip(zip(repeat(0), range(first, new_size)), level_hashes, strict=True)
        )
        frontier = self._frontier
        new_frontier: list[bytes | None] = list(frontier) + [None] * (
            new_size.bit_length() - len(frontier)
        )
        level = 0
        start = first  # index (at this level) of level_hashes[0]
        cur = level_hashes
        while cur:
            if start & 1:
                # The left sibling of the first new node is complete and old: it is
                # the old frontier's node at this level.
                left = frontier[level]
                assert left is not None
                cur = [left, *cur]
                start -= 1
            if len(cur) & 1:
                new_frontier[level] = cur[-1]
            else:
                new_frontier[level] = None
            pairs = len(cur) >> 1
            if not pairs:
                break
            parents = [h(b"\x01" + cur[j] + cur[j + 1]) for j in range(0, pairs << 1, 2)]
            level += 1
            start >>= 1
            items.extend(zip(zip(repeat(level), range(start, start + pairs)), parents, strict=True))
            cur = parents
        self._store.put_many(items)
        self._frontier = new_frontier
        self._size = new_size
        self._root = None
        return first
