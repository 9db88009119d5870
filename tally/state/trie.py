"""The state commitment: a 16-ary Merkle trie over hashed keys, with state proofs.

Every block header carries :meth:`StateTrie.root`, so anyone holding a root can check,
from a short proof, what one key holds now ("who controls asset X, how much is
pledged") or that the key holds nothing. ``docs/state.md`` is the specification; in
brief, with ``H`` the chain suite's hash (32-byte digests):

* A key lives at path ``H(key)``, read as 64 nibbles (high nibble of each byte first).
* The trie over a set of leaves is defined recursively, slot by slot from the root::

      T(slot) = EMPTY                          no leaf under the slot
              = H(0x00 || H(key) || H(value))  exactly one leaf under the slot
              = H(0x01 || present || T(slot+i) for each occupied child i, in order)
                                               two or more leaves

  ``present`` is a 16-bit big-endian mask (bit ``1 << i`` set when child ``i`` is
  not EMPTY). ``EMPTY`` is 32 zero bytes (no hash output equals it), and it is also
  the root of the empty state. So a leaf sits at the shallowest slot where its path
  prefix is unique, every internal node covers at least two leaves, and the shape,
  hence the root, depends only on the set of (key, value) pairs: never on the order
  or the batching of writes (history independence).

* A proof lists, from the root down, the non-empty sibling hashes at each internal
  node on the key's path, and ends in one of three ways: the key's own leaf
  (``present``), an empty slot (``absent-empty``), or another key's leaf occupying
  the slot that the key would need (``absent-leaf``).

Nodes are persisted by the caller (the state store) under their slot path, one byte
per nibble (the root under ``b""``); :meth:`StateTrie.take_dirty` hands over what a
batch changed so that it is written inside the block's own transaction. The trie
reads nodes lazily through a bounded cache, so opening a large state is instant.
"""

from __future__ import annotations

from binascii import hexlify
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from operator import eq, itemgetter
from typing import Any, Literal, Protocol

from tally.errors import VerificationFailed

__all__ = [
    "DEFAULT_CACHE_NODES",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_DEPTH",
    "DictTrieStore",
    "HashFn",
    "ProofKind",
    "StateProof",
    "StateProofError",
    "StateTrie",
    "TrieCorruptError",
    "TrieStore",
    "key_path",
    "verify_state_proof",
]

#: A hash function: bytes in, 32-byte digest out (the chain suite's hash).
HashFn = Callable[[bytes], bytes]

#: Digest size the trie is defined for (both suites, SHA-256 and SM3, give 32 bytes).
HASH_SIZE = 32
#: Nibbles in a key path: a leaf sits at depth 0..64, an internal node at 0..63.
MAX_DEPTH = 2 * HASH_SIZE
#: The hash of an empty slot, and the root of the empty state. No digest equals it
#: (finding one would be a preimage of zero), so it cannot be confused with a node.
EMPTY_ROOT = bytes(HASH_SIZE)

_EMPTY = EMPTY_ROOT
_LEAF_TAG = b"\x00"
_NODE_TAG = b"\x01"
# key_path: hex digit -> nibble value, so one translate() turns a digest into a path.
_HEX_TO_NIBBLE = bytes.maketrans(b"0123456789abcdef", bytes(range(16)))
# _NIBBLE[i] is the one-byte path step i; _NIBBLE[16] is an upper bound for bisection.
_NIBBLE = [bytes((i,)) for i in range(17)]
_HEX_DIGITS = "0123456789abcdef"

#: How many decoded internal nodes a trie keeps in memory unless told otherwise: all of
#: a 1,000,000-key trie's top five levels and most of the sixth, about 100 MB.
DEFAULT_CACHE_NODES = 1 << 18


def key_path(hash_fn: HashFn, key: bytes) -> bytes:
    """The 64-nibble path of ``key``, one byte (0..15) per nibble.

    This is also the form of the store's node keys (a prefix of some key path), which
    keeps them sortable and lets a store find a subtree by prefix.
    """
    return _nibbles(hash_fn(key))


