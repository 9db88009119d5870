"""The HTTP API of a node (FastAPI). Its OpenAPI document is served at /openapi.json.

Every error is JSON ``{"code": ..., "message": ...}`` with a stable code from
:mod:`tally.errors`, whether it comes from admission, a lookup or request validation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from tally.errors import Code, TallyError
from tally.evidence.export import export_bundle
from tally.metrics import CONTENT_TYPE
from tally.node import Node, Receipt

STATUS_OF = {
    Code.NOT_FOUND: 404,
    Code.UNAUTHORISED: 403,
    Code.DUPLICATE: 409,
    Code.MEMPOOL_FULL: 503,
    Code.UNAVAILABLE: 503,
    Code.OVERSIZE: 413,
}
MAX_BATCH = 10_000


class TxSubmission(BaseModel):
    tx: str = Field(description="the signed transaction's wire bytes, base64")


class BatchSubmission(BaseModel):
    txs: list[str] = Field(description="signed transactions, base64 each", max_length=MAX_BATCH)
    wait: bool = Field(False, description="wait until every transaction is committed")


class ReceiptModel(BaseModel):
    tx: str
    height: int
    position: int
    code: str
    message: str
    events: list[int]
    result: Any = None


class QueryRequest(BaseModel):
    method: str = Field(description="a @view method of the contract", max_length=64)
    args: list[Any] = Field(default_factory=list, description="its arguments")


class PendingModel(BaseModel):
    tx: str
    status: Literal["pending"] = "pending"


class ErrorModel(BaseModel):
    code: str
    message: str


class BatchResult(BaseModel):
    results: list[ReceiptModel | PendingModel | ErrorModel]


def _decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TallyError("tx must be base64", Code.MALFORMED) from None


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="Tally node API",
        version="1",
        description="Submit custody transactions, read state with proofs, export evidence.",
    )
    max_body = node.genesis.params.max_tx_bytes * 2 + 1024

    @app.exception_handler(TallyError)
    async def tally_error(_: Request, exc: TallyError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=STATUS_OF.get(exc.code, 400))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"code": str(Code.INVALID_REQUEST),
                             "message": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        limit = max_body if request.url.path == "/v1/txs" else 64 * 1024 * 1024
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return JSONResponse({"code": str(Code.OVERSIZE),
                                 "message": f"request body over {limit} bytes"}, status_code=413)
        return await call_next(request)

    @app.middleware("http")
    async def refuse_when_diverged(request: Request, call_next: Any) -> Any:
        """A node whose state diverged from the network's must not answer as if it were
        right: everything under /v1 but the status is refused until it is rebuilt."""
        divergence = node.diverged
        if divergence is not None and request.url.path.startswith("/v1/") and \
                request.url.path != "/v1/status":
            return JSONResponse({"code": str(Code.UNAVAILABLE), "message": (
                f"this node diverged from the network at height {divergence.height}: "
                f"validators {', '.join(divergence.dissenters)} signed another checkpoint; "
                "ask another node, and rebuild this one's data directory")}, status_code=503)
        return await call_next(request)

    @app.get("/v1/status", summary="Chain id, height, log size and roots of the latest block")
    def status() -> dict[str, Any]:
        return node.status()

    @app.get("/metrics", summary="Prometheus metrics of this node",
             response_class=PlainTextResponse,
             description="Height, log sizes, the latest block's time and size, checkpoint "
                         "cosignatures, committed transactions and API submissions by "
                         "outcome, process CPU and memory; Prometheus text format. "
                         "See docs/network.md#monitoring and decision 0010.")
    def metrics() -> Response:
        return Response(node.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/genesis", summary="The genesis document")
    def genesis() -> dict[str, Any]:
        return node.genesis.to_doc() | {"hash": node.genesis.hash.hex()}

    @app.post("/v1/txs", summary="Submit one signed transaction",
              response_model=ReceiptModel | PendingModel,
              responses={400: {"model": ErrorModel}, 413: {"model": ErrorModel}})
    def submit(body: TxSubmission, wait: Literal["commit", "none"] = "commit") -> Any:
        try:
            raw = _decode_b64(body.tx)
        except TallyError as exc:
            node.metrics.count_submissions([exc])  # the node counts what reaches it
            raise
        if wait == "none":
            return PendingModel(tx=node.submit(raw))
        return node.submit_and_wait(raw).to_dict()

    @app.post("/v1/txs/batch", summary="Submit many signed transactions", response_model=BatchResult)
    def submit_batch(body: BatchSubmission) -> Any:
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

    @app.get("/v1/txs/{tx_id}", summary="A committed transaction, its receipt and events")
    def get_tx(tx_id: str) -> dict[str, Any]:
        return node.transaction(tx_id)

    @app.get("/v1/txs/{tx_id}/receipt", summary="The receipt of a committed transaction",
             response_model=ReceiptModel, responses={404: {"model": ErrorModel}})
    def get_receipt(tx_id: str) -> Any:
        return node.receipt(tx_id).to_dict()

    @app.get("/v1/blocks/latest", summary="The latest block")
    def latest_block() -> dict[str, Any]:
        return node.block(node.status()["height"])

    @app.get("/v1/blocks/{height}", summary="A block: header, checkpoint and transaction ids")
    def get_block(height: int) -> dict[str, Any]:
        return node.block(height)

    @app.get("/v1/checkpoints/{height}", response_class=PlainTextResponse,
             summary="The signed checkpoint (C2SP signed note) of a block")
    def checkpoint(height: int) -> str:
        return node.checkpoint_note(height)

    @app.get("/v1/assets/{asset}", summary="An asset, its supply and its holders")
    def get_asset(asset: str) -> dict[str, Any]:
        return node.asset(asset)

    @app.get("/v1/assets/{asset}/history", summary="The asset's custody history, oldest first")
    def history(asset: str, after: int = -1, limit: int = Query(1000, ge=1, le=10_000)
                ) -> list[dict[str, Any]]:
        return node.history(asset, after, limit)

    @app.get("/v1/assets/{asset}/holdings/{holder}",
             summary="Units held, pledged and frozen, with a state proof")
    def holding(asset: str, holder: str) -> dict[str, Any]:
        return node.state_proof(f"holding/{asset}/{holder}".encode())

    @app.get("/v1/accounts/{address}", summary="An account's next nonce and roles")
    def account(address: str) -> dict[str, Any]:
        return node.account(address)

    @app.get("/v1/proofs/state", summary="Any state key's value or absence, with a proof")
    def state_proof(key: str) -> dict[str, Any]:
        return node.state_proof(key.encode())

    @app.get("/v1/proofs/inclusion", summary="RFC 9162 inclusion proof of a log entry")
    def inclusion(index: int = Query(ge=0), size: int = Query(ge=1)) -> dict[str, Any]:
        return node.inclusion_proof(index, size)

    @app.get("/v1/proofs/consistency", summary="RFC 9162 consistency proof between two sizes")
    def consistency(first: int = Query(ge=0), second: int = Query(ge=1)) -> dict[str, Any]:
        return node.consistency_proof(first, second)

    @app.get("/v1/evidence/{event_index}", summary="The evidence bundle of a log entry")
    def evidence(event_index: int, consistency: bool = False) -> dict[str, Any]:
        return export_bundle(node, event_index, consistency=consistency)

    @app.get("/v1/contracts/{name}", summary="A contract: address, version and its history")
    def contract(name: str) -> dict[str, Any]:
        return node.contract(name)

    @app.get("/v1/contracts/{name}/source", response_class=PlainTextResponse,
             summary="The source of a contract version (the latest by default)")
    def contract_source(name: str, version: int | None = Query(None, ge=1)) -> str:
        return node.contract_source(name, version)

    @app.post("/v1/contracts/{name}/query", summary="Run a @view method; no transaction")
    def contract_query(name: str, body: QueryRequest) -> dict[str, Any]:
        from tally.node import jsonable

        return {"result": jsonable(node.contract_query(name, body.method, body.args))}

    @app.get("/v1/commercial/events", summary="Contract events (the commercial log)")
    def commercial_events(after: int = -1, limit: int = Query(1000, ge=1, le=10_000),
                          contract: str | None = None) -> list[dict[str, Any]]:
        return node.commercial_events(after, limit, contract)

    @app.get("/v1/commercial/evidence/{index}",
             summary="The evidence bundle of a contract event")
    def commercial_evidence(index: int, consistency: bool = False) -> dict[str, Any]:
        from tally.evidence.export import export_commercial_bundle

        return export_commercial_bundle(node, index, consistency=consistency)

    @app.get("/v1/events", summary="Committed events after a log index")
    def events(after: int = -1, limit: int = Query(1000, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return node.events(after, limit)

    @app.get("/v1/events/stream", summary="Server-sent events: every committed event, live")
    async def stream(request: Request, after: int = -1) -> StreamingResponse:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        def wake_up(_block: Any) -> None:
            loop.call_soon_threadsafe(wake.set)

        node.add_listener(wake_up)

        async def generate() -> AsyncIterator[str]:
            cursor = after
            while not await request.is_disconnected():
                batch = await asyncio.to_thread(node.events, cursor, 1000)
                for ev in batch:
                    cursor = ev["log_index"]
                    yield f"id: {cursor}\nevent: {ev['type']}\ndata: {json.dumps(ev)}\n\n"
                if not batch:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"

        return StreamingResponse(generate(), media_type="text/event-stream")

    return app
