"""The state trie: its root is the consensus commitment to the state, and its proofs
are what a light client or an auditor checks against a block header.

The reference below (``reference_root``) is the definition in docs/state.md written as
plainly as possible, over the sorted key set; the trie must agree with it after any
history of batches, cache sizes and restarts.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.crypto import get_suite
from tally.state.trie import (
    EMPTY_ROOT,
    DictTrieStore,
    StateProof,
    StateProofError,
    StateTrie,
    TrieCorruptError,
    key_path,
    verify_state_proof,
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


# ----------------------------------------------------------------------------------------
# Reference: the definition, from scratch
# ----------------------------------------------------------------------------------------


def reference_root(h, state: dict[bytes, bytes]) -> bytes:
    """T(slot) over the sorted leaves, straight from the definition in docs/state.md."""

    def nibble(digest: bytes, depth: int) -> int:
        byte = digest[depth // 2]
        return byte >> 4 if depth % 2 == 0 else byte & 0x0F

    def subtree(depth: int, leaves: list[tuple[bytes, bytes]]) -> bytes:
        if not leaves:
            return bytes(32)
        if len(leaves) == 1:
            key_hash, value_hash = leaves[0]
            return h(b"\x00" + key_hash + value_hash)
        children = [
            subtree(depth + 1, [leaf for leaf in leaves if nibble(leaf[0], depth) == i])
            for i in range(16)
        ]
        present = sum(1 << i for i, child in enumerate(children) if child != bytes(32))
        occupied = b"".join(child for child in children if child != bytes(32))
        return h(b"\x01" + present.to_bytes(2, "big") + occupied)

    return subtree(0, sorted((h(k), h(v)) for k, v in state.items()))


def fresh_records(h, state: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The node records of a trie built in one batch from ``state``."""
    store = DictTrieStore()
    trie = StateTrie(h, store)
    trie.update(dict(state))
    store.write(trie.take_dirty())
    return store.records


