"""The byte- and entry-bounded cache every node cache uses (tally.bounded), against a
naive reference: a list of (key, value, size) in insertion order, trimmed from the front."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tally.bounded import BoundedCache

ops = st.lists(st.one_of(
    st.tuples(st.just("put"), st.integers(0, 20), st.integers(0, 120)),
    st.tuples(st.just("pop"), st.integers(0, 20), st.just(0)),
), max_size=200)


@given(ops, st.integers(1, 10), st.integers(1, 300))
def test_the_cache_keeps_what_a_naive_reference_keeps(actions, max_entries, max_bytes) -> None:
    cache: BoundedCache[int, int] = BoundedCache(max_entries, max_bytes)
    ref: list[tuple[int, int, int]] = []
    for n, (op, key, size) in enumerate(actions):
        ref = [item for item in ref if item[0] != key]
        if op == "put":
            cache.put(key, n, size)
            if size <= max_bytes:
                ref.append((key, n, size))
            while len(ref) > max_entries or sum(i[2] for i in ref) > max_bytes:
                ref.pop(0)
        else:
            cache.pop(key)
        assert len(cache) == len(ref)
        assert cache.bytes == sum(i[2] for i in ref) <= max_bytes
        for k, v, _ in ref:
            assert cache.get(k) == v
        assert all(cache.get(k) is None for k in range(21) if k not in {i[0] for i in ref})


def test_a_cached_none_is_told_from_a_miss() -> None:
    cache: BoundedCache[bytes, object] = BoundedCache(4, 100)
    cache.put(b"absent-in-state", None, 10)
    missing = object()
    assert cache.get(b"absent-in-state", missing) is None
    assert cache.get(b"never-read", missing) is missing
