"""Proofs and evidence: state proofs, RFC 9162 inclusion and consistency, bundles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from tally.api import access
from tally.api.routers import COMMON, MAX_POSITION, NodeDep, Position, errors
from tally.evidence.export import export_bundle, export_commercial_bundle
from tally.node.reader import event_to_dict
from tally.protocol.http import (
    ConsistencyProof,
    EvidenceBundle,
    InclusionProof,
    StateProof,
    ValidatorUpdate,
)

router = APIRouter(tags=["proofs"], responses=COMMON)

#: The most validator updates one answer of /v1/evidence/validator-updates carries.
MAX_VALIDATOR_UPDATES = 100


@router.get("/v1/proofs/state", summary="Any state key's value or absence, with a proof",
            response_model=StateProof, responses=errors(404))
def state_proof(node: NodeDep, request: Request, key: str) -> Any:
    access.check(request, access.StateKey(key))
    return node.reader.state_proof(key.encode())


@router.get("/v1/proofs/inclusion", summary="RFC 9162 inclusion proof of a log entry",
            response_model=InclusionProof)
def inclusion(node: NodeDep, index: int = Query(ge=0, le=MAX_POSITION),
              size: int = Query(ge=1, le=MAX_POSITION)) -> Any:
    return node.reader.inclusion_proof(index, size)


@router.get("/v1/proofs/consistency", summary="RFC 9162 consistency proof between two sizes",
            response_model=ConsistencyProof)
def consistency(node: NodeDep, first: int = Query(ge=0, le=MAX_POSITION),
                second: int = Query(ge=1, le=MAX_POSITION)) -> Any:
    return node.reader.consistency_proof(first, second)


@router.get("/v1/evidence/validator-updates",
            summary="Validator-set changes, each proven as evidence bundles carry them",
            response_model=list[ValidatorUpdate], responses=errors(404))
def validator_updates(node: NodeDep,
                      from_index: int = Query(0, ge=0, le=MAX_POSITION,
                                              description="the first log position"),
                      limit: int = Query(MAX_VALIDATOR_UPDATES, ge=1,
                                         le=MAX_VALIDATOR_UPDATES)) -> Any:
    """The ``validator.update`` events from log position ``from_index`` on, in log order,
    each with its inclusion proof to the first checkpoint a quorum of the validators of
    its time signed (the items of a bundle's ``validator_updates``). It stops before an
    update no such checkpoint covers yet. A witness (``tally witness run --follow``)
    reads it to follow the validator set; it trusts none of it without the proofs."""
    return node.reader.validator_proofs().proven_validator_updates(from_index, limit)


@router.get("/v1/evidence/{event_index}", summary="The evidence bundle of a log entry",
            response_model=EvidenceBundle, response_model_exclude_unset=True,
            responses=errors(404))
def evidence(node: NodeDep, request: Request, event_index: Position,
             consistency: bool = False) -> Any:
    if access.requester(request) is not None:
        event = node.reader.event(event_index)
        if event is not None:
            access.check(request, access.EventOf(event_to_dict(event)))
    return export_bundle(node.reader, event_index, consistency=consistency)


@router.get("/v1/commercial/evidence/{index}",
            summary="The evidence bundle of a contract event",
            response_model=EvidenceBundle, response_model_exclude_unset=True,
            responses=errors(404))
def commercial_evidence(node: NodeDep, request: Request, index: Position,
                        consistency: bool = False) -> Any:
    access.check(request, access.regulators("the commercial log"))
    return export_commercial_bundle(node.reader, index, consistency=consistency)
