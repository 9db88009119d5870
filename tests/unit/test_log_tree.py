"""tally.log.tree.MerkleLog: the stored tree gives the RFC's roots and proofs at every
size, survives restarts, and reads only O(log n) nodes per operation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.log.merkle import (
    leaf_hash,
    roots_from_prefix_proof,
    verify_consistency,
    verify_inclusion,
)
from tally.log.tree import DictNodeStore, MerkleLog, NodeStore, StoreError

try:
    from test_log_reference import (
        LEAF_INPUTS,
        NODE_HASHES,
        ROOTS,
        ref_mth,
        ref_path,
        ref_proof,
        sha256,
        sm3,
    )
except ImportError:  # run as a package (pytest --import-mode=importlib)
    from tests.support.log_reference import (
        LEAF_INPUTS,
        NODE_HASHES,
        ROOTS,
        ref_mth,
        ref_path,
        ref_proof,
        sha256,
        sm3,
    )

FAST = settings(max_examples=40, deadline=None)


class CountingStore(DictNodeStore):
    """Counts reads and write batches, to pin the cost contract."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.batches = 0

    def get(self, level: int, index: int) -> bytes | None:
        self.reads += 1
        return super().get(level, index)

    def put_many(self, items) -> None:
        self.batches += 1
        super().put_many(items)


def build(lv: list[bytes], splits: list[int] | None = None, h=sha256, store=None) -> MerkleLog:
    log = MerkleLog(h, store if store is not None else DictNodeStore())
    i = 0
    for k in splits or []:
        log.append_many(lv[i : i + k])
        i += k
    if i < len(lv):
        log.append_many(lv[i:])
    return log


def leaves(n: int) -> list[bytes]:
    return [b"leaf-%d" % i for i in range(n)]


batches = st.lists(st.integers(1, 40), max_size=12)


# -- published vectors ------------------------------------------------------------


def test_roots_after_each_append_match_the_published_rfc6962_roots() -> None:
    log = MerkleLog(sha256, DictNodeStore())
    assert log.root() == ROOTS[0]
    for i, data in enumerate(LEAF_INPUTS):
        assert log.append(data) == i
        assert log.size == i + 1
        assert log.root() == ROOTS[i + 1]
    for size in range(9):
        assert log.root(size) == ROOTS[size]


def test_store_holds_exactly_the_published_perfect_subtree_hashes() -> None:
    store = DictNodeStore()
    build(LEAF_INPUTS, [3, 1, 4], store=store)
    want = {(level, i): h for level, row in enumerate(NODE_HASHES) for i, h in enumerate(row)}
    assert store.nodes == want


# -- against the naive reference ------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 300), splits=batches)
def test_roots_at_every_size_equal_the_reference(n, splits) -> None:
    lv = leaves(n)
    log = build(lv, splits)
    assert log.size == n
    for size in range(n + 1):
        assert log.root(size) == ref_mth(sha256, lv[:size])


@FAST
@given(data=st.data(), n=st.integers(1, 300), splits=batches)
def test_inclusion_proofs_equal_the_reference_and_verify(data, n, splits) -> None:
    lv = leaves(n)
    log = build(lv, splits)
    for _ in range(5):
        size = data.draw(st.integers(1, n))
        index = data.draw(st.integers(0, size - 1))
        proof = log.inclusion_proof(index, size)
        assert proof == ref_path(sha256, index, lv[:size])
        assert log.leaf_hash_at(index) == leaf_hash(sha256, lv[index])
        verify_inclusion(sha256, index, size, log.leaf_hash_at(index), proof, log.root(size))


@FAST
@given(data=st.data(), n=st.integers(1, 300), splits=batches)
def test_consistency_proofs_equal_the_reference_and_verify(data, n, splits) -> None:
    lv = leaves(n)
    log = build(lv, splits)
    for _ in range(5):
        size2 = data.draw(st.integers(0, n))
        size1 = data.draw(st.integers(0, size2))
        proof = log.consistency_proof(size1, size2)
        assert proof == ref_proof(sha256, size1, lv[:size2])
        verify_consistency(sha256, size1, size2, proof, log.root(size1), log.root(size2))


@FAST
@given(data=st.data(), n=st.integers(2, 300))
def test_prefix_proofs_lead_to_both_roots(data, n) -> None:
    log = build(leaves(n))
    size2 = data.draw(st.integers(2, n))
    size1 = data.draw(st.integers(1, size2 - 1))
    assert roots_from_prefix_proof(sha256, size1, size2, log.prefix_proof(size1, size2)) == (
        log.root(size1),
        log.root(size2),
    )


@settings(max_examples=15, deadline=None)
@given(data=st.data(), n=st.integers(1, 200), splits=batches)
def test_sm3_tree_equals_the_sm3_reference(data, n, splits) -> None:
    lv = leaves(n)
    log = build(lv, splits, h=sm3)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    assert log.root(size) == ref_mth(sm3, lv[:size])
    assert log.inclusion_proof(index, size) == ref_path(sm3, index, lv[:size])
    assert log.consistency_proof(index, size) == ref_proof(sm3, index, lv[:size])


# -- restart -------------------------------------------------------------------------


