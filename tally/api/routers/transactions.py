"""Transactions: submit one or many, read a committed one and its receipt."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from fastapi import APIRouter, Request

from tally.api import access
from tally.api.routers import COMMON, NodeDep, errors
from tally.errors import Code, TallyError
from tally.protocol.http import (
    BatchResult,
    BatchSubmission,
    PendingModel,
    ReceiptModel,
    Transaction,
    TxSubmission,
)
from tally.protocol.receipt import Receipt

router = APIRouter(tags=["transactions"], responses=COMMON)


def _decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TallyError("tx must be base64", Code.MALFORMED) from None


@router.post("/v1/txs", summary="Submit one signed transaction",
             response_model=ReceiptModel | PendingModel,
             responses=errors(403, 409, 413),
             description="With `wait=commit` (the default) the answer is the receipt, once "
                         "the block is durable; a transaction that failed in its block is a "
                         "receipt with its code, not an HTTP error. With `wait=none` the "
                         "answer is the id of the admitted transaction.")
def submit(node: NodeDep, body: TxSubmission, wait: Literal["commit", "none"] = "commit"
           ) -> Any:
    try:
        raw = _decode_b64(body.tx)
    except TallyError as exc:
        node.metrics.count_submissions([exc])  # the node counts what reaches it
        raise
    if wait == "none":
        return PendingModel(tx=node.submit(raw), status="pending")
    return node.submit_and_wait(raw).to_dict()


@router.post("/v1/txs/batch", summary="Submit many signed transactions",
             response_model=BatchResult, response_model_exclude_unset=True,
             responses=errors(413))
def submit_batch(node: NodeDep, body: BatchSubmission) -> Any:
    decoded: list[bytes | TallyError] = []
    for text in body.txs:
        try:
            decoded.append(_decode_b64(text))
        except TallyError as exc:
            decoded.append(exc)
    node.metrics.count_submissions([d for d in decoded if isinstance(d, TallyError)])
    submitted = iter(node.submit_many([d for d in decoded if isinstance(d, bytes)],
                                      wait=body.wait))
    results = []
    for item in decoded:
        r = item if isinstance(item, TallyError) else next(submitted)
        if isinstance(r, (TallyError, Receipt)):
            results.append(r.to_dict())
        else:
            results.append({"tx": r, "status": "pending"})
    return {"results": results}


@router.get("/v1/txs/{tx_id}", summary="A committed transaction, its receipt and events",
            response_model=Transaction, responses=errors(404))
def transaction(node: NodeDep, request: Request, tx_id: str) -> Any:
    access.check(request, access.TxOf(tx_id))
    return node.reader.transaction(tx_id)


@router.get("/v1/txs/{tx_id}/receipt", summary="The receipt of a committed transaction",
            response_model=ReceiptModel, responses=errors(404))
def receipt(node: NodeDep, request: Request, tx_id: str) -> Any:
    access.check(request, access.TxOf(tx_id))
    return node.reader.receipt(tx_id).to_dict()
