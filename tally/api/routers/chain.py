"""Chain facts: status, genesis, blocks, checkpoints, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from tally.api.routers import COMMON, NodeDep, Position, errors, text
from tally.metrics import CONTENT_TYPE
from tally.protocol.http import Block, GenesisDocument, Status

router = APIRouter(tags=["chain"], responses=COMMON)


@router.get("/v1/status", summary="Chain id, height, log size and roots of the latest block",
            response_model=Status)
def status(node: NodeDep) -> Any:
    return node.status()


@router.get("/metrics", summary="Prometheus metrics of this node",
            response_class=PlainTextResponse,
            responses=text("Prometheus text format 0.0.4", CONTENT_TYPE.split(";")[0]),
            description="Height, log sizes, the latest block's time and size, checkpoint "
                        "cosignatures, committed transactions and API submissions by "
                        "outcome, process CPU and memory; Prometheus text format. "
                        "See docs/network.md#monitoring and decision 0010.")
def metrics(node: NodeDep) -> Response:
    return Response(node.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/v1/genesis", summary="The genesis document", response_model=GenesisDocument,
            response_model_exclude_unset=True)
def genesis(node: NodeDep) -> Any:
    return node.genesis.to_doc() | {"hash": node.genesis.hash.hex()}


@router.get("/v1/blocks/latest", summary="The latest block", response_model=Block,
            response_model_exclude_unset=True, responses=errors(404))
def latest_block(node: NodeDep) -> Any:
    return node.reader.block(node.reader.height())


@router.get("/v1/blocks/{height}", summary="A block: header, checkpoint and transaction ids",
            response_model=Block, response_model_exclude_unset=True, responses=errors(404))
def block(node: NodeDep, height: Position) -> Any:
    return node.reader.block(height)


@router.get("/v1/checkpoints/{height}", response_class=PlainTextResponse,
            summary="The signed checkpoint (C2SP signed note) of a block",
            responses=text("the signed note, every cosignature included",
                           error_statuses=(404,)))
def checkpoint(node: NodeDep, height: Position) -> str:
    return node.reader.checkpoint_note(height)
