"""Identities and governance (protocol version 4): members, registered accounts, their
claims, policies and the one "may" question, the committee and its proposals.

Every input is checked before any read (addresses, member ids, proposal ids, resources:
400 ``INVALID_REQUEST``; too long: 422), and every scan is bounded by ``limit``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from tally.api import access
from tally.api.routers import COMMON, NodeDep, errors
from tally.protocol.http import (
    Claims,
    Committee,
    Identity,
    MayVerdict,
    Member,
    MemberDetail,
    Policy,
    Proposal,
)

router = APIRouter(tags=["identity"], responses=COMMON)

Address = Annotated[str, Path(max_length=64, description="an account address, 40 hex digits")]
MemberId = Annotated[str, Path(max_length=64)]
ProposalId = Annotated[str, Path(max_length=128, description="the proposing transaction's "
                                                             "id, hex")]
Resource = Annotated[str, Path(max_length=200, description="tx:<kind>, "
                                                           "call:<contract>:<method> or "
                                                           "gov:<action>")]


@router.get("/v1/members", summary="The members (institutions), in id order",
            response_model=list[Member])
def members(node: NodeDep, limit: int = Query(1000, ge=1, le=1000)) -> Any:
    return node.reader.members(limit)


@router.get("/v1/members/{member_id}",
            summary="A member: its record, CA certificates (PEM) and status",
            response_model=MemberDetail, responses=errors(404))
def member(node: NodeDep, member_id: MemberId) -> Any:
    return node.reader.member(member_id)


@router.get("/v1/accounts/{address}/identity",
            summary="Who a registered account is, and whether it may act now",
            response_model=Identity, response_model_exclude_none=True, responses=errors(404))
def identity(node: NodeDep, request: Request, address: Address) -> Any:
    access.check(request, access.Account(address))
    return node.reader.identity(address)


@router.get("/v1/accounts/{address}/claims",
            summary="The claims an account holds, each flagged valid, expired or untrusted "
                    "at the latest block's time",
            response_model=Claims)
def claims(node: NodeDep, request: Request, address: Address,
           limit: int = Query(256, ge=1, le=256)) -> Any:
    access.check(request, access.Account(address))
    return node.reader.claims(address, limit)


@router.get("/v1/proposals", summary="Committee proposals with their tallies and status",
            response_model=list[Proposal],
            description="`status=open` (default): the open proposals (one past its expiry "
                        "reads `expired` until the next committee transaction closes it); "
                        "`all`: every proposal, in id order.")
def proposals(node: NodeDep, status: Literal["open", "all"] = "open",
              limit: int = Query(256, ge=1, le=256)) -> Any:
    return node.reader.proposals(status, limit)


@router.get("/v1/proposals/{proposal_id}", summary="A proposal, its votes, tally and status",
            response_model=Proposal, responses=errors(404))
def proposal(node: NodeDep, proposal_id: ProposalId) -> Any:
    return node.reader.proposal(proposal_id)


@router.get("/v1/policies/{resource}",
            summary="A resource's effective policy (stored, or the default)",
            response_model=Policy, response_model_exclude_none=True, responses=errors(404))
def policy(node: NodeDep, resource: Resource) -> Any:
    return node.reader.policy(resource)


@router.get("/v1/may", summary="May an account act on a resource now? The verdict and why",
            response_model=MayVerdict)
def may(node: NodeDep, request: Request, account: str = Query(max_length=64),
        resource: str = Query(max_length=200)) -> Any:
    access.check(request, access.Account(account))
    return node.reader.may(account, resource)


@router.get("/v1/committee",
            summary="The committee's seats and weights, and each action's vote policy",
            response_model=Committee)
def committee(node: NodeDep) -> Any:
    return node.reader.committee()
