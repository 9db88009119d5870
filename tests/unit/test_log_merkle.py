"""tally.log.merkle: RFC 9162 hashing and the two verifiers, against the published
RFC 6962 vectors (transparency-dev/merkle), the naive RFC reference in
test_log_reference.py, and adversarial inputs (the corruption probes of
transparency-dev/merkle proof/verify_test.go, plus every single-bit flip)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.log.merkle import (
    ProofError,
    consistency_proof_length,
    empty_root,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    roots_from_prefix_proof,
    verify_consistency,
    verify_inclusion,
)

try:
    from test_log_reference import (
        CONSISTENCY_VECTORS,
        INCLUSION_VECTORS,
        LEAF_INPUTS,
        ROOTS,
        ref_mth,
        ref_path,
        ref_proof,
        sha256,
        sm3,
    )
except ImportError:  # run as a package (pytest --import-mode=importlib)
    from tests.support.log_reference import (
        CONSISTENCY_VECTORS,
        INCLUSION_VECTORS,
        LEAF_INPUTS,
        ROOTS,
        ref_mth,
        ref_path,
        ref_proof,
        sha256,
        sm3,
    )

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY = ROOTS[0]


def leaves(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def reason_of(fn, *args) -> str:
    with pytest.raises(ProofError) as e:
        fn(*args)
    return e.value.reason


# -- hashing ----------------------------------------------------------------------


def test_hashes_use_the_rfc_domain_separation_prefixes() -> None:
    assert empty_root(sha256) == hashlib.sha256(b"").digest() == EMPTY
    assert leaf_hash(sha256, b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = b"a" * 32, b"b" * 32
    assert node_hash(sha256, a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # A leaf whose data is 0x01||l||r must not hash like the node (l, r).
    assert leaf_hash(sha256, b"\x01" + a + b) != node_hash(sha256, a, b)


def test_sm3_variant_uses_the_same_prefixes() -> None:
    assert empty_root(sm3) == hashlib.new("sm3", b"").digest()
    assert leaf_hash(sm3, b"x") == hashlib.new("sm3", b"\x00x").digest()
    assert leaf_hash(sm3, b"x") != leaf_hash(sha256, b"x")


# -- published vectors -------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_published_inclusion_proofs_verify(index, size, path) -> None:
    lh = leaf_hash(sha256, LEAF_INPUTS[index])
    assert root_from_inclusion_proof(sha256, index, size, lh, path) == ROOTS[size]
    verify_inclusion(sha256, index, size, lh, path, ROOTS[size])


def _inclusion_probes(index, size, path, root, lh):
    """transparency-dev/merkle proof/verify_test.go corruptInclusionProof()."""
    probes = [
        (index - 1, size, root, lh, path),
        (index + 1, size, root, lh, path),
        (index ^ 2, size, root, lh, path),
        (index, size * 2, root, lh, path),
        (index, size // 2, root, lh, path),
        (index, size, root, b"WrongLeaf", path),
        (index, size, EMPTY, lh, path),
        (index, size, SOME_HASH, lh, path),
        (index, size, root, lh, [*path, b""]),
        (index, size, root, lh, [*path, root]),
        (index, size, root, lh, [b"", *path]),
        (index, size, root, lh, [root, *path]),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, root, lh, bad))
    if path:
        probes.append((index, size, root, lh, path[:-1]))
    if len(path) > 1:
        probes.append((index, size, root, lh, [path[0], SOME_HASH, *path[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_published_inclusion_proofs_reject_every_corruption_probe(index, size, path) -> None:
    lh = leaf_hash(sha256, LEAF_INPUTS[index])
    for pi, ps, proot, plh, ppath in _inclusion_probes(index, size, path, ROOTS[size], lh):
        with pytest.raises(ProofError):
            verify_inclusion(sha256, pi, ps, plh, ppath, proot)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_published_consistency_proofs_verify(size1, size2, proof) -> None:
    verify_consistency(sha256, size1, size2, proof, ROOTS[size1], ROOTS[size2])
    if size1 != size2:
        assert (
            root_from_consistency_proof(sha256, size1, size2, proof, ROOTS[size1]) == ROOTS[size2]
        )


@pytest.mark.parametrize(("size1", "size2", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_published_consistency_proofs_reject_every_corruption_probe(size1, size2, proof) -> None:
    """transparency-dev/merkle proof/verify_test.go corruptConsistencyProof()."""
    r1, r2 = ROOTS[size1], ROOTS[size2]
    probes = [
        (size1 - 1, size2, r1, r2, proof),
        (size1 + 1, size2, r1, r2, proof),
        (size1 ^ 2, size2, r1, r2, proof),
        (size1, size2 * 2, r1, r2, proof),
        (size1, size2 // 2, r1, r2, proof),
        (size1, size2, b"WrongRoot", r2, proof),
        (size1, size2, r1, b"WrongRoot", proof),
        (size1, size2, r2, r1, proof),
        (size1, size2, r1, r2, []),
        (size1, size2, r1, r2, [*proof, b""]),
        (size1, size2, r1, r2, [*proof, r1]),
        (size1, size2, r1, r2, [*proof, r2]),
        (size1, size2, r1, r2, [b"", *proof]),
        (size1, size2, r1, r2, [r1, *proof]),
        (size1, size2, r1, r2, [r2, *proof]),
        (size1, size2, r1, r2, [proof[0], *proof]),
        (size1, size2, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((size1, size2, r1, r2, bad))
    for s1, s2, a, b, p in probes:
        with pytest.raises(ProofError):
            verify_consistency(sha256, s1, s2, p, a, b)


def test_every_single_bit_flip_is_rejected_in_a_published_inclusion_proof() -> None:
    index, size, path = INCLUSION_VECTORS[2]
    lh = leaf_hash(sha256, LEAF_INPUTS[index])
    root = ROOTS[size]
    for bit in range(256):
        for i in range(len(path)):
            bad = list(path)
            bad[i] = flip(bad[i], bit)
            assert (
                reason_of(verify_inclusion, sha256, index, size, lh, bad, root) == "root_mismatch"
            )
        assert (
            reason_of(verify_inclusion, sha256, index, size, flip(lh, bit), path, root)
            == "root_mismatch"
        )
        assert (
            reason_of(verify_inclusion, sha256, index, size, lh, path, flip(root, bit))
            == "root_mismatch"
        )


def test_every_single_bit_flip_is_rejected_in_a_published_consistency_proof() -> None:
    size1, size2, proof = CONSISTENCY_VECTORS[4]  # 6 -> 7: first root is not a proof element
    r1, r2 = ROOTS[size1], ROOTS[size2]
    for bit in range(256):
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip(bad[i], bit)
            with pytest.raises(ProofError):
                verify_consistency(sha256, size1, size2, bad, r1, r2)
        with pytest.raises(ProofError):
            verify_consistency(sha256, size1, size2, proof, flip(r1, bit), r2)
        with pytest.raises(ProofError):
            verify_consistency(sha256, size1, size2, proof, r1, flip(r2, bit))


# -- each rejection has its own reason ------------------------------------------------

L8 = LEAF_INPUTS
P_0_8 = INCLUSION_VECTORS[1][2]
C_6_8 = CONSISTENCY_VECTORS[2][2]
LH0 = leaf_hash(sha256, L8[0])


def test_inclusion_index_at_or_past_size_is_rejected() -> None:
    assert reason_of(verify_inclusion, sha256, 8, 8, LH0, P_0_8, ROOTS[8]) == "index_out_of_range"
    assert reason_of(verify_inclusion, sha256, 0, 0, LH0, [], EMPTY) == "index_out_of_range"
    assert reason_of(verify_inclusion, sha256, 1, 0, LH0, [], EMPTY) == "index_out_of_range"
    assert reason_of(verify_inclusion, sha256, 2, 1, LH0, [], LH0) == "index_out_of_range"


def test_inclusion_one_hash_too_many_is_not_fully_consumed() -> None:
    for extra in (SOME_HASH, ROOTS[8], P_0_8[-1]):
        r = reason_of(verify_inclusion, sha256, 0, 8, LH0, [*P_0_8, extra], ROOTS[8])
        assert r == "proof_not_consumed"
    # size 1: the proof must be empty
    assert reason_of(verify_inclusion, sha256, 0, 1, LH0, [SOME_HASH], LH0) == "proof_not_consumed"


def test_inclusion_one_hash_too_few_is_a_wrong_length() -> None:
    assert (
        reason_of(verify_inclusion, sha256, 0, 8, LH0, P_0_8[:-1], ROOTS[8]) == "wrong_proof_length"
    )
    assert reason_of(verify_inclusion, sha256, 0, 8, LH0, [], ROOTS[8]) == "wrong_proof_length"


def test_inclusion_hash_of_the_wrong_size_is_rejected() -> None:
    assert reason_of(
        verify_inclusion, sha256, 0, 8, LH0, [*P_0_8[:2], P_0_8[2][:31]], ROOTS[8]
    ) == ("bad_hash_size")
    assert (
        reason_of(verify_inclusion, sha256, 0, 8, LH0 + b"\x00", P_0_8, ROOTS[8]) == "bad_hash_size"
    )
    assert reason_of(verify_inclusion, sha256, 0, 8, LH0, P_0_8, ROOTS[8][:16]) == "bad_hash_size"
    assert reason_of(verify_inclusion, sha256, 0, 1, b"", [], b"") == "bad_hash_size"


def test_inclusion_wrong_root_is_a_mismatch() -> None:
    assert reason_of(verify_inclusion, sha256, 0, 8, LH0, P_0_8, ROOTS[7]) == "root_mismatch"


def test_consistency_size1_greater_than_size2_is_rejected() -> None:
    assert reason_of(verify_consistency, sha256, 8, 6, C_6_8, ROOTS[8], ROOTS[6]) == (
        "size1_greater_than_size2"
    )
    assert (
        reason_of(verify_consistency, sha256, 1, 0, [], ROOTS[1], EMPTY)
        == "size1_greater_than_size2"
    )


def test_consistency_from_zero_needs_an_empty_proof_and_the_empty_root() -> None:
    verify_consistency(sha256, 0, 8, [], EMPTY, ROOTS[8])
    verify_consistency(sha256, 0, 0, [], EMPTY, EMPTY)
    assert reason_of(verify_consistency, sha256, 0, 8, [SOME_HASH], EMPTY, ROOTS[8]) == (
        "size1_zero_with_nonempty_proof"
    )
    assert reason_of(verify_consistency, sha256, 0, 8, [], SOME_HASH, ROOTS[8]) == "root_mismatch"
    assert reason_of(verify_consistency, sha256, 0, 0, [], EMPTY, SOME_HASH) == "root_mismatch"


def test_consistency_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    verify_consistency(sha256, 8, 8, [], ROOTS[8], ROOTS[8])
    assert reason_of(verify_consistency, sha256, 8, 8, [SOME_HASH], ROOTS[8], ROOTS[8]) == (
        "equal_sizes_with_nonempty_proof"
    )
    assert reason_of(verify_consistency, sha256, 8, 8, [], ROOTS[8], ROOTS[7]) == "root_mismatch"


def test_consistency_length_errors() -> None:
    assert reason_of(verify_consistency, sha256, 6, 8, [*C_6_8, SOME_HASH], ROOTS[6], ROOTS[8]) == (
        "proof_not_consumed"
    )
    assert reason_of(verify_consistency, sha256, 6, 8, C_6_8[:-1], ROOTS[6], ROOTS[8]) == (
        "wrong_proof_length"
    )
    assert (
        reason_of(verify_consistency, sha256, 6, 8, [], ROOTS[6], ROOTS[8]) == "wrong_proof_length"
    )


def test_consistency_wrong_first_or_second_root_is_a_mismatch() -> None:
    assert reason_of(verify_consistency, sha256, 6, 8, C_6_8, ROOTS[5], ROOTS[8]) == "root_mismatch"
    assert reason_of(verify_consistency, sha256, 6, 8, C_6_8, ROOTS[6], ROOTS[7]) == "root_mismatch"


def test_consistency_hash_of_the_wrong_size_is_rejected() -> None:
    assert reason_of(
        verify_consistency, sha256, 6, 8, [C_6_8[0][:-1], *C_6_8[1:]], ROOTS[6], ROOTS[8]
    ) == ("bad_hash_size")
    assert reason_of(verify_consistency, sha256, 6, 8, C_6_8, b"", ROOTS[8]) == "bad_hash_size"


@pytest.mark.parametrize("bad", [-1, True, 1.0, "3", None])
def test_non_integer_or_negative_sizes_are_rejected(bad) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(sha256, 0, bad, LH0, [], LH0)
    with pytest.raises(ProofError):
        verify_inclusion(sha256, bad, 8, LH0, P_0_8, ROOTS[8])
    with pytest.raises(ProofError):
        verify_consistency(sha256, bad, 8, C_6_8, ROOTS[6], ROOTS[8])


def test_proof_error_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match="index_out_of_range: leaf index 9 >= tree size 8"):
        verify_inclusion(sha256, 9, 8, LH0, P_0_8, ROOTS[8])


# -- against the naive reference, random sizes ----------------------------------------

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(data=st.data(), size=st.integers(1, 300))
def test_reference_inclusion_proofs_verify_and_only_at_their_index(data, size) -> None:
    lv = leaves(size)
    root = ref_mth(sha256, lv)
    index = data.draw(st.integers(0, size - 1))
    path = ref_path(sha256, index, lv)
    assert len(path) == inclusion_proof_length(index, size)
    lh = leaf_hash(sha256, lv[index])
    verify_inclusion(sha256, index, size, lh, path, root)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(sha256, other, size, lh, path, root)
    # The proof for a leaf does not prove a different leaf at the same index.
    with pytest.raises(ProofError):
        verify_inclusion(sha256, index, size, leaf_hash(sha256, b"forged"), path, root)


@FAST
@given(data=st.data(), size=st.integers(1, 300))
def test_any_single_bit_flip_in_an_inclusion_proof_root_or_leaf_is_rejected(data, size) -> None:
    lv = leaves(size)
    root = ref_mth(sha256, lv)
    index = data.draw(st.integers(0, size - 1))
    path = ref_path(sha256, index, lv)
    lh = leaf_hash(sha256, lv[index])
    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.integers(-2, len(path) - 1))
    if target == -2:
        lh = flip(lh, bit)
    elif target == -1:
        root = flip(root, bit)
    else:
        path = list(path)
        path[target] = flip(path[target], bit)
    with pytest.raises(ProofError) as e:
        verify_inclusion(sha256, index, size, lh, path, root)
    assert e.value.reason == "root_mismatch"


@FAST
@given(data=st.data(), size2=st.integers(1, 300))
def test_reference_consistency_proofs_verify(data, size2) -> None:
    lv = leaves(size2)
    size1 = data.draw(st.integers(0, size2))
    proof = ref_proof(sha256, size1, lv)
    assert len(proof) == consistency_proof_length(size1, size2)
    r1, r2 = ref_mth(sha256, lv[:size1]), ref_mth(sha256, lv)
    verify_consistency(sha256, size1, size2, proof, r1, r2)
    if 0 < size1 < size2:
        assert root_from_consistency_proof(sha256, size1, size2, proof, r1) == r2
        # Claiming the old tree had different contents fails.
        forged = ref_mth(sha256, [b"x", *lv[1:size1]])
        with pytest.raises(ProofError):
            verify_consistency(sha256, size1, size2, proof, forged, r2)


@FAST
@given(data=st.data(), size2=st.integers(2, 300))
def test_any_single_bit_flip_in_a_consistency_proof_or_roots_is_rejected(data, size2) -> None:
    lv = leaves(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = list(ref_proof(sha256, size1, lv))
    r1, r2 = ref_mth(sha256, lv[:size1]), ref_mth(sha256, lv)
    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.integers(-2, len(proof) - 1))
    if target == -2:
        r1 = flip(r1, bit)
    elif target == -1:
        r2 = flip(r2, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError) as e:
        verify_consistency(sha256, size1, size2, proof, r1, r2)
    assert e.value.reason == "root_mismatch"


@FAST
@given(data=st.data(), size2=st.integers(2, 300))
def test_consistency_proof_with_one_hash_added_or_removed_is_rejected(data, size2) -> None:
    lv = leaves(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = ref_proof(sha256, size1, lv)
    r1, r2 = ref_mth(sha256, lv[:size1]), ref_mth(sha256, lv)
    pos = data.draw(st.integers(0, len(proof)))
    longer = [*proof[:pos], SOME_HASH, *proof[pos:]]
    with pytest.raises(ProofError):
        verify_consistency(sha256, size1, size2, longer, r1, r2)
    shorter = proof[:pos] + proof[pos + 1 :] if pos < len(proof) else proof[:-1]
    with pytest.raises(ProofError):
        verify_consistency(sha256, size1, size2, shorter, r1, r2)


@FAST
@given(data=st.data(), size=st.integers(1, 200))
def test_sm3_trees_verify_with_sm3_and_not_with_sha256(data, size) -> None:
    lv = leaves(size)
    root = ref_mth(sm3, lv)
    index = data.draw(st.integers(0, size - 1))
    path = ref_path(sm3, index, lv)
    verify_inclusion(sm3, index, size, leaf_hash(sm3, lv[index]), path, root)
    size1 = data.draw(st.integers(0, size))
    verify_consistency(sm3, size1, size, ref_proof(sm3, size1, lv), ref_mth(sm3, lv[:size1]), root)
    with pytest.raises(ProofError):
        verify_inclusion(sha256, index, size, leaf_hash(sha256, lv[index]), path, root)


# -- prefix proofs (misbehaviour evidence) ---------------------------------------------


@FAST
@given(data=st.data(), size2=st.integers(2, 300))
def test_prefix_proof_implies_both_true_roots(data, size2) -> None:
    lv = leaves(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = ref_proof(sha256, size1, lv)
    r1 = ref_mth(sha256, lv[:size1])
    prefix = [r1, *proof] if size1 & (size1 - 1) == 0 else proof
    assert roots_from_prefix_proof(sha256, size1, size2, prefix) == (r1, ref_mth(sha256, lv))


def test_prefix_proof_rejects_bad_shapes() -> None:
    with pytest.raises(ProofError):
        roots_from_prefix_proof(sha256, 4, 4, [])
    with pytest.raises(ProofError):
        roots_from_prefix_proof(sha256, 0, 4, [])
    with pytest.raises(ProofError) as e:
        roots_from_prefix_proof(sha256, 4, 8, C_6_8[:1])  # needs 2 for a power of two
    assert e.value.reason == "wrong_proof_length"
    with pytest.raises(ProofError) as e:
        roots_from_prefix_proof(sha256, 6, 8, [*C_6_8, SOME_HASH])
    assert e.value.reason == "proof_not_consumed"


@pytest.mark.parametrize("bad", ["x" * 32, 7, None, [0] * 32])
def test_non_bytes_proof_elements_are_rejected_as_bad_hashes(bad) -> None:
    assert (
        reason_of(verify_inclusion, sha256, 0, 8, LH0, [*P_0_8[:2], bad], ROOTS[8])
        == "bad_hash_size"
    )
    assert reason_of(verify_consistency, sha256, 6, 8, [bad, *C_6_8[1:]], ROOTS[6], ROOTS[8]) == (
        "bad_hash_size"
    )


def test_bytearray_hashes_are_accepted() -> None:
    verify_inclusion(
        sha256, 0, 8, bytearray(LH0), [bytearray(p) for p in P_0_8], bytearray(ROOTS[8])
    )