def apply_to_model(model: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> None:
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


# A small key universe makes batches overwrite and delete what earlier ones wrote, and
# makes leaves split and collapse; 3-byte values give each key a few possible states.
keys = st.integers(0, 79).map(lambda i: b"asset/%d" % i)
present_values = st.sampled_from([b"", b"alice", b"bob", b"pledged:100"])
values = st.one_of(st.none(), present_values)
batches = st.dictionaries(keys, values, max_size=25)


# ----------------------------------------------------------------------------------------
# The root
# ----------------------------------------------------------------------------------------


def test_empty_state_has_the_zero_root():
    trie = StateTrie(sha256, DictTrieStore())
    assert trie.root() == EMPTY_ROOT == bytes(32)


def test_single_key_root_is_its_leaf_hash():
    trie = StateTrie(sha256, DictTrieStore())
    trie.update({b"k": b"v"})
    assert trie.root() == sha256(b"\x00" + sha256(b"k") + sha256(b"v"))


def test_known_answer_root():
    # Frozen so that a change to the definition (a consensus change) cannot go unnoticed;
    # an independent implementation can check itself against the same vector.
    state = {b"asset/%d" % i: b"owner-%d" % (i % 7) for i in range(300)}
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(state)
    expected = "5ef520d9a86fe48955e88ba958f9fbd3d169fb8344ea7a7f21c9ad918e1b5d01"
    assert trie.root() == reference_root(sha256, state)
    assert trie.root().hex() == expected


def test_documented_example():
    # docs/state.md works this state through by hand.
    state = {b"asset/1": b"alice", b"asset/2": b"bob", b"asset/3": b"carol"}
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(state)
    assert trie.root().hex() == ("f1966fea319d685f336e8daef21b1df0d44f684fd4929d5ab0f3f5963e92a10f")
    assert trie.prove(b"asset/1").to_bytes()[:4] == bytes.fromhex("00011800")


def deep_hash(data: bytes) -> bytes:
    """SHA-256, except that keys ``deep/<i>`` hash to 31 zero bytes then ``i``: they
    share 62 nibbles, which real keys never do, to reach the deepest slots."""
    if data.startswith(b"deep/"):
        return bytes(31) + bytes([int(data[5:])])
    return sha256(data)


def test_keys_sharing_62_nibbles_sit_at_depth_64_and_rise_when_alone():
    store = DictTrieStore()
    trie = StateTrie(deep_hash, store)
    state = {b"deep/%d" % i: b"v%d" % i for i in range(20)} | {b"shallow": b"s"}
    trie.update(state)
    assert trie.root() == reference_root(deep_hash, state)
    proof = trie.prove(b"deep/3")
    assert len(proof.levels) == 64  # 0x00..00 0x03: nibble 63 is the first that differs
    verify_state_proof(deep_hash, trie.root(), b"deep/3", b"v3", proof)
    assert StateProof.from_bytes(proof.to_bytes()) == proof
    absent = trie.prove(b"deep/21")  # 0x15: under the 0x1_ node, slot 5 empty
    assert absent.kind == "absent-empty" and len(absent.levels) == 64
    verify_state_proof(deep_hash, trie.root(), b"deep/21", None, absent)
    # Remove all deep keys but one: it rises from depth 64 to depth 1, in one batch.
    gone = {b"deep/%d" % i: None for i in range(1, 20)}
    trie.update(gone)
    store.write(trie.take_dirty())
    left = {b"deep/0": b"v0", b"shallow": b"s"}
    assert trie.root() == reference_root(deep_hash, left)
    assert store.records == fresh_records(deep_hash, left)
    assert len(trie.prove(b"deep/0").levels) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(
        st.tuples(batches, st.sampled_from(["keep", "persist", "reopen"])), max_size=14
    ),
    cache_nodes=st.sampled_from([0, 1, 5, 1 << 17]),
    hash_name=st.sampled_from(["sha256", "sm3"]),
)
def test_root_matches_the_definition_after_any_history(history, cache_nodes, hash_name):
    h = {"sha256": sha256, "sm3": sm3}[hash_name]
    store = DictTrieStore()
    trie = StateTrie(h, store, cache_nodes=cache_nodes)
    model: dict[bytes, bytes] = {}
    for changes, then in history:
        trie.update(changes)
        apply_to_model(model, changes)
        assert trie.root() == reference_root(h, model)
        if then in ("persist", "reopen"):
            store.write(trie.take_dirty())
        if then == "reopen":
            trie = StateTrie(h, store, cache_nodes=cache_nodes)
            assert trie.root() == reference_root(h, model)
    store.write(trie.take_dirty())
    # The stored nodes, not just the root, depend only on the final state: nothing
    # stale is left behind by leaves that moved, split or collapsed.
    assert store.records == fresh_records(h, model)

    trie.update(dict.fromkeys(model))  # delete everything
    store.write(trie.take_dirty())
    assert trie.root() == EMPTY_ROOT
    assert store.records == {}


@settings(max_examples=40, deadline=None)
@given(
    state=st.dictionaries(keys, present_values, max_size=60),
    noise=st.dictionaries(st.integers(100, 140).map(lambda i: b"tmp/%d" % i), st.just(b"x")),
    seed=st.integers(0, 2**32 - 1),
)
def test_root_depends_only_on_the_final_state(state, noise, seed):
    rng = random.Random(seed)
    items = list(state.items())
    rng.shuffle(items)
    # Another history reaching the same state: other order, other batch boundaries,
    # and keys that come and go along the way.
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(noise)
    while items:
        cut = rng.randint(1, len(items))
        trie.update(dict(items[:cut]))
        items = items[cut:]
    trie.update(dict.fromkeys(noise))
    one_batch = StateTrie(sha256, DictTrieStore())
    one_batch.update(state)
    assert trie.root() == one_batch.root() == reference_root(sha256, state)