def _nibbles(digest: bytes) -> bytes:
    return hexlify(digest).translate(_HEX_TO_NIBBLE)


class TrieCorruptError(RuntimeError):
    """The node store holds something the trie never writes: a missing or malformed
    node. The state cannot be trusted; the node must be restored, not patched."""


# --------------------------------------------------------------------------------------
# Node store
# --------------------------------------------------------------------------------------


class TrieStore(Protocol):
    """Read side of the node store; the trie never writes to it (see ``take_dirty``).

    Records are keyed by slot path (one byte per nibble; the root at ``b""``):

    * a leaf record is ``0x00 || H(key) || H(value)`` (65 bytes): the leaf hash's
      preimage;
    * an internal record is ``0x01 || present || hashes || leaves``: the node hash's
      preimage (``present`` is a 16-bit big-endian mask, bit ``1 << i`` set when child
      ``i`` is occupied, then the occupied children's hashes in nibble order), followed
      by ``leaves``, the 16-bit mask of the children that are leaves.
    """

    def get(self, path: bytes) -> bytes | None:
        """The record at ``path``, or None when there is none."""
        ...


class DictTrieStore:
    """An in-memory :class:`TrieStore`, for tests, tools and benchmarks."""

    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}

    def get(self, path: bytes) -> bytes | None:
        return self.records.get(path)

    def write(self, changes: list[tuple[bytes, bytes | None]]) -> None:
        """Persist the output of :meth:`StateTrie.take_dirty` (None deletes)."""
        records = self.records
        for path, record in changes:
            if record is None:
                records.pop(path, None)
            else:
                records[path] = record


class _Node:
    """An internal node as held in memory.

    ``buf`` is the node hash's preimage, ``0x01 || present || child hashes``, kept as a
    bytearray so that a child is replaced, inserted or removed in place; ``present``
    and ``leaves`` are the two masks as ints. Child ``i``'s hash starts at
    ``3 + 32 * popcount(present & ((1 << i) - 1))``.
    """

    __slots__ = ("buf", "present", "leaves")

    def __init__(self, buf: bytearray, present: int, leaves: int) -> None:
        self.buf = buf
        self.present = present
        self.leaves = leaves

    def children(self) -> list[tuple[int, bytes]]:
        """(nibble, hash) of the occupied children, in nibble order."""
        data = bytes(self.buf)
        out = []
        offset = 3
        mask = self.present
        while mask:
            low = mask & -mask
            out.append((low.bit_length() - 1, data[offset : offset + HASH_SIZE]))
            offset += HASH_SIZE
            mask ^= low
        return out


def _decode_node(path: bytes, record: bytes | None) -> _Node:
    if record is None or len(record) < 5 or record[0] != 1:
        raise TrieCorruptError(f"no internal node at path {path.hex()}")
    present = int.from_bytes(record[1:3], "big")
    leaves = int.from_bytes(record[-2:], "big")
    if len(record) != 5 + HASH_SIZE * present.bit_count() or leaves & ~present or not present:
        raise TrieCorruptError(f"malformed internal node at path {path.hex()}")
    return _Node(bytearray(record[:-2]), present, leaves)


def _corrupt_leaf(path: bytes) -> TrieCorruptError:
    return TrieCorruptError(f"no leaf at path {path.hex()}")


_LEAF_SIZE = 1 + 2 * HASH_SIZE


# --------------------------------------------------------------------------------------
# The trie
# --------------------------------------------------------------------------------------


