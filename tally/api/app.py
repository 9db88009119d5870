"""The HTTP API of a node (FastAPI). Its OpenAPI document is served at /openapi.json.

The routes live in :mod:`tally.api.routers`, one router per domain (chain, transactions,
custody, proofs, contracts, events, identity, alerts), each route with a response model from
:mod:`tally.protocol.http`. This module composes them and keeps what every route shares:
errors as JSON ``{"code": ..., "message": ...}`` with a stable code from
:mod:`tally.errors` (whether they come from admission, a lookup or request validation),
the request-body guard (:mod:`tally.api.guard`: sizes, read time, JSON depth, with the
limits of :class:`~tally.api.limits.ApiLimits`), messages stripped of internal names, and
the guard that silences a node that diverged. Connection limits (head timeout, connections
per client) sit below the app, in :mod:`tally.api.server`.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from tally.api.access import MODES, AccessGuard
from tally.api.guard import BodyGuard, send_error
from tally.api.limits import ApiLimits
from tally.api.queries import QueryGate
from tally.api.routers import (
    alerts,
    chain,
    contracts,
    custody,
    events,
    identity,
    proofs,
    transactions,
)
from tally.errors import Code, TallyError
from tally.node import Node
from tally.supervision.alerts import Alerter

STATUS_OF = {
    Code.NOT_FOUND: 404,
    Code.UNAUTHORISED: 403,
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.DUPLICATE: 409,
    Code.MEMPOOL_FULL: 503,
    Code.UNAVAILABLE: 503,
    Code.OVERSIZE: 413,
    Code.RATE_LIMITED: 429,
}
log = logging.getLogger("tally.api")
ROUTERS = [chain.router, transactions.router, custody.router, proofs.router,
           contracts.router, events.router, identity.router, alerts.router]


def create_app(node: Node, limits: ApiLimits | None = None, access: str = "open", *,
               alerter: Alerter | None = None) -> FastAPI:
    """The node's API. ``access``: ``open`` (anyone) or ``authenticated`` (signed
    requests of registered accounts, each seeing what it may: :mod:`tally.api.access`);
    with ``alerter`` (a node run with ``--alerts``) it also serves the alerts
    (/v1/alerts), which otherwise answer 404."""
    limits = limits or ApiLimits()
    if access not in MODES:
        raise ValueError(f"access must be one of {', '.join(MODES)}, not {access!r}")
    app = FastAPI(
        title="Tally node API",
        version="1",
        description="Submit custody transactions, read state with proofs, export evidence.",
    )
    app.state.node = node
    app.state.alerter = alerter
    app.state.access = access
    app.state.limits = limits
    app.state.queries = QueryGate(limits)
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(TallyError)
    async def tally_error(_: Request, exc: TallyError) -> JSONResponse:
        answer = exc.to_dict() | {"message": public_message(exc.message)}
        return JSONResponse(answer, status_code=STATUS_OF.get(exc.code, 400),
                            headers={"retry-after": "1"} if exc.code is Code.RATE_LIMITED
                            else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own answers (no such route, method not allowed) in the shape of every
        other error: ``{code, message}``."""
        code = Code.NOT_FOUND if exc.status_code == 404 else Code.INVALID_REQUEST
        return JSONResponse({"code": str(code), "message": public_message(str(exc.detail))},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"code": str(Code.INVALID_REQUEST),
                             "message": public_message(f"{where}: {first.get('msg')}")},
                            status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        """A bug: logged with its traceback here, answered without it."""
        log.error("unhandled error in the API", exc_info=exc)
        return JSONResponse({"code": str(Code.INTERNAL), "message": "internal error"},
                            status_code=500)

    def body_limit(path: str) -> int:
        if path == "/v1/txs":
            # One transaction as JSON with base64: the size limit in force (the committee
            # may change it), twice, plus room for the envelope.
            return node.params.max_tx_bytes * 2 + 1024
        return limits.batch_body_bytes if path == "/v1/txs/batch" else limits.body_bytes

    if access == "authenticated":
        # Inside the body guard (added first, so it runs after it): the body it hashes
        # has already been bounded.
        app.add_middleware(AccessGuard, node=node, window_s=limits.auth_window_s,
                           replay_capacity=limits.replay_capacity)
    app.add_middleware(BodyGuard, limit_of=body_limit, timeout=limits.body_timeout_s,
                       json_depth=limits.json_depth)
    app.add_middleware(DivergenceGuard, node=node)
    return app


class DivergenceGuard:
    """A node whose state diverged from the network's must not answer as if it were
    right: everything under /v1 but the status is refused until it is rebuilt. (A pure
    ASGI middleware: FastAPI's ``@app.middleware`` costs two tasks a request.)"""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        divergence = self.node.diverged
        path = scope.get("path", "")
        if divergence is not None and scope["type"] == "http" and path.startswith("/v1/") \
                and path != "/v1/status":
            await send_error(send, 503, Code.UNAVAILABLE, (
                f"this node diverged from the network at height {divergence.height}: "
                f"validators {', '.join(divergence.dissenters)} signed another checkpoint; "
                "ask another node, and rebuild this one's data directory"))
            return
        await self.app(scope, receive, send)


#: What Python puts in an exception's text that says how this node is built, not what
#: went wrong: the qualified names of the VM's nested and private functions (a contract
#: calling ``sorted(1, 2)`` reads "sorted() takes 1 positional argument", not
#: "iteration.<locals>.b_sorted() ..."), object addresses, source paths.
_INTERNAL_NAMES = [
    (re.compile(r"[\w.]*<locals>\.(?:b_)?"), ""),
    (re.compile(r"\b_[A-Z]\w*\."), ""),
    (re.compile(r"<(?:\w+\.)*(\w+) object at 0x[0-9a-fA-F]+>"), r"a \1"),
    (re.compile(r" at 0x[0-9a-fA-F]+"), ""),
    (re.compile(r"(?:[A-Za-z]:)?[\w./\\-]*[/\\][\w.-]+\.py\b"), "a source file"),
]
MAX_MESSAGE = 500


def public_message(message: str) -> str:
    """An error message as a client may read it: no internal names, addresses or paths
    (a contract's TypeError quotes the VM's own function names), and not over
    :data:`MAX_MESSAGE` characters."""
    for pattern, replacement in _INTERNAL_NAMES:
        message = pattern.sub(replacement, message)
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 1] + "…"
