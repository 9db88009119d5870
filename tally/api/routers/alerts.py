"""Supervision alerts (docs/supervision.md): list, read and acknowledge the alerts of the
node's :class:`~tally.supervision.alerts.Alerter`. Served only by a node run with
``--alerts``; without one every route answers 404 saying so. On a node with
authenticated access (docs/access.md) they are for regulators only, and an
acknowledgement names the regulator that signed the request, whatever the body says; on
an ``open`` node whoever reaches the API may read and acknowledge alerts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from tally.api import access
from tally.api.routers import COMMON, MAX_POSITION, Position, errors
from tally.errors import NotFound
from tally.protocol.http import AlertAck, AlertModel
from tally.supervision.alerts import MAX_LIST, Alerter

router = APIRouter(tags=["supervision"], responses=COMMON)


async def alerter_of(request: Request) -> Alerter:
    alerter = getattr(request.app.state, "alerter", None)
    if alerter is None:
        raise NotFound("this node evaluates no alert rules: run it with "
                       "`tally node run --alerts rules.toml`")
    return alerter


AlerterDep = Annotated[Alerter, Depends(alerter_of)]


@router.get("/v1/alerts", summary="Alerts in id order, filtered",
            response_model=list[AlertModel], responses=errors(404))
def alerts(alerter: AlerterDep, request: Request,
           status: Literal["open", "acknowledged"] | None = None,
           rule: Annotated[str | None, Query(max_length=100)] = None,
           from_height: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
           after: Annotated[int, Query(ge=0, le=MAX_POSITION,
                                       description="the last alert id seen")] = 0,
           limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100) -> Any:
    access.check(request, access.regulators("alerts"))
    return [a.to_dict() for a in alerter.alerts.list(status=status, rule=rule,
                                                    from_height=from_height, after=after,
                                                    limit=limit)]


@router.get("/v1/alerts/{alert_id}", summary="One alert", response_model=AlertModel,
            responses=errors(404))
def alert(alerter: AlerterDep, request: Request, alert_id: Position) -> Any:
    access.check(request, access.regulators("alerts"))
    return alerter.alerts.get(alert_id).to_dict()


@router.post("/v1/alerts/{alert_id}/ack", summary="Acknowledge an open alert",
             response_model=AlertModel, responses=errors(404, 409))
def acknowledge(alerter: AlerterDep, request: Request, alert_id: Position, body: AlertAck
                ) -> Any:
    access.check(request, access.regulators("alerts"))
    who = access.requester(request)
    return alerter.alerts.acknowledge(alert_id, body.by if who is None else who.address
                                      ).to_dict()
