"""One error vocabulary: every code a user can meet is a member of tally.errors.Code, from
the transaction decoder through the VM and the verifiers to the receipt a client reads."""

from __future__ import annotations

import inspect

import pytest

from tally import vm
from tally.errors import (
    ABCI_CODES,
    ADMISSION_CODES,
    CODE_OF_ABCI,
    Code,
    ExecutionFailed,
    NotFound,
    TallyError,
    TxRejected,
    Unavailable,
    VerificationFailed,
    as_code,
    error_for,
)
from tally.evidence.verify import EvidenceError
from tally.log.checkpoint import NoteError, QuorumError
from tally.log.merkle import ProofError
from tally.protocol.receipt import Receipt
from tally.state.trie import StateProofError


def test_every_code_has_one_fixed_abci_number() -> None:
    assert set(ABCI_CODES) == set(Code)
    assert len(set(ABCI_CODES.values())) == len(ABCI_CODES)
    assert ABCI_CODES[Code.OK] == 0 and ABCI_CODES[Code.INTERNAL] == 99
    assert all(CODE_OF_ABCI[n] == c for c, n in ABCI_CODES.items())


def test_every_vm_error_speaks_a_code_of_the_vocabulary() -> None:
    classes = [c for _, c in inspect.getmembers(vm.errors, inspect.isclass)
               if issubclass(c, vm.VMError)]
    assert len(classes) >= 15
    for cls in classes:
        assert cls.code in Code._value2member_map_, cls
        # contracts see codes as values: they must stay plain strings, not enum members
        assert type(cls.code) is str, cls


@pytest.mark.parametrize("cls,reason", [
    (ProofError, ProofError.ROOT_MISMATCH), (NoteError, NoteError.BAD_SIGNATURE),
    (StateProofError, StateProofError.NOT_ON_PATH),
    (EvidenceError, "leaf_mismatch")])
def test_a_failed_proof_is_a_verification_failure_not_an_outage(cls: type, reason: str) -> None:
    exc = cls(reason, "the proof does not reach the root")
    assert isinstance(exc, VerificationFailed) and isinstance(exc, TallyError)
    assert not isinstance(exc, Unavailable)
    assert exc.code is Code.VERIFICATION_FAILED and exc.reason == reason
    assert exc.to_dict() == {"code": "VERIFICATION_FAILED", "reason": reason,
                             "message": "the proof does not reach the root"}
    assert str(exc) == f"{reason}: the proof does not reach the root"


def test_a_missing_quorum_is_a_verification_failure() -> None:
    exc = QuorumError("signed by 1 of 4", ["v0"], 1, 4)
    assert isinstance(exc, VerificationFailed) and exc.code is Code.VERIFICATION_FAILED


def test_codes_read_back_become_typed_errors() -> None:
    for code in ADMISSION_CODES:
        assert type(error_for(code, "m")) is TxRejected
    assert type(error_for("NOT_FOUND", "m")) is NotFound
    assert type(error_for("UNAVAILABLE", "m")) is Unavailable
    failed = error_for("INSUFFICIENT_UNITS", "not enough")
    assert type(failed) is ExecutionFailed and failed.code is Code.INSUFFICIENT_UNITS
    assert as_code("A_CODE_FROM_A_NEWER_PEER") is Code.INTERNAL


def test_a_receipt_raises_its_typed_error() -> None:
    ok = Receipt("ab" * 32, 3, 0, "OK", "", [7])
    assert ok.ok and ok.error() is None and ok.raise_for_code() is ok
    failed = Receipt("ab" * 32, 3, 1, "UNAUTHORISED", "needs the issuer role")
    with pytest.raises(ExecutionFailed) as caught:
        failed.raise_for_code()
    assert caught.value.code is Code.UNAUTHORISED
    assert Receipt.from_dict(failed.to_dict()) == failed