@settings(max_examples=40, deadline=None)
@given(
    state=st.dictionaries(keys, present_values, min_size=1, max_size=60),
    data=st.data(),
)
def test_any_single_change_changes_the_root(state, data):
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(state)
    before = trie.root()
    key = data.draw(st.sampled_from(sorted(state)))
    change = data.draw(
        st.one_of(
            st.just(None),  # the key disappears
            st.binary(max_size=8).filter(lambda v: v != state[key]),  # another value
        )
    )
    trie.update({key: change})
    assert trie.root() != before
    trie.update({key: state[key]})
    assert trie.root() == before
    trie.update({b"a new key": b""})
    assert trie.root() != before


def test_deleting_absent_keys_and_rewriting_values_changes_nothing():
    store = DictTrieStore()
    trie = StateTrie(sha256, store)
    state = {b"asset/%d" % i: b"v" for i in range(50)}
    trie.update(state)
    store.write(trie.take_dirty())
    records = dict(store.records)
    root = trie.root()
    trie.update({b"never-written": None, **state})
    store.write(trie.take_dirty())
    assert trie.root() == root
    assert store.records == records


def test_a_hash_collision_is_refused():
    # Two keys with the same path cannot both be held: refuse the batch, loudly.
    def colliding(data: bytes) -> bytes:
        return sha256(b"same" if data in (b"k1", b"k2") else data)

    trie = StateTrie(colliding, DictTrieStore())
    with pytest.raises(ValueError, match="same hash"):
        trie.update({b"k1": b"a", b"k2": b"b"})
    assert trie.root() == EMPTY_ROOT


def test_a_hash_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="32-byte"):
        StateTrie(lambda data: hashlib.sha1(data).digest(), DictTrieStore())


def test_the_suites_hash_is_the_trie_hash():
    state = {b"asset/%d" % i: b"%d" % i for i in range(40)}
    for name, h in (("intl", sha256), ("gm", sm3)):
        trie = StateTrie(get_suite(name).hash, DictTrieStore())
        trie.update(state)
        assert trie.root() == reference_root(h, state)


def test_key_path_is_the_key_hash_in_nibbles():
    digest = sha256(b"asset/1")
    path = key_path(sha256, b"asset/1")
    assert len(path) == 64
    assert bytes((path[2 * i] << 4) | path[2 * i + 1] for i in range(32)) == digest


# ----------------------------------------------------------------------------------------
# Store, cache, restart
# ----------------------------------------------------------------------------------------


