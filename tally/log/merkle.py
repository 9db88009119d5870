"""RFC 9162 Merkle tree hashing and proof verification, as pure functions.

This module is what an offline verifier (a court's expert, a regulator) runs, so it
is kept small enough to be read against the RFC line by line:

* ``leaf_hash`` / ``node_hash`` / ``empty_root`` are RFC 9162 §2.1.1 with the
  0x00 / 0x01 domain-separation prefixes (never optional: they are what stops a
  leaf from being passed off as an interior node).
* ``root_from_inclusion_proof`` is the §2.1.3.2 algorithm, step by step.
* ``root_from_consistency_proof`` is the §2.1.4.2 algorithm, step by step.

Every function takes the hash as a parameter (``HashFn``) instead of naming an
algorithm: the ``intl`` suite passes SHA-256 (which makes this exactly RFC 9162)
and the ``gm`` suite passes SM3 with the same prefixes and split rule.

Anything malformed raises :class:`ProofError` with a machine-readable ``reason``:
a verifier must be able to say *why* a proof failed, not merely that it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from hmac import compare_digest

from tally.errors import VerificationFailed

__all__ = [
    "HashFn",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "empty_root",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "root_from_consistency_proof",
    "verify_consistency",
    "roots_from_prefix_proof",
    "inclusion_proof_length",
    "consistency_proof_length",
]

#: A hash function: bytes in, fixed-size digest out (the chain suite's hash).
HashFn = Callable[[bytes], bytes]

_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(VerificationFailed, ValueError):
    """A proof, or the claim it is checked against, is invalid.

    ``reason`` is one of the ``ProofError.*`` constants, so callers (and tests) can
    tell a malformed proof from a root mismatch without parsing messages.
    """

    INDEX_OUT_OF_RANGE = "index_out_of_range"
    WRONG_PROOF_LENGTH = "wrong_proof_length"
    PROOF_NOT_CONSUMED = "proof_not_consumed"
    SIZE_ORDER = "size1_greater_than_size2"
    EMPTY_TREE_PROOF = "size1_zero_with_nonempty_proof"
    EQUAL_SIZES_PROOF = "equal_sizes_with_nonempty_proof"
    ROOT_MISMATCH = "root_mismatch"
    BAD_HASH_SIZE = "bad_hash_size"
    BAD_ARGUMENT = "bad_argument"


def leaf_hash(h: HashFn, data: bytes) -> bytes:
    """MTH of a one-leaf tree: ``h(0x00 || data)`` (RFC 9162 §2.1.1)."""
    return h(_LEAF + data)


def node_hash(h: HashFn, left: bytes, right: bytes) -> bytes:
    """Interior node: ``h(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return h(_NODE + left + right)


def empty_root(h: HashFn) -> bytes:
    """MTH of the empty tree: the hash of the empty string (RFC 9162 §2.1.1)."""
    return h(b"")


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes an inclusion proof for ``index`` in a tree of ``size`` has.

    Lets a producer or a bundle parser size-check a proof before hashing; the
    verifier itself detects a wrong length by walking the RFC algorithm.
    """
    if not 0 <= index < size:
        raise ProofError(ProofError.INDEX_OUT_OF_RANGE, f"index {index} not in [0, {size})")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(size1: int, size2: int) -> int:
    """How many hashes a consistency proof from ``size1`` to ``size2`` has."""
    if not 0 <= size1 <= size2:
        raise ProofError(ProofError.SIZE_ORDER, f"need 0 <= size1 <= size2, got {size1}, {size2}")
    if size1 == 0 or size1 == size2:
        return 0
    n = inclusion_proof_length(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    n -= shift
    return n if size1 == 1 << shift else n + 1


# Output size per hash function, so a verification does not spend a hash call on it.
# Bounded: a caller that builds a new lambda per call just misses the cache.
_SIZES: dict[HashFn, int] = {}
_HASH_TYPES = frozenset((bytes, bytearray))


def _hash_size(h: HashFn) -> int:
    try:
        return _SIZES[h]
    except (KeyError, TypeError):
        pass
    n = len(h(b""))
    if len(_SIZES) < 64:
        with suppress(TypeError):  # an unhashable callable is simply not cached
            _SIZES[h] = n
    return n


def _check_size(what: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(ProofError.BAD_HASH_SIZE, f"{what} must be {size} bytes, got {got}")


def _check_hashes(hashes: Sequence[bytes], size: int) -> None:
    # Fast path in C (type and length of every element); the slow path names the
    # first bad element.
    if set(map(type, hashes)) <= _HASH_TYPES and all(map(size.__eq__, map(len, hashes))):
        return
    for i, p in enumerate(hashes):
        _check_size(f"proof[{i}]", p, size)


def _check_int(what: str, value: int) -> None:
    # bool is an int subclass; a True "size" is a caller bug, not a tree of one.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofError(
            ProofError.BAD_ARGUMENT, f"{what} must be a non-negative int, got {value!r}"
        )


def root_from_inclusion_proof(
    h: HashFn, index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree
    of ``size`` leaves (RFC 9162 §2.1.3.2, steps 1–4 and the ``sn == 0`` check of
    step 5).

    Returning the root (instead of a bool) lets a caller that holds several roots
    (e.g. one per signed checkpoint) match it once.
    """
    return _root_from_inclusion(h, _hash_size(h), index, size, leaf, proof)


def _root_from_inclusion(
    h: HashFn, hs: int, index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    _check_int("index", index)
    _check_int("size", size)
    # Step 1.
    if index >= size:
        raise ProofError(ProofError.INDEX_OUT_OF_RANGE, f"leaf index {index} >= tree size {size}")
    _check_size("leaf hash", leaf, hs)
    _check_hashes(proof, hs)
    # Steps 2–3.
    fn, sn = index, size - 1
    r = bytes(leaf)
    # Step 4.
    for i, p in enumerate(proof):
        if sn == 0:
            raise ProofError(
                ProofError.PROOF_NOT_CONSUMED,
                f"{len(proof) - i} proof hash(es) left over after reaching the root "
                f"(proof has {len(proof)}, a proof for leaf {index} in a tree of {size} has {i})",
            )
        if fn & 1 or fn == sn:
            r = h(_NODE + p + r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h(_NODE + r + p)
        fn >>= 1
        sn >>= 1
    # Step 5 (the length half; the caller compares r with the root).
    if sn != 0:
        raise ProofError(
            ProofError.WRONG_PROOF_LENGTH,
            f"proof has {len(proof)} hash(es), too few for leaf {index} in a tree of {size} "
            f"(needs {inclusion_proof_length(index, size)})",
        )
    return r


def verify_inclusion(
    h: HashFn, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` in the tree of ``size`` leaves
    whose root is ``root``. Returns None; raises :class:`ProofError` otherwise.

    Raising (instead of returning False) means a forgotten check cannot be silently
    ignored by the caller.
    """
    hs = _hash_size(h)
    _check_size("root", root, hs)
    r = _root_from_inclusion(h, hs, index, size, leaf, proof)
    if not compare_digest(r, root):
        raise ProofError(
            ProofError.ROOT_MISMATCH,
            f"inclusion proof for leaf {index} in a tree of {size} gives root {r.hex()}, "
            f"expected {bytes(root).hex()}",
        )


def root_from_consistency_proof(
    h: HashFn, size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """The root of the ``size2`` tree implied by ``proof`` and the ``size1`` root
    ``root1``, after checking that ``proof`` reproduces ``root1`` (RFC 9162
    §2.1.4.2).

    Edge cases the RFC leaves to the caller (it assumes ``0 < size1 < size2``):
    ``size1 > size2`` is rejected; ``size1 == size2`` needs an empty proof and
    implies ``root1``; ``size1 == 0 < size2`` needs an empty proof but implies no
    root at all, so it raises here (use :func:`verify_consistency`, which accepts it
    when ``root1`` is the empty-tree root).
    """
    return _root_from_consistency(h, _hash_size(h), size1, size2, proof, root1)


def _root_from_consistency(
    h: HashFn, hs: int, size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    _check_int("size1", size1)
    _check_int("size2", size2)
    _check_size("root1", root1, hs)
    _check_hashes(proof, hs)
    if size1 > size2:
        raise ProofError(ProofError.SIZE_ORDER, f"size1 {size1} > size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofError(
                ProofError.EQUAL_SIZES_PROOF,
                f"sizes are equal ({size1}) but the proof has {len(proof)} hash(es); it must be empty",
            )
        return bytes(root1)
    if size1 == 0:
        if proof:
            raise ProofError(
                ProofError.EMPTY_TREE_PROOF,
                f"size1 is 0 but the proof has {len(proof)} hash(es); it must be empty",
            )
        raise ProofError(
            ProofError.BAD_ARGUMENT,
            "no root can be derived from the empty tree; use verify_consistency",
        )
    # Step 1.
    if not proof:
        raise ProofError(
            ProofError.WRONG_PROOF_LENGTH,
            f"empty consistency proof between sizes {size1} < {size2} "
            f"(needs {consistency_proof_length(size1, size2)})",
        )
    # Step 2.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    fr, sr = _consistency_walk(h, size1, size2, path, len(proof))
    if not compare_digest(fr, root1):
        raise ProofError(
            ProofError.ROOT_MISMATCH,
            f"consistency proof gives first root {fr.hex()}, expected {bytes(root1).hex()}",
        )
    return sr


def _consistency_walk(
    h: HashFn, size1: int, size2: int, path: list[bytes], proof_len: int
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3–7 without the root comparisons: the roots of the
    ``size1`` and ``size2`` trees that ``path`` (the proof with the first tree's
    seed hash at the front) implies. ``proof_len`` is only for error messages."""
    # Steps 3–4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for i in range(1, len(path)):
        c = path[i]
        if sn == 0:
            raise ProofError(
                ProofError.PROOF_NOT_CONSUMED,
                f"{len(path) - i} proof hash(es) left over after reaching the root "
                f"(proof has {proof_len}, a proof from {size1} to {size2} has "
                f"{consistency_proof_length(size1, size2)})",
            )
        if fn & 1 or fn == sn:
            fr = h(_NODE + c + fr)
            sr = h(_NODE + c + sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = h(_NODE + sr + c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError(
            ProofError.WRONG_PROOF_LENGTH,
            f"proof has {proof_len} hash(es), too few for sizes {size1} to {size2} "
            f"(needs {consistency_proof_length(size1, size2)})",
        )
    return fr, sr


def roots_from_prefix_proof(
    h: HashFn, size1: int, size2: int, prefix_proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The roots of the ``size1`` and ``size2`` trees implied by a *prefix proof*,
    for ``0 < size1 < size2``.

    A prefix proof is the RFC 9162 consistency proof with its seed always present:
    when ``size1`` is a power of two the RFC omits the first hash (the verifier
    already holds it as ``root1``); a prefix proof carries the larger tree's own
    hash of its first ``size1`` leaves there instead. It proves misbehaviour: if
    the implied ``size2`` root is a signed root, then (barring a hash collision)
    the implied ``size1`` root is that tree's true prefix, so a signed ``size1``
    root that differs from it cannot come from the same append-only log. (A failed
    ordinary consistency proof proves nothing: anyone can make a bad proof.)
    """
    _check_int("size1", size1)
    _check_int("size2", size2)
    if not 0 < size1 < size2:
        raise ProofError(ProofError.SIZE_ORDER, f"need 0 < size1 < size2, got {size1}, {size2}")
    hs = _hash_size(h)
    _check_hashes(prefix_proof, hs)
    want = consistency_proof_length(size1, size2) + (1 if size1 & (size1 - 1) == 0 else 0)
    if len(prefix_proof) < want:
        raise ProofError(
            ProofError.WRONG_PROOF_LENGTH,
            f"prefix proof has {len(prefix_proof)} hash(es), needs {want}",
        )
    return _consistency_walk(h, size1, size2, [bytes(p) for p in prefix_proof], len(prefix_proof))


def verify_consistency(
    h: HashFn, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1``
    with ``root1`` (RFC 9162 §2.1.4.2). Returns None; raises :class:`ProofError`.

    This is the append-only guarantee: two checkpoints that fail it cannot both
    come from an honest log.
    """
    hs = _hash_size(h)
    _check_size("root1", root1, hs)
    _check_size("root2", root2, hs)
    _check_int("size1", size1)
    _check_int("size2", size2)
    if size1 == 0 and size1 < size2:
        if proof:
            raise ProofError(
                ProofError.EMPTY_TREE_PROOF,
                f"size1 is 0 but the proof has {len(proof)} hash(es); it must be empty",
            )
        if not compare_digest(root1, empty_root(h)):
            raise ProofError(
                ProofError.ROOT_MISMATCH,
                f"root1 {bytes(root1).hex()} is not the empty-tree root {empty_root(h).hex()}",
            )
        return
    if size1 == size2 == 0 and not compare_digest(root1, empty_root(h)):
        raise ProofError(
            ProofError.ROOT_MISMATCH,
            f"root1 {bytes(root1).hex()} is not the empty-tree root {empty_root(h).hex()}",
        )
    r2 = _root_from_consistency(h, hs, size1, size2, proof, root1)
    if not compare_digest(r2, root2):
        raise ProofError(
            ProofError.ROOT_MISMATCH,
            f"consistency proof from {size1} to {size2} gives second root {r2.hex()}, "
            f"expected {bytes(root2).hex()}",
        )