class StateTrie:
    """The authenticated state commitment over a node store.

    Single-threaded. The caller's cycle per block is::

        trie.update(block_changes)          # whole block as one batch
        header.state_root = trie.root()
        store.write_in_block_transaction(trie.take_dirty())

    and the records from ``take_dirty`` must be persisted before the trie is used
    again, because the trie then reads them back from the store. ``discard`` drops
    updates that were not taken (a rejected proposal).

    ``cache_nodes`` bounds the decoded internal nodes held in memory (each costs about
    its record size plus ~250 bytes); the deepest are evicted first, as the top levels
    are on every key's path.
    """

    def __init__(
        self, hash_fn: HashFn, store: TrieStore, *, cache_nodes: int = DEFAULT_CACHE_NODES
    ) -> None:
        if len(hash_fn(b"")) != HASH_SIZE:
            raise ValueError(f"the state trie needs a {HASH_SIZE}-byte hash")
        if cache_nodes < 0:
            raise ValueError("cache_nodes must be >= 0")
        self._hash = hash_fn
        self._store = store
        self._cache_limit = cache_nodes
        # One dict per depth, so that eviction can drop the deepest (least shared)
        # nodes first: the top levels are on every path and stay.
        self._cache: list[dict[bytes, _Node]] = [{} for _ in range(MAX_DEPTH)]
        # Records written by update() and not yet handed over by take_dirty().
        self._pending: dict[bytes, bytes | None] = {}
        self._root = _EMPTY
        self._root_is_leaf = False
        self._open_root()

    def _open_root(self) -> None:
        """Recover the root from the record at ``b""``: one read and one hash."""
        record = self._store.get(b"")
        if record is None:
            self._root, self._root_is_leaf = _EMPTY, False
        elif record[:1] == _LEAF_TAG:
            if len(record) != _LEAF_SIZE:
                raise _corrupt_leaf(b"")
            self._root, self._root_is_leaf = self._hash(record), True
        else:
            node = _decode_node(b"", record)
            self._cache[0][b""] = node
            self._root, self._root_is_leaf = self._hash(bytes(node.buf)), False

    # ----- public API -----------------------------------------------------------------

    def root(self) -> bytes:
        """The state root: what a block header commits to."""
        return self._root

    def update(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply one block's writes (``None`` deletes) as a single batch.

        The changes are sorted by key path and walked down the trie together, so each
        node on the way is loaded once and rehashed once, however many of the batch's
        keys lie under it. Deleting an absent key is a no-op.
        """
        if not changes:
            return
        h = self._hash
        staged: list[tuple[bytes, bytes, bytes | None, bytes | None]] = []
        for key, value in changes.items():
            key_hash = h(key)
            path = hexlify(key_hash).translate(_HEX_TO_NIBBLE)
            if value is None:
                staged.append((path, key_hash, None, None))
            else:
                record = _LEAF_TAG + key_hash + h(value)
                staged.append((path, key_hash, record, h(record)))
        staged.sort(key=itemgetter(0))
        paths = [s[0] for s in staged]
        if any(map(eq, paths, paths[1:])):
            raise ValueError("two keys in the batch have the same hash")

        batch = _Batch(self, staged, paths)
        try:
            if self._root == _EMPTY or self._root_is_leaf:
                new_root, leaf = batch.resettle(b"", 0, len(staged), self._root_is_leaf)
            else:
                new_root, leaf = batch.apply(b"", 0, len(staged))
        except BaseException:
            # Nodes are updated in place in the cache; after a failure, forget them all
            # (what is pending or stored is still intact) and start cold.
            self._drop_cache()
            raise
        self._root = _EMPTY if new_root is None else new_root
        self._root_is_leaf = leaf is not None
        if self._pending:
            self._pending.update(batch.writes)
        else:
            self._pending = batch.writes
        self._trim_cache()

    @property
    def cached_nodes(self) -> int:
        """How many decoded internal nodes are held in memory now (for metrics)."""
        return sum(map(len, self._cache))

    def take_dirty(self) -> list[tuple[bytes, bytes | None]]:
        """The records changed since the last call, as ``(path, record or None)``,
        sorted by path; None means delete. Persist them before using the trie again."""
        dirty = sorted(self._pending.items())
        self._pending = {}
        return dirty

    def discard(self) -> None:
        """Forget every update not yet handed over by ``take_dirty`` and return to the
        root that the store holds (a block that was executed but not committed)."""
        self._pending = {}
        self._drop_cache()
        self._open_root()

    def prove(self, key: bytes) -> StateProof:
        """A proof of the current value of ``key``, or of its absence."""
        key_hash = self._hash(key)
        path = _nibbles(key_hash)
        if self._root == _EMPTY:
            return StateProof("absent-empty", ())
        levels: list[tuple[tuple[int, bytes], ...]] = []
        depth = 0
        if not self._root_is_leaf:
            while True:
                node = self._node(path[:depth])
                step = path[depth]
                levels.append(tuple(c for c in node.children() if c[0] != step))
                depth += 1
                if not node.present >> step & 1:
                    return StateProof("absent-empty", tuple(levels))
                if node.leaves >> step & 1:
                    break
        leaf = self._read_leaf(path[:depth])
        if leaf[1 : 1 + HASH_SIZE] == key_hash:
            return StateProof("present", tuple(levels))
        other = (leaf[1 : 1 + HASH_SIZE], leaf[1 + HASH_SIZE :])
        return StateProof("absent-leaf", tuple(levels), other)

    # ----- node access ----------------------------------------------------------------

    def _record(self, path: bytes) -> bytes | None:
        """The record at ``path`` as of the last update: pending (written or deleted)
        records first, then the store."""
        pending = self._pending
        if pending and path in pending:
            return pending[path]
        return self._store.get(path)

    def _node(self, path: bytes) -> _Node:
        cache = self._cache[len(path)]
        node = cache.get(path)
        if node is None:
            node = _decode_node(path, self._record(path))
            cache[path] = node
        return node

    def _read_leaf(self, path: bytes) -> bytes:
        record = self._record(path)
        if record is None or len(record) != _LEAF_SIZE or record[0] != 0:
            raise _corrupt_leaf(path)
        return record

    def _drop_cache(self) -> None:
        for level in self._cache:
            level.clear()

    def _trim_cache(self) -> None:
        """Evict the deepest nodes, oldest first, until the cache fits its limit."""
        excess = self.cached_nodes - self._cache_limit
        for level in reversed(self._cache):
            if excess <= 0:
                return
            if len(level) <= excess:
                excess -= len(level)
                level.clear()
            else:
                for path in list(islice(level, excess)):
                    del level[path]
                return


class _Batch:
    """One ``update`` call: the sorted changes, and the records they produce.

    ``items[i]`` is ``(path, key hash, leaf record or None, leaf hash or None)`` and
    ``paths[i]`` its path; the changes under one slot are a contiguous range ``lo:hi``.
    Each method returns the slot's new hash (None when empty) and, when the slot now
    holds a single leaf, that leaf's record, so that a parent left with only that leaf
    can hoist it (the shape rule: a lone leaf sits as high as it can).
    """

    __slots__ = ("trie", "hash", "items", "paths", "writes", "cache", "pending", "store_get")

    def __init__(
        self,
        trie: StateTrie,
        items: list[tuple[bytes, bytes, bytes | None, bytes | None]],
        paths: list[bytes],
    ) -> None:
        self.trie = trie
        self.hash = trie._hash
        self.items = items
        self.paths = paths
        self.writes: dict[bytes, bytes | None] = {}
        self.cache = trie._cache
        self.pending = trie._pending
        self.store_get = trie._store.get

    def apply(self, path: bytes, lo: int, hi: int) -> tuple[bytes | None, bytes | None]:
        """Apply ``items[lo:hi]`` under the internal node at ``path``."""
        depth = len(path)
        node = self.cache[depth].get(path)
        if node is None:
            node = self.trie._node(path)
        buf, present, leaves = node.buf, node.present, node.leaves
        items, paths, writes, pending = self.items, self.paths, self.writes, self.pending
        hoist: bytes | None = None  # the record of a leaf child, should this node go
        i = lo
        while i < hi:
            step = paths[i][depth]
            j = i + 1
            if j < hi and paths[j][depth] == step:
                j = bisect_left(paths, path + _NIBBLE[step + 1], j, hi)
            bit = 1 << step
            occupied = present & bit
            child = path + _NIBBLE[step]
            if occupied and not leaves & bit:
                new, leaf = self.apply(child, i, j)
            elif j - i > 1:
                new, leaf = self.resettle(child, i, j, occupied)
            else:
                # One change for a slot that is empty or holds a leaf. Inlined, because
                # it is nearly every change of a large batch: an overwrite, a delete or
                # an insert into an empty slot.
                _, key_hash, leaf, new = items[i]
                if not occupied:
                    if leaf is None:  # delete of an absent key
                        i = j
                        continue
                    writes[child] = leaf
                else:
                    if pending and child in pending:
                        existing = pending[child]
                    else:
                        existing = self.store_get(child)
                    if existing is None or existing[1:33] != key_hash:
                        new, leaf = self.resettle(child, i, j, True)  # another key's leaf
                    elif leaf != existing:
                        writes[child] = leaf  # the new leaf, or None to delete
            offset = 3 + 32 * (present & (bit - 1)).bit_count()
            if new is None:
                if occupied:
                    del buf[offset : offset + 32]
                    present ^= bit
                    leaves &= ~bit
            else:
                if occupied:
                    buf[offset : offset + 32] = new
                else:
                    buf[offset:offset] = new
                    present |= bit
                if leaf is None:
                    leaves &= ~bit
                else:
                    leaves |= bit
                    hoist = leaf
            i = j

        count = present.bit_count()
        if count == 0 or (count == 1 and leaves):
            # Fewer than two leaves left: the node goes, and a lone leaf moves up to
            # this slot (and maybe further, in the callers).
            self.cache[depth].pop(path, None)
            if count == 0:
                writes[path] = None
                return None, None
            child = path + _NIBBLE[leaves.bit_length() - 1]
            if hoist is None:  # the lone leaf was not touched by this batch
                hoist = self.trie._read_leaf(child)
            writes[child] = None
            writes[path] = hoist
            return bytes(buf[3:]), hoist
        buf[1:3] = present.to_bytes(2, "big")
        node.present, node.leaves = present, leaves
        preimage = bytes(buf)
        writes[path] = preimage + leaves.to_bytes(2, "big")
        return self.hash(preimage), None

    def resettle(
        self, path: bytes, lo: int, hi: int, occupied: int | bool
    ) -> tuple[bytes | None, bytes | None]:
        """Apply ``items[lo:hi]`` to the slot at ``path``, which is empty or holds one
        leaf: work out the leaves it holds now and lay them out from scratch."""
        existing = self.trie._read_leaf(path) if occupied else None
        items = self.items
        if hi - lo == 1:  # the common case, without building lists
            _, key_hash, record, leaf_hash = items[lo]
            if existing is None or existing[1 : 1 + HASH_SIZE] == key_hash:
                if record is None:  # delete (of the leaf, or of an absent key)
                    if existing is not None:
                        self.writes[path] = None
                    return None, None
                if record != existing:
                    self.writes[path] = record
                return leaf_hash, record
            if record is None:  # delete of an absent key; the other leaf stays
                return self.hash(existing), existing
        # A record and its leaf hash are None together (a delete), so these hashes are bytes.
        leaves: list[tuple[bytes, bytes, bytes]] = [
            (p, record, leaf_hash)  # pyright: ignore[reportAssignmentType]
            for p, _, record, leaf_hash in items[lo:hi]
            if record
        ]
        if existing is not None:
            existing_path = _nibbles(existing[1 : 1 + HASH_SIZE])
            k = bisect_left(self.paths, existing_path, lo, hi)
            if k == hi or self.paths[k] != existing_path:  # not overwritten by the batch
                leaves.append((existing_path, existing, self.hash(existing)))
                leaves.sort(key=itemgetter(0))
        if not leaves:
            if existing is not None:
                self.writes[path] = None
            return None, None
        if len(leaves) == 1:
            _, record, leaf_hash = leaves[0]
            if record != existing:
                self.writes[path] = record
            return leaf_hash, record
        return self.build(path, leaves), None

    def build(self, path: bytes, leaves: list[tuple[bytes, bytes, bytes]]) -> bytes:
        """Lay out two or more leaves (sorted by path) under a fresh node at ``path``."""
        depth = len(path)
        if depth >= MAX_DEPTH:
            raise ValueError("two keys have the same hash")
        hashes = []
        present = leaf_mask = 0
        i, n = 0, len(leaves)
        while i < n:
            step = leaves[i][0][depth]
            j = i + 1
            while j < n and leaves[j][0][depth] == step:
                j += 1
            child = path + _NIBBLE[step]
            if j - i == 1:
                _, record, leaf_hash = leaves[i]
                self.writes[child] = record
                hashes.append(leaf_hash)
                leaf_mask |= 1 << step
            else:
                hashes.append(self.build(child, leaves[i:j]))
            present |= 1 << step
            i = j
        preimage = _NODE_TAG + present.to_bytes(2, "big") + b"".join(hashes)
        self.cache[depth][path] = _Node(bytearray(preimage), present, leaf_mask)
        self.writes[path] = preimage + leaf_mask.to_bytes(2, "big")
        return self.hash(preimage)


# --------------------------------------------------------------------------------------
# Proofs
# --------------------------------------------------------------------------------------

ProofKind = Literal["present", "absent-empty", "absent-leaf"]
_KIND_CODES: dict[str, int] = {"present": 0, "absent-empty": 1, "absent-leaf": 2}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


class StateProofError(VerificationFailed, ValueError):
    """A state proof is malformed, or does not show what it is checked against.

    ``reason`` is one of the constants below, so callers can tell a garbled proof
    from a proof of something else without parsing messages.
    """

    MALFORMED = "malformed"
    WRONG_KIND = "wrong_kind"
    NOT_ON_PATH = "not_on_path"
    NOT_CANONICAL = "not_canonical"
    ROOT_MISMATCH = "root_mismatch"
    BAD_ARGUMENT = "bad_argument"


def _malformed(message: str) -> StateProofError:
    return StateProofError(StateProofError.MALFORMED, message)


def _is_hash(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_SIZE


@dataclass(frozen=True, slots=True)
class StateProof:
    """What one key holds under a root, or that it holds nothing.

    ``levels[d]`` lists the internal node at depth ``d`` on the key's path by its
    non-empty children other than the one on the path, as ``(nibble, hash)`` pairs in
    nibble order. The path continues below the last level into the terminal slot:
    the key's leaf (``present``; the verifier supplies the value), an empty slot
    (``absent-empty``), or the leaf of another key, given as ``other_leaf = (H(key),
    H(value))`` (``absent-leaf``). An instance is always well-formed: construction
    checks the shape, raising :class:`StateProofError`.
    """

    kind: ProofKind
    levels: tuple[tuple[tuple[int, bytes], ...], ...]
    other_leaf: tuple[bytes, bytes] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KIND_CODES:
            raise _malformed(f"unknown proof kind {self.kind!r}")
        if type(self.levels) is not tuple or len(self.levels) > MAX_DEPTH:
            raise _malformed(f"levels must be a tuple of at most {MAX_DEPTH} levels")
        for level in self.levels:
            if type(level) is not tuple:
                raise _malformed("each level must be a tuple of (nibble, hash) pairs")
            last = -1
            for pair in level:
                if type(pair) is not tuple or len(pair) != 2:
                    raise _malformed("each sibling must be a (nibble, hash) pair")
                nibble, digest = pair
                if type(nibble) is not int or not last < nibble <= 15:
                    raise _malformed("sibling nibbles must be increasing, within 0..15")
                if type(digest) is not bytes or len(digest) != HASH_SIZE or digest == _EMPTY:
                    raise _malformed(f"a sibling must be a non-empty {HASH_SIZE}-byte hash")
                last = nibble
        if self.kind == "absent-leaf":
            other = self.other_leaf
            if type(other) is not tuple or len(other) != 2 or not all(map(_is_hash, other)):
                raise _malformed("absent-leaf needs other_leaf = (key hash, value hash)")
        elif self.other_leaf is not None:
            raise _malformed(f"a {self.kind} proof has no other_leaf")

    # ----- compact canonical bytes ----------------------------------------------------
    #
    #   kind (1 byte: 0 present, 1 absent-empty, 2 absent-leaf) || depth (1 byte)
    #   || per level: siblings mask (u16 big-endian, bit 1 << i for nibble i)
    #                 || the sibling hashes in nibble order
    #   || for absent-leaf: H(other key) || H(other value)

    def to_bytes(self) -> bytes:
        """The compact canonical encoding: each proof has exactly one."""
        out = [bytes((_KIND_CODES[self.kind], len(self.levels)))]
        for level in self.levels:
            mask = 0
            for nibble, _ in level:
                mask |= 1 << nibble
            out.append(mask.to_bytes(2, "big"))
            out.extend(digest for _, digest in level)
        if self.other_leaf is not None:
            out.extend(self.other_leaf)
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> StateProof:
        """Parse :meth:`to_bytes` output; anything else raises StateProofError."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise _malformed("a proof encoding must be bytes")
        data = bytes(data)
        if len(data) < 2:
            raise _malformed("truncated header")
        kind = _CODE_KINDS.get(data[0])
        if kind is None:
            raise _malformed(f"unknown proof kind code {data[0]}")
        depth = data[1]
        if depth > MAX_DEPTH:
            raise _malformed(f"depth {depth} exceeds {MAX_DEPTH}")
        offset = 2
        levels = []
        for _ in range(depth):
            if offset + 2 > len(data):
                raise _malformed("truncated level")
            mask = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
            level = []
            for nibble in range(16):
                if mask >> nibble & 1:
                    if offset + HASH_SIZE > len(data):
                        raise _malformed("truncated sibling hash")
                    level.append((nibble, data[offset : offset + HASH_SIZE]))
                    offset += HASH_SIZE
            levels.append(tuple(level))
        other = None
        if kind == "absent-leaf":
            if offset + 2 * HASH_SIZE > len(data):
                raise _malformed("truncated other leaf")
            other = (
                data[offset : offset + HASH_SIZE],
                data[offset + HASH_SIZE : offset + 2 * HASH_SIZE],
            )
            offset += 2 * HASH_SIZE
        if offset != len(data):
            raise _malformed("trailing bytes after the proof")
        return cls(kind, tuple(levels), other)  # type: ignore[arg-type]

    # ----- JSON-able dict -------------------------------------------------------------
    #
    #   {"kind": "present" | "absent-empty" | "absent-leaf",
    #    "levels": [{"<hex nibble>": "<hex hash>", ...}, ...],      root first
    #    "other_leaf": {"key_hash": "<hex>", "value_hash": "<hex>"}}  absent-leaf only

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (lowercase hex), for APIs and evidence bundles."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "levels": [
                {_HEX_DIGITS[nibble]: digest.hex() for nibble, digest in level}
                for level in self.levels
            ],
        }
        if self.other_leaf is not None:
            out["other_leaf"] = {
                "key_hash": self.other_leaf[0].hex(),
                "value_hash": self.other_leaf[1].hex(),
            }
        return out

    @classmethod
    def from_dict(cls, data: Any) -> StateProof:
        """Parse :meth:`to_dict` output, strictly; anything else raises StateProofError."""
        if not isinstance(data, dict):
            raise _malformed("a proof must be a JSON object")
        kind = data.get("kind")
        expected = {"kind", "levels"} | ({"other_leaf"} if kind == "absent-leaf" else set())
        if set(data) != expected:
            raise _malformed(f"a {kind!r} proof has exactly the fields {sorted(expected)}")
        if kind not in _KIND_CODES:
            raise _malformed(f"unknown proof kind {kind!r}")
        raw_levels = data["levels"]
        if not isinstance(raw_levels, list) or len(raw_levels) > MAX_DEPTH:
            raise _malformed(f"levels must be a list of at most {MAX_DEPTH} objects")
        levels = []
        for raw in raw_levels:
            if not isinstance(raw, dict):
                raise _malformed("each level must be an object")
            level = []
            for digit, value in raw.items():
                if not isinstance(digit, str) or len(digit) != 1 or digit not in _HEX_DIGITS:
                    raise _malformed(f"a level key must be one lowercase hex digit, not {digit!r}")
                level.append((_HEX_DIGITS.index(digit), _hex_hash(value)))
            level.sort()
            levels.append(tuple(level))
        other = None
        if kind == "absent-leaf":
            raw_other = data["other_leaf"]
            if not isinstance(raw_other, dict) or set(raw_other) != {"key_hash", "value_hash"}:
                raise _malformed("other_leaf has exactly the fields key_hash, value_hash")
            other = (_hex_hash(raw_other["key_hash"]), _hex_hash(raw_other["value_hash"]))
        return cls(kind, tuple(levels), other)


