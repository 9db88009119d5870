"""The HTTP API of a node (FastAPI). Its OpenAPI document is served at /openapi.json.

The routes live in :mod:`tally.api.routers`, one router per domain (chain, transactions,
custody, proofs, contracts, events), each route with a response model from
:mod:`tally.protocol.http`. This module composes them and keeps what every route shares:
errors as JSON ``{"code": ..., "message": ...}`` with a stable code from
:mod:`tally.errors` (whether they come from admission, a lookup or request validation),
the request-body limits, and the guard that silences a node that diverged.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tally.api.routers import chain, contracts, custody, events, proofs, transactions
from tally.errors import Code, TallyError
from tally.node import Node

STATUS_OF = {
    Code.NOT_FOUND: 404,
    Code.UNAUTHORISED: 403,
    Code.DUPLICATE: 409,
    Code.MEMPOOL_FULL: 503,
    Code.UNAVAILABLE: 503,
    Code.OVERSIZE: 413,
}
ROUTERS = [chain.router, transactions.router, custody.router, proofs.router,
           contracts.router, events.router]


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="Tally node API",
        version="1",
        description="Submit custody transactions, read state with proofs, export evidence.",
    )
    app.state.node = node
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(TallyError)
    async def tally_error(_: Request, exc: TallyError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=STATUS_OF.get(exc.code, 400))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own answers (no such route, method not allowed) in the shape of every
        other error: ``{code, message}``."""
        code = Code.NOT_FOUND if exc.status_code == 404 else Code.INVALID_REQUEST
        return JSONResponse({"code": str(code), "message": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"code": str(Code.INVALID_REQUEST),
                             "message": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        # One transaction as JSON with base64: the size limit in force (the committee
        # may change it), twice, plus room for the envelope.
        limit = (node.params.max_tx_bytes * 2 + 1024 if request.url.path == "/v1/txs"
                 else 64 * 1024 * 1024)
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

    return app
