"""The evidence verifier, as Tally's code sees it: the standalone ``tally_verify``.

The verifier itself is the separately published package ``tally-verify`` (``verifier/``
in this repository, specified by docs/evidence-spec.md, decision 0024), which imports
nothing of Tally, so an auditor reads one module of about 460 lines of code and the format's
test vectors check it without Tally. This module only adapts it at the boundary:

* :class:`EvidenceError` is ``tally_verify``'s error *and* a
  :class:`tally.errors.VerificationFailed`, so Tally's callers (the API, the SDK, the
  CLI) keep their error codes; every function and method here converts what
  ``tally_verify`` raises into it;
* :class:`ValidatorHistory` and :func:`validator_history` accept Tally's suite objects
  (the node, the audit and the SDK hold those) and use ``tally_verify``'s suite of the
  same name;
* :func:`find_misbehaviour` (two conflicting checkpoints, which a court needs no bundle
  for) stays here, on :mod:`tally.log.checkpoint`'s conflict finder, so that the
  published verifier holds only what checking a bundle needs.

It imports only ``tally_verify``, the log, the crypto suites and the error codes
(tests/unit/test_layering.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tally_verify
from tally_verify import (
    BOUND_TO_GENESIS,
    FORMAT,
    TX_SIGNING_DOMAIN,
    VALIDATOR_UPDATE_DELAY,
    Checkpoint,
    Verdict,
    binds_genesis,
    genesis_validator_docs,
    jsonable,
)

from tally.crypto import get_suite
from tally.errors import VerificationFailed
from tally.log.checkpoint import (
    CosignatureVerifier,
    Misbehaviour,
    NoteError,
    NoteVerifier,
    find_conflict,
)

__all__ = ["BOUND_TO_GENESIS", "FORMAT", "TX_SIGNING_DOMAIN", "VALIDATOR_UPDATE_DELAY",
           "Checkpoint", "EvidenceError", "Misbehaviour", "ValidatorHistory", "Verdict",
           "binds_genesis", "find_misbehaviour", "genesis_validator_docs", "jsonable",
           "parse_bundle", "validator_history", "verify_bundle"]


class EvidenceError(tally_verify.EvidenceError, VerificationFailed):
    """The bundle does not prove what it claims. ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        VerificationFailed.__init__(self, reason, message)


@contextmanager
def _tally_errors() -> Iterator[None]:
    try:
        yield
    except tally_verify.EvidenceError as exc:
        if isinstance(exc, EvidenceError):
            raise
        raise EvidenceError(exc.reason, exc.message) from None


def _suite(suite: Any) -> tally_verify.Suite:
    """``tally_verify``'s suite named like ``suite`` (a Tally suite, or a suite's name)."""
    with _tally_errors():
        return tally_verify.suite(getattr(suite, "name", suite))


def parse_bundle(data: str | bytes) -> dict[str, Any]:
    with _tally_errors():
        return tally_verify.parse_bundle(data)


def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None,
                  bound_from_height: int | None = None) -> Verdict:
    with _tally_errors():
        return tally_verify.verify_bundle(bundle, genesis_hash=genesis_hash,
                                          bound_from_height=bound_from_height)


def find_misbehaviour(genesis_bytes: bytes, note_a: str, note_b: str) -> Misbehaviour | None:
    """Two validly signed checkpoints of the chain's log that cannot both be true (same
    size, different roots) are proof that every validator who signed both equivocated.
    Returns that proof, naming the signers, or None when the notes do not conflict."""
    with _tally_errors():
        genesis = tally_verify.parse_cbor(genesis_bytes, "genesis")
        suite = _suite(genesis.get("suite"))
        # Notes of two chains do not conflict: a note made on a copy of the chain (same
        # chain id, a reused key) must not make an honest validator look like one.
        history = ValidatorHistory([], suite, genesis.get("chain_id", ""),
                                   suite.hash(genesis_bytes), binds_genesis(genesis))
        for note in (note_a, note_b):
            history.check_genesis(tally_verify.parse_checkpoint(
                note.split("\n\n", 1)[0] + "\n", suite.hash_size))
    tally_suite = get_suite(suite.name)
    verifiers: list[Any] = []
    for v in genesis_validator_docs(genesis):
        key = bytes.fromhex(v["public_key"])
        verifiers += [NoteVerifier(v["name"], key, tally_suite),
                      CosignatureVerifier(v["name"], key, tally_suite)]
    try:
        return find_conflict(note_a, note_b, verifiers, hash_size=suite.hash_size)
    except (NoteError, ValueError) as exc:
        raise EvidenceError("checkpoint", str(exc)) from None


class ValidatorHistory(tally_verify.ValidatorHistory):
    """:class:`tally_verify.ValidatorHistory` over a Tally suite, raising Tally's error."""

    def __init__(self, genesis_docs: list[dict[str, Any]], suite: Any, chain_id: str,
                 genesis_hash: bytes | None = None, bound: bool = False) -> None:
        super().__init__(genesis_docs, _suite(suite), chain_id, genesis_hash, bound)

    def check(self, note: Any) -> tuple[Any, list[str]]:
        """The checkpoint (typed loosely, as Tally's callers have always read it: the
        audit, for one, splits its extension lines itself) and its signers."""
        with _tally_errors():
            return super().check(note)

    def prove(self, updates: Any) -> None:
        with _tally_errors():
            super().prove(updates)


def validator_history(updates: Any, genesis: dict[str, Any], suite: Any, chain_id: str,
                      genesis_hash: bytes) -> ValidatorHistory:
    """The validator sets of ``genesis`` as the bundle's ``updates`` change them."""
    with _tally_errors():
        history = ValidatorHistory(genesis_validator_docs(genesis), suite, chain_id,
                                   genesis_hash, binds_genesis(genesis))
    history.prove(updates)
    return history
