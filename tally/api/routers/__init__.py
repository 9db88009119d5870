"""The API's routers, one per domain; :func:`tally.api.app.create_app` composes them.

Each route declares its response model (tally/protocol/http.py) and the error answers it
can give, so /openapi.json describes every response. A router reaches the node through
the ``NodeDep`` dependency (the app's ``state.node``), never through a global.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from tally.node import Node
from tally.protocol.http import ErrorModel


async def node_of(request: Request) -> Node:
    """The app's node (``async``: FastAPI runs a plain function dependency on a worker
    thread, one thread hop per request for an attribute read)."""
    return request.app.state.node


NodeDep = Annotated[Node, Depends(node_of)]

#: Heights, log indexes and sizes are stored as SQLite's signed 64-bit integers: a larger
#: one in a path or query is a malformed request (422 with a code), never a server error.
MAX_POSITION = 2**63 - 1
#: A block height or log index in a path.
Position = Annotated[int, Path(ge=0, le=MAX_POSITION)]
#: ``?after=``: the last position a client has seen (-1: from the start).
After = Annotated[int, Query(ge=-1, le=MAX_POSITION)]

_WHAT = {
    400: "refused: a malformed or invalid request, or a refused transaction",
    401: "unauthenticated: this node serves only requests signed by a registered, active "
         "account (docs/access.md)",
    403: "not allowed: the request's identity may not see this",
    404: "not found",
    409: "a duplicate",
    413: "the request body is too large",
    422: "the request does not match its schema",
    429: "too many requests from this address: retry after the Retry-After seconds",
    503: "the node cannot answer now (engine stopped, diverged, mempool full, busy)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all answered with ErrorModel."""
    return {s: {"model": ErrorModel, "description": _WHAT[s]} for s in statuses}


def text(description: str, media_type: str = "text/plain", *, error_statuses: tuple[int, ...]
         = ()) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that answers text, not JSON; its errors are JSON
    all the same (FastAPI would otherwise document them in the route's media type)."""
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorModel"}}}
    return {200: {"description": description,
                  "content": {media_type: {"schema": {"type": "string"}}}},
            **{s: {"description": _WHAT[s], "content": ref}
               for s in (400, 401, 403, 422, 503, *error_statuses)}}


#: What every /v1 route may answer besides success: a bad request, a request that does
#: not match the schema, a node that cannot serve (diverged, engine stopped), and on an
#: authenticated node an unsigned request (401) or one for what its identity may not
#: see (403).
COMMON = errors(400, 401, 403, 422, 503)
