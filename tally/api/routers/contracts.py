"""Contracts (tier 2): records, sources, @view queries."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from tally.api import access
from tally.api.queries import QueryGate
from tally.api.routers import COMMON, MAX_POSITION, NodeDep, errors, text
from tally.node import jsonable
from tally.protocol.http import Contract, QueryRequest, QueryResult

router = APIRouter(tags=["contracts"], responses=COMMON)


@router.get("/v1/contracts/{name}", summary="A contract: address, version and its history",
            response_model=Contract, response_model_exclude_unset=True, responses=errors(404))
def contract(node: NodeDep, name: str) -> Any:
    return node.reader.contract(name)


@router.get("/v1/contracts/{name}/source", response_class=PlainTextResponse,
            summary="The source of a contract version (the latest by default)",
            responses=text("the contract's Python source", error_statuses=(404,)))
def contract_source(node: NodeDep, name: str, version: int | None = Query(None, ge=1, le=MAX_POSITION)) -> str:
    return node.reader.contract_source(name, version)


@router.post("/v1/contracts/{name}/query", summary="Run a @view method; no transaction",
             response_model=QueryResult, responses=errors(404, 429),
             description="The query runs on the node's query workers, within the node's "
                         "query step budget and timeout, and counts against the client's "
                         "query rate (docs/api.md, Limits).")
async def contract_query(node: NodeDep, request: Request, name: str, body: QueryRequest
                         ) -> Any:
    if access.requester(request) is not None:
        await asyncio.to_thread(access.check, request,
                                access.regulators("contract queries"))
    gate: QueryGate = request.app.state.queries
    steps: int = request.app.state.limits.query_steps
    client = request.client.host if request.client else "unknown"

    def run() -> Any:
        return jsonable(node.reader.contract_query(name, body.method, body.args, steps=steps))

    return {"result": await gate.run(client, run)}