class CountingStore(DictTrieStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []
        self.fail_on: bytes | None = None

    def get(self, path: bytes) -> bytes | None:
        self.reads.append(path)
        if path == self.fail_on:
            raise OSError("disk read error")
        return super().get(path)


def built(n: int, store: DictTrieStore | None = None, **kwargs) -> tuple[StateTrie, DictTrieStore]:
    store = DictTrieStore() if store is None else store
    trie = StateTrie(sha256, store, **kwargs)
    trie.update({b"asset/%d" % i: b"owner-%d" % i for i in range(n)})
    store.write(trie.take_dirty())
    return trie, store


def test_opening_reads_only_the_root_record():
    store = CountingStore()
    built(3000, store)
    store.reads.clear()
    reopened = StateTrie(sha256, store)
    assert store.reads == [b""]
    assert reopened.root() == reference_root(
        sha256, {b"asset/%d" % i: b"owner-%d" % i for i in range(3000)}
    )


def test_restart_gives_the_same_root_proofs_and_future():
    trie, store = built(2000)
    reopened = StateTrie(sha256, store, cache_nodes=10)
    assert reopened.root() == trie.root()
    for key in (b"asset/7", b"asset/1999", b"nobody"):
        assert reopened.prove(key).to_bytes() == trie.prove(key).to_bytes()

    rng = random.Random(5)
    for _ in range(5):
        changes = {
            b"asset/%d" % rng.randrange(2500): rng.choice([None, b"x", b"y"]) for _ in range(300)
        }
        trie.update(changes)
        reopened.update(changes)
        assert reopened.root() == trie.root()
        dirty = trie.take_dirty()
        assert reopened.take_dirty() == dirty
        store.write(dirty)


def test_the_cache_stays_within_its_bound():
    trie, store = built(5000, cache_nodes=100)
    assert trie.cached_nodes <= 100
    for i in range(0, 5000, 50):
        trie.prove(b"asset/%d" % i)
    trie.update({b"asset/%d" % i: b"z" for i in range(0, 5000, 3)})
    assert trie.cached_nodes <= 100
    model = {b"asset/%d" % i: b"owner-%d" % i for i in range(5000)}
    model.update({b"asset/%d" % i: b"z" for i in range(0, 5000, 3)})
    assert trie.root() == reference_root(sha256, model)


def test_pending_updates_are_visible_and_can_be_discarded():
    trie, store = built(500)
    committed = trie.root()
    trie.update({b"asset/1": None, b"asset/2": b"new", b"asset/9999": b"created"})
    # Before the records are handed over, proofs already show the new state...
    verify_state_proof(sha256, trie.root(), b"asset/2", b"new", trie.prove(b"asset/2"))
    verify_state_proof(sha256, trie.root(), b"asset/1", None, trie.prove(b"asset/1"))
    # ...and a block that is not committed can be dropped.
    trie.discard()
    assert trie.root() == committed
    verify_state_proof(sha256, committed, b"asset/2", b"owner-2", trie.prove(b"asset/2"))
    trie.update({b"asset/3": b"again"})
    store.write(trie.take_dirty())
    model = {b"asset/%d" % i: b"owner-%d" % i for i in range(500)} | {b"asset/3": b"again"}
    assert store.records == fresh_records(sha256, model)


def test_take_dirty_is_sorted_and_emptied():
    trie = StateTrie(sha256, DictTrieStore())
    trie.update({b"asset/%d" % i: b"v" for i in range(100)})
    dirty = trie.take_dirty()
    assert dirty == sorted(dirty) and len({path for path, _ in dirty}) == len(dirty)
    assert trie.take_dirty() == []


def test_a_failed_store_read_leaves_the_trie_as_it_was():
    store = CountingStore()
    trie, _ = built(3000, store, cache_nodes=0)
    root = trie.root()
    changes = {b"asset/%d" % i: b"changed" for i in range(0, 3000, 7)}
    # Make a read halfway through the batch fail, after some nodes were already updated.
    store.reads.clear()
    trie.update(changes)
    trie.discard()
    store.fail_on = store.reads[len(store.reads) // 2]
    with pytest.raises(OSError):
        trie.update(changes)
    store.fail_on = None
    assert trie.root() == root
    for key in changes:  # no half-applied node is left to be read
        verify_state_proof(sha256, root, key, b"owner-" + key[6:], trie.prove(key))
    trie.update(changes)
    model = {b"asset/%d" % i: b"owner-%d" % i for i in range(3000)} | changes
    assert trie.root() == reference_root(sha256, model)


def test_a_damaged_store_is_reported_not_trusted():
    trie, store = built(300)
    victim = next(path for path, record in store.records.items() if record[0] == 1 and path)
    del store.records[victim]
    reopened = StateTrie(sha256, store)
    with pytest.raises(TrieCorruptError):
        for i in range(300):
            reopened.prove(b"asset/%d" % i)
    store.records[b""] = b"\x01garbage"
    with pytest.raises(TrieCorruptError):
        StateTrie(sha256, store)


# ----------------------------------------------------------------------------------------
# Proofs
# ----------------------------------------------------------------------------------------

STATE = {b"asset/%d" % i: b"owner-%d|pledged-%d" % (i % 5, i) for i in range(400)}


@pytest.fixture(scope="module")
def proved() -> StateTrie:
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(STATE)
    return trie


def absent_key_of_kind(trie: StateTrie, kind: str) -> bytes:
    for i in range(10_000):
        key = b"absent/%d" % i
        if trie.prove(key).kind == kind:
            return key
    raise AssertionError(f"no absent key gives a {kind} proof")


def test_present_keys_verify_with_their_value(proved):
    root = proved.root()
    for key, value in STATE.items():
        proof = proved.prove(key)
        assert proof.kind == "present"
        verify_state_proof(sha256, root, key, value, proof)


@pytest.mark.parametrize("kind", ["absent-empty", "absent-leaf"])
def test_absent_keys_verify_in_both_shapes(proved, kind):
    key = absent_key_of_kind(proved, kind)
    verify_state_proof(sha256, proved.root(), key, None, proved.prove(key))


def test_proofs_in_tiny_tries():
    empty = StateTrie(sha256, DictTrieStore())
    verify_state_proof(sha256, EMPTY_ROOT, b"k", None, empty.prove(b"k"))
    single = StateTrie(sha256, DictTrieStore())
    single.update({b"k": b"v"})
    assert single.prove(b"k").levels == ()
    verify_state_proof(sha256, single.root(), b"k", b"v", single.prove(b"k"))
    other = single.prove(b"other")
    assert other.kind == "absent-leaf"
    verify_state_proof(sha256, single.root(), b"other", None, other)


def rejects(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> str:
    with pytest.raises(StateProofError) as info:
        verify_state_proof(sha256, root, key, value, proof)
    return info.value.reason


def test_a_proof_shows_one_value_only(proved):
    root = proved.root()
    proof = proved.prove(b"asset/1")
    assert rejects(root, b"asset/1", b"owner-1|pledged-2", proof) == "root_mismatch"
    assert rejects(root, b"asset/1", None, proof) == "wrong_kind"
    assert rejects(root, b"asset/2", STATE[b"asset/1"], proof) in ("root_mismatch", "not_on_path")
    other_root = sha256(b"another block")
    assert rejects(other_root, b"asset/1", STATE[b"asset/1"], proof) == "root_mismatch"


@pytest.mark.parametrize("kind", ["absent-empty", "absent-leaf"])
def test_an_absence_proof_cannot_hide_a_value(proved, kind):
    root = proved.root()
    key = absent_key_of_kind(proved, kind)
    proof = proved.prove(key)
    assert rejects(root, key, b"anything", proof) == "wrong_kind"
    # Nor can it be reused for a key that is present.
    with pytest.raises(StateProofError):
        verify_state_proof(sha256, root, b"asset/3", None, proof)


def test_every_sibling_hash_is_bound(proved):
    root = proved.root()
    for key in (b"asset/3", absent_key_of_kind(proved, "absent-leaf")):
        value = STATE.get(key)
        proof = proved.prove(key)
        for d, level in enumerate(proof.levels):
            for s, (nibble, digest) in enumerate(level):
                flipped = bytes([digest[0] ^ 1]) + digest[1:]
                levels = list(proof.levels)
                levels[d] = level[:s] + ((nibble, flipped),) + level[s + 1 :]
                tampered = StateProof(proof.kind, tuple(levels), proof.other_leaf)
                assert rejects(root, key, value, tampered) == "root_mismatch"
                # Moving a sibling to a free slot is caught too.
                step = key_path(sha256, key)[d]
                free = [n for n in range(16) if n not in dict(level) and n != step]
                if free:
                    levels[d] = tuple(sorted(level[:s] + ((free[0], digest),) + level[s + 1 :]))
                    tampered = StateProof(proof.kind, tuple(levels), proof.other_leaf)
                    assert rejects(root, key, value, tampered) == "root_mismatch"


def test_truncated_or_extended_paths_are_rejected(proved):
    root = proved.root()
    proof = proved.prove(b"asset/4")
    shorter = StateProof(proof.kind, proof.levels[:-1])
    assert rejects(root, b"asset/4", STATE[b"asset/4"], shorter) == "root_mismatch"
    extra = StateProof(proof.kind, (((0, sha256(b"x")),),) + proof.levels)
    with pytest.raises(StateProofError):
        verify_state_proof(sha256, root, b"asset/4", STATE[b"asset/4"], extra)


def test_a_node_holding_a_single_leaf_is_not_canonical(proved):
    # The trie never keeps a node over fewer than two leaves, so a proof that shows one
    # is refused for what it is, before the root is even compared.
    proof = proved.prove(b"asset/5")
    deeper = StateProof(proof.kind, proof.levels + ((),))
    assert rejects(proved.root(), b"asset/5", STATE[b"asset/5"], deeper) == "not_canonical"


def test_absent_leaf_proof_binds_the_other_leaf(proved):
    root = proved.root()
    key = absent_key_of_kind(proved, "absent-leaf")
    proof = proved.prove(key)
    other_key_hash, other_value_hash = proof.other_leaf
    changed = StateProof(proof.kind, proof.levels, (other_key_hash, sha256(b"forged")))
    assert rejects(root, key, None, changed) == "root_mismatch"
    # The key's own hash in the other-leaf position would claim a key is absent
    # because it is present: refused before any hashing.
    present = b"asset/3"
    own = proved.prove(present)
    forged = StateProof("absent-leaf", own.levels, (sha256(present), sha256(STATE[present])))
    assert rejects(root, present, None, forged) == "wrong_kind"
    # An other leaf off the key's path cannot occupy the key's slot.
    off_path = StateProof(proof.kind, proof.levels, (sha256(b"elsewhere"), other_value_hash))
    assert rejects(root, key, None, off_path) in ("not_on_path", "root_mismatch")


def test_a_sibling_on_the_keys_own_slot_is_rejected(proved):
    root = proved.root()
    key = absent_key_of_kind(proved, "absent-empty")
    proof = proved.prove(key)
    step = key_path(sha256, key)[len(proof.levels) - 1]
    last = tuple(sorted(proof.levels[-1] + ((step, sha256(b"x")),)))
    forged = StateProof(proof.kind, proof.levels[:-1] + (last,))
    assert rejects(root, key, None, forged) == "not_on_path"


@settings(max_examples=30, deadline=None)
@given(state=st.dictionaries(keys, present_values, max_size=50), probe=keys)
def test_proofs_verify_for_any_state_and_key(state, probe):
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(state)
    proof = trie.prove(probe)
    verify_state_proof(sha256, trie.root(), probe, state.get(probe), proof)
    assert StateProof.from_bytes(proof.to_bytes()) == proof
    assert StateProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof


# ----------------------------------------------------------------------------------------
# Encodings
# ----------------------------------------------------------------------------------------


def all_kinds(trie: StateTrie) -> list[StateProof]:
    return [
        trie.prove(b"asset/10"),
        trie.prove(absent_key_of_kind(trie, "absent-empty")),
        trie.prove(absent_key_of_kind(trie, "absent-leaf")),
    ]


def test_encodings_round_trip(proved):
    for proof in all_kinds(proved):
        encoded = proof.to_bytes()
        assert StateProof.from_bytes(encoded) == proof
        assert StateProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof
        # Compact: a kind byte, a depth byte, a 2-byte mask and the hashes per level.
        siblings = sum(len(level) for level in proof.levels)
        extra = 64 if proof.kind == "absent-leaf" else 0
        assert len(encoded) == 2 + 2 * len(proof.levels) + 32 * siblings + extra


def test_proof_json_shape(proved):
    proof = proved.prove(absent_key_of_kind(proved, "absent-leaf"))
    data = proof.to_dict()
    assert data["kind"] == "absent-leaf"
    assert set(data) == {"kind", "levels", "other_leaf"}
    assert all(len(d) == 1 and d in "0123456789abcdef" for level in data["levels"] for d in level)
    assert len(data["other_leaf"]["key_hash"]) == 64


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_garbage_bytes_are_rejected_or_canonical(data):
    try:
        proof = StateProof.from_bytes(data)
    except StateProofError:
        return
    assert proof.to_bytes() == data  # whatever parses has exactly this encoding


def _real_encodings() -> list[bytes]:
    trie = StateTrie(sha256, DictTrieStore())
    trie.update(STATE)
    return [proof.to_bytes() for proof in all_kinds(trie)]


REAL_ENCODINGS = _real_encodings()


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, len(REAL_ENCODINGS) - 1),
       edits=st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]),
                                st.integers(0, 10_000), st.integers(0, 255)),
                      min_size=1, max_size=3))
