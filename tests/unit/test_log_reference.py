"""The naive RFC 9162 reference (tests/support/log_reference.py) reproduces the published
RFC 6962 test data, so the log tests that compare against it compare against the RFC."""

from __future__ import annotations

import pytest

from tests.support.log_reference import (
    CONSISTENCY_VECTORS,
    INCLUSION_VECTORS,
    LEAF_INPUTS,
    NODE_HASHES,
    ROOTS,
    ref_mth,
    ref_path,
    ref_proof,
    sha256,
)


@pytest.mark.parametrize("size", range(9))
def test_reference_mth_reproduces_published_roots(size: int) -> None:
    assert ref_mth(sha256, LEAF_INPUTS[:size]) == ROOTS[size]


def test_reference_mth_reproduces_published_node_hashes() -> None:
    for level, row in enumerate(NODE_HASHES):
        width = 1 << level
        for i, want in enumerate(row):
            assert ref_mth(sha256, LEAF_INPUTS[i * width : (i + 1) * width]) == want


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_reference_path_reproduces_published_inclusion_proofs(index, size, path) -> None:
    assert ref_path(sha256, index, LEAF_INPUTS[:size]) == path


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_reference_proof_reproduces_published_consistency_proofs(size1, size2, proof) -> None:
    assert ref_proof(sha256, size1, LEAF_INPUTS[:size2]) == proof
