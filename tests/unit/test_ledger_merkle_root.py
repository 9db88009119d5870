"""The ledger's RFC 9162 root of a block's transaction ids and receipts (computed level by
level) is the naive recursive MTH of the RFC, for every size up to a few hundred leaves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tally.ledger import merkle_root
from tests.support.log_reference import ref_mth, sha256, sm3


@given(st.lists(st.binary(max_size=40), max_size=300), st.sampled_from([sha256, sm3]))
def test_merkle_root_is_the_rfc_9162_mth(leaves: list[bytes], h) -> None:
    assert merkle_root(h, leaves) == ref_mth(h, leaves)


def test_every_small_size() -> None:
    leaves = [bytes([i]) * 3 for i in range(70)]
    for n in range(71):
        assert merkle_root(sha256, leaves[:n]) == ref_mth(sha256, leaves[:n]), n
