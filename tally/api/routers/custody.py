"""Custody state: assets, their history, holdings (with proofs), accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from tally.api import access
from tally.api.routers import COMMON, After, NodeDep, errors
from tally.protocol.http import AccountInfo, Asset, Event, StateProof

router = APIRouter(tags=["custody"], responses=COMMON)


@router.get("/v1/assets/{asset}", summary="An asset, its supply and its holders",
            response_model=Asset, response_model_exclude_unset=True, responses=errors(404))
def asset(node: NodeDep, request: Request, asset: str) -> Any:
    access.check(request, access.Asset(asset))
    return node.reader.asset(asset)


@router.get("/v1/assets/{asset}/history", summary="The asset's custody history, oldest first",
            response_model=list[Event])
def history(node: NodeDep, request: Request, asset: str, after: After = -1,
            limit: int = Query(1000, ge=1, le=10_000)) -> Any:
    access.check(request, access.Asset(asset))
    return node.reader.history(asset, after, limit)


@router.get("/v1/assets/{asset}/holdings/{holder}",
            summary="Units held, pledged and frozen, with a state proof",
            response_model=StateProof, responses=errors(404))
def holding(node: NodeDep, request: Request, asset: str, holder: str) -> Any:
    access.check(request, access.StateKey(f"holding/{asset}/{holder}"))
    return node.reader.state_proof(f"holding/{asset}/{holder}".encode())


@router.get("/v1/accounts/{address}", summary="An account's next nonce and roles",
            response_model=AccountInfo)
def account(node: NodeDep, request: Request, address: str) -> Any:
    access.check(request, access.Account(address))
    return node.reader.account(address)