def test_edited_real_proofs_are_rejected_or_canonical(which, edits):
    """Random bytes almost never parse; edits of real proofs (every kind) reach the
    decoder's deeper checks. Whatever still parses must re-encode to the same bytes."""
    data = bytearray(REAL_ENCODINGS[which])
    for op, at, byte in edits:
        at %= max(len(data), 1)
        if op == "flip" and data:
            data[at] ^= byte or 1
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data.insert(at, byte)
        elif data:
            del data[at]
    try:
        proof = StateProof.from_bytes(bytes(data))
    except StateProofError:
        return
    assert proof.to_bytes() == bytes(data)


def test_malformed_bytes_are_rejected(proved):
    good = proved.prove(absent_key_of_kind(proved, "absent-leaf")).to_bytes()
    zero_hash_level = b"\x01\x01" + b"\x00\x01" + bytes(32)
    for bad in (
        b"",
        b"\x00",
        good[:-1],  # truncated
        good + b"\x00",  # trailing byte
        b"\x03" + good[1:],  # unknown kind
        bytes([good[0], 65]) + good[2:],  # deeper than 64
        good[:2] + b"\xff\xff" + good[4:],  # mask claims more hashes than there are
        zero_hash_level,  # an empty slot spelled out as a hash
        b"\x00\x00" + bytes(64),  # present proof with an other_leaf tail
    ):
        with pytest.raises(StateProofError):
            StateProof.from_bytes(bad)
    with pytest.raises(StateProofError):
        StateProof.from_bytes("not bytes")  # type: ignore[arg-type]


