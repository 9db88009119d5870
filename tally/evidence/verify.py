"""The evidence verifier, as Tally's code sees it: the standalone ``tally_verify``.

The verifier itself is the separately published package ``tally-verify`` (``verifier/``
in this repository, specified by docs/evidence-spec.md, decision 0024), which imports
nothing of Tally, so an auditor reads one module of under 500 lines and the format's
test vectors check it without Tally. This module only adapts it at the boundary:

* :class:`EvidenceError` is ``tally_verify``'s error *and* a
  :class:`tally.errors.VerificationFailed`, so Tally's callers (the API, the SDK, the
  CLI) keep their error codes; every function and method here converts what
  ``tally_verify`` raises into it;
* :class:`ValidatorHistory` and :func:`validator_history` accept Tally's suite objects
  (the node, the audit and the SDK hold those) and use ``tally_verify``'s suite of the
  same name.

It imports only ``tally_verify`` and ``tally.errors`` (tests/unit/test_layering.py).
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
    Misbehaviour,
    Verdict,
    binds_genesis,
    genesis_validator_docs,
    jsonable,
)

from tally.errors import VerificationFailed

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
    """``tally_verify``'s suite named like ``suite`` (a Tally suite, or one of its own)."""
    with _tally_errors():
        return tally_verify.suite(suite.name)


def parse_bundle(data: str | bytes) -> dict[str, Any]:
    with _tally_errors():
        return tally_verify.parse_bundle(data)


def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None
                  ) -> Verdict:
    with _tally_errors():
        return tally_verify.verify_bundle(bundle, genesis_hash=genesis_hash)


def find_misbehaviour(genesis_bytes: bytes, note_a: str, note_b: str) -> Misbehaviour | None:
    with _tally_errors():
        return tally_verify.find_misbehaviour(genesis_bytes, note_a, note_b)


class ValidatorHistory(tally_verify.ValidatorHistory):
    """:class:`tally_verify.ValidatorHistory` over a Tally suite, raising Tally's error."""

    def __init__(self, genesis_docs: list[dict[str, Any]], suite: Any, chain_id: str,
                 genesis_hash: bytes | None = None, bound: bool = False) -> None:
        super().__init__(genesis_docs, _suite(suite), chain_id, genesis_hash, bound)

    def check(self, note: Any) -> tuple[Checkpoint, list[str]]:
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