@FAST
@given(n=st.integers(1, 300), cut=st.integers(0, 300), splits=batches, more=batches)
def test_restart_from_saved_size_continues_like_an_uninterrupted_log(n, cut, splits, more) -> None:
    lv = leaves(n)
    cut = min(cut, n)
    store = CountingStore()
    build(lv[:cut], splits, store=store)
    store.reads = 0
    restarted = MerkleLog(sha256, store, size=cut)
    # Restart reads one node per set bit of the size, never the leaves.
    assert store.reads == cut.bit_count()
    i = cut
    for k in more:
        restarted.append_many(lv[i : i + k])
        i += k
    restarted.append_many(lv[i:])
    straight_store = DictNodeStore()
    straight = build(lv, store=straight_store)
    assert restarted.size == straight.size == n
    assert restarted.root() == straight.root()
    assert store.nodes == straight_store.nodes


def test_restart_with_a_size_the_store_does_not_have_fails_loudly() -> None:
    store = DictNodeStore()
    build(leaves(5), store=store)
    with pytest.raises(StoreError, match=r"node \(1, 2\) is missing"):
        MerkleLog(sha256, store, size=6)
    with pytest.raises(StoreError):
        MerkleLog(sha256, DictNodeStore(), size=1)


def test_nodes_left_by_a_crash_before_the_size_was_saved_are_overwritten() -> None:
    # The node wrote nodes for leaves 5..9 but crashed before persisting size 10;
    # it restarts at size 5 and appends different leaves.
    store = DictNodeStore()
    build(leaves(10), store=store)
    log = MerkleLog(sha256, store, size=5)
    other = [b"other-%d" % i for i in range(7)]
    log.append_many(other)
    expect_leaves = leaves(5) + other
    assert log.root() == ref_mth(sha256, expect_leaves)
    for size in range(1, 13):
        assert log.root(size) == ref_mth(sha256, expect_leaves[:size])
    assert log.inclusion_proof(9, 12) == ref_path(sha256, 9, expect_leaves)


# -- cost contract -------------------------------------------------------------------


def test_reads_are_logarithmic_in_the_tree_size() -> None:
    n = 100_000
    store = CountingStore()
    log = build([b"%d" % i for i in range(n)], [5000] * 20, store=store)
    bound = 2 * n.bit_length() + 2
    for size in (n, n - 1, 65_537, 99_999, 12_345):
        store.reads = 0
        log.root(size)
        assert store.reads <= bound
        for index in (0, size // 3, size - 1):
            store.reads = 0
            log.inclusion_proof(index, size)
            assert store.reads <= bound
        for size1 in (1, size // 2, size - 1):
            store.reads = 0
            log.consistency_proof(size1, size)
            assert store.reads <= bound
    store.reads = 0
    log.root()
    assert store.reads == 0  # the current root comes from the in-memory frontier


def test_append_many_writes_one_batch_with_every_new_node_once() -> None:
    store = CountingStore()
    log = MerkleLog(sha256, store)
    log.append_many(leaves(3))
    assert store.batches == 1
    first = log.append_many(leaves(13)[3:])
    assert first == 3
    assert store.batches == 2
    # 13 leaves have 13 + 6 + 3 + 1 perfect subtrees.
    assert len(store) == 23
    assert log.append_many([]) == 13
    assert store.batches == 2


def test_dict_store_satisfies_the_protocol() -> None:
    assert isinstance(DictNodeStore(), NodeStore)


def test_dict_store_keeps_out_of_order_writes_and_overwrites() -> None:
    store = DictNodeStore()
    a, b, c, d = (bytes([i]) * 32 for i in range(4))
    store.put_many([((0, 2), a), ((3, 0), b), ((-1, 0), c), ((0, -1), d)])
    assert store.get(0, 2) == a and store.get(3, 0) == b
    assert store.get(-1, 0) == c and store.get(0, -1) == d
    assert store.get(0, 0) is None and store.get(0, 3) is None and store.get(9, 9) is None
    store.put_many([((0, 0), b), ((0, 1), c), ((0, 2), d)])  # fills up to and over (0, 2)
    assert [store.get(0, i) for i in range(3)] == [b, c, d]
    store.put_many([((0, 1), a)])
    assert store.get(0, 1) == a
    assert store.nodes == {(0, 0): b, (0, 1): a, (0, 2): d, (3, 0): b, (-1, 0): c, (0, -1): d}
    assert len(store) == 6


# -- argument errors -------------------------------------------------------------------


def test_out_of_range_requests_are_rejected() -> None:
    log = build(leaves(8))
    with pytest.raises(IndexError):
        log.inclusion_proof(8, 8)
    with pytest.raises(IndexError):
        log.inclusion_proof(3, 3)
    with pytest.raises(IndexError):
        log.inclusion_proof(-1, 8)
    with pytest.raises(ValueError):
        log.inclusion_proof(0, 9)
    with pytest.raises(ValueError):
        log.root(9)
    with pytest.raises(ValueError):
        log.consistency_proof(5, 4)
    with pytest.raises(ValueError):
        log.consistency_proof(1, 9)
    with pytest.raises(IndexError):
        log.leaf_hash_at(8)
    with pytest.raises(ValueError):
        MerkleLog(sha256, DictNodeStore(), size=-1)
    with pytest.raises(ValueError):
        log.root(True)