def _hex_hash(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE or value.strip(_HEX_DIGITS) != "":
        raise _malformed(f"a hash must be {2 * HASH_SIZE} lowercase hex digits")
    return bytes.fromhex(value)


def verify_state_proof(
    hash_fn: HashFn, root: bytes, key: bytes, value: bytes | None, proof: StateProof
) -> None:
    """Check that, under ``root``, ``key`` holds exactly ``value`` (or nothing, when
    ``value`` is None). Returns None when it does; raises StateProofError otherwise.

    The proof's hashes are recomputed up to the root; beyond that, a few cheap checks
    reject shapes the trie never produces, so that a proof means one thing only.
    """
    if not isinstance(proof, StateProof):
        raise StateProofError(StateProofError.BAD_ARGUMENT, "proof must be a StateProof")
    if not _is_hash(root):
        raise StateProofError(StateProofError.BAD_ARGUMENT, f"root must be {HASH_SIZE} bytes")
    key_hash = hash_fn(key)
    path = _nibbles(key_hash)
    depth = len(proof.levels)
    if value is not None:
        if proof.kind != "present":
            raise StateProofError(
                StateProofError.WRONG_KIND, f"the proof shows the key absent ({proof.kind})"
            )
        current = hash_fn(_LEAF_TAG + key_hash + hash_fn(value))
    elif proof.kind == "present":
        raise StateProofError(StateProofError.WRONG_KIND, "the proof shows the key present")
    elif proof.kind == "absent-empty":
        current = _EMPTY
    else:
        other_key_hash, other_value_hash = proof.other_leaf  # type: ignore[misc]
        if other_key_hash == key_hash:
            raise StateProofError(
                StateProofError.WRONG_KIND, "the other leaf is the key's own leaf"
            )
        if _nibbles(other_key_hash)[:depth] != path[:depth]:
            raise StateProofError(
                StateProofError.NOT_ON_PATH, "the other leaf does not lie on the key's path"
            )
        current = hash_fn(_LEAF_TAG + other_key_hash + other_value_hash)

    for d in range(depth - 1, -1, -1):
        level = proof.levels[d]
        step = path[d]
        if d == depth - 1 and not level:
            # The bottom node would hold at most one leaf (or none): the trie
            # never keeps such a node.
            raise StateProofError(
                StateProofError.NOT_CANONICAL, "an internal node with fewer than two leaves"
            )
        # Rebuild the node's preimage: its occupied children in nibble order, with
        # the path's own child (unless that slot is the empty terminal) in its place.
        present = 0
        hashes = []
        pending = current != _EMPTY
        for nibble, digest in level:
            if nibble == step:
                raise StateProofError(
                    StateProofError.NOT_ON_PATH, f"a sibling at depth {d} sits on the key's path"
                )
            if pending and nibble > step:
                hashes.append(current)
                present |= 1 << step
                pending = False
            hashes.append(digest)
            present |= 1 << nibble
        if pending:
            hashes.append(current)
            present |= 1 << step
        current = hash_fn(_NODE_TAG + present.to_bytes(2, "big") + b"".join(hashes))
    if current != root:
        raise StateProofError(StateProofError.ROOT_MISMATCH, "the proof does not lead to the root")