def test_malformed_dicts_are_rejected(proved):
    good = proved.prove(absent_key_of_kind(proved, "absent-leaf")).to_dict()
    h = good["other_leaf"]["key_hash"]
    bad_inputs = [
        None,
        [],
        "proof",
        {},
        {**good, "kind": "maybe"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "other_leaf"},
        {"kind": "present", "levels": [], "other_leaf": good["other_leaf"]},
        {**good, "levels": "none"},
        {**good, "levels": [[h]]},
        {**good, "levels": [{"g": h}]},
        {**good, "levels": [{"A": h}]},
        {**good, "levels": [{"10": h}]},
        {**good, "levels": [{"0": h.upper()}]},
        {**good, "levels": [{"0": h[:-2]}]},
        {**good, "levels": [{"0": 5}]},
        {**good, "levels": [{"0": "0" * 64}]},
        {**good, "levels": [{}] * 65},
        {**good, "other_leaf": {"key_hash": h}},
        {**good, "other_leaf": {"key_hash": h, "value_hash": "zz" * 32}},
        {**good, "other_leaf": [h, h]},
    ]
    for bad in bad_inputs:
        with pytest.raises(StateProofError):
            StateProof.from_dict(bad)


def test_constructing_an_ill_formed_proof_fails():
    digest = sha256(b"x")
    for args in (
        ("present", (((3, digest), (3, digest)),)),  # repeated nibble
        ("present", (((16, digest),),)),  # nibble out of range
        ("present", (((1, digest[:31]),),)),  # short hash
        ("present", [((1, digest),)]),  # not a tuple
        ("absent-leaf", ()),  # other leaf missing
        ("absent-empty", (), (digest, digest)),  # other leaf where none belongs
        ("nothing", ()),
    ):
        with pytest.raises(StateProofError):
            StateProof(*args)  # type: ignore[arg-type]


def test_verify_refuses_bad_arguments(proved):
    proof = proved.prove(b"asset/1")
    with pytest.raises(StateProofError):
        verify_state_proof(sha256, b"short", b"asset/1", STATE[b"asset/1"], proof)
    with pytest.raises(StateProofError):
        verify_state_proof(sha256, proved.root(), b"asset/1", STATE[b"asset/1"], proof.to_dict())  # type: ignore[arg-type]
