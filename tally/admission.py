"""Admitting a batch of transactions: decode on this thread, verify signatures on all cores.

Both engines admit batches the same way (the solo mempool, the API of a CometBFT node, and
CometBFT's CheckTx of a bundle). A slice's signatures are verified together (the suite's
``verify_many``: one Ed25519 batch, decision 0013), which releases the GIL, on a thread
pool, while the calling thread decodes the next slice: the decoding (which needs the
GIL) and the verifying overlap. Results are accepted in the batch's order, so a
sender's transactions in one batch are admitted in nonce order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from tally.crypto.suite import Suite
from tally.errors import TallyError
from tally.tx import Transaction, bad_signature, signed_message

_VERIFIERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                thread_name_prefix="tally-verify")
#: Transactions per verification task: enough that a task's bookkeeping is negligible,
#: few enough that decoding the next slice overlaps verifying this one.
SLICE = 128

Accepted = TypeVar("Accepted")


def admit_batch(
    raws: list[bytes],
    suite: Suite,
    precheck: Callable[[bytes], Transaction],
    accept: Callable[[Transaction], Accepted],
    *,
    is_verified: Callable[[Transaction], bool] = lambda tx: False,
) -> list[Accepted | TallyError]:
    """One result per raw transaction, in order: what ``accept`` returned for it, or the
    TallyError that refused it.

    ``precheck`` decodes and runs every check but the signature (raising TallyError);
    ``accept`` runs, in order, for each transaction whose signature verifies (it may
    raise TallyError too); ``is_verified`` says a signature was verified before.
    """
    results: list[Accepted | TallyError] = []
    in_flight: deque[tuple[list[Transaction | TallyError], Future]] = deque()

    def settle(checked: list[Transaction | TallyError], verdicts: Future) -> None:
        errors = iter(verdicts.result())
        for item in checked:
            if isinstance(item, TallyError):
                results.append(item)
                continue
            error = next(errors)
            if error is not None:
                results.append(error)
                continue
            try:
                results.append(accept(item))
            except TallyError as exc:
                results.append(exc)

    for start in range(0, len(raws), SLICE):
        checked = [_prechecked(precheck, raw) for raw in raws[start:start + SLICE]]
        to_verify = [(tx, not is_verified(tx)) for tx in checked
                     if isinstance(tx, Transaction)]
        in_flight.append((checked, _VERIFIERS.submit(_signature_errors, to_verify, suite)))
        while in_flight and in_flight[0][1].done():
            settle(*in_flight.popleft())
    while in_flight:
        settle(*in_flight.popleft())
    return results


def _prechecked(precheck: Callable[[bytes], Transaction], raw: bytes
                ) -> Transaction | TallyError:
    try:
        return precheck(raw)
    except TallyError as exc:
        return exc


def _signature_errors(txs: list[tuple[Transaction, bool]], suite: Suite
                      ) -> list[TallyError | None]:
    """Each transaction's signature error, or None where it verifies (or need not)."""
    to_verify = [tx for tx, verify in txs if verify]
    verdicts = iter(suite.verify_many([signed_message(tx) for tx in to_verify]))
    return [None if not verify or next(verdicts) else bad_signature() for _tx, verify in txs]


__all__ = ["SLICE", "admit_batch"]
