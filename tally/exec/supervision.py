"""Interventions (protocol version 4): what a regulator does to custody, on the record.

Penetrating supervision (穿透式监管) needs more than reading: a regulator freezes a whole
asset (no unit of it moves until it is unfrozen), freezes part of a holding
(``custody.freeze``, already in the custody module), freezes an account
(``account.freeze``, in the identity module), and moves units on a court order. Every
intervention carries a reason code from :data:`REASON_CODES` and words, is an event of
the custody log (so the affected parties see it in their history and it exports as
evidence like any event), and is allowed by the chain's policies: by default to the
``regulator`` role (tally.exec.policy.DEFAULTS), which the committee may change.

``custody.force_transfer`` moves free units of a holder to another account on the
strength of a court order: the order's document hash is attested on chain in the same
transaction (``doc/<hash>/<regulator>``, as ``document.attest`` records it), so the
transfer event and the attestation name the same order. Units pledged or frozen stay
where they are: the regulator releases them first (``custody.unfreeze``), and that is on
the record too.

State: ``asset/<asset>`` gains ``"status": "frozen"`` and ``"frozen": {by, reason_code,
reason, height}`` while frozen (custody refuses every move of a frozen asset's units with
``ASSET_FROZEN``); ``doc/<hash>/<regulator>`` for court orders.
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import custody
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Module
from tally.exec.operation import Operation

#: Why a regulator intervened: stable codes, so reports and alerts can count them.
REASON_CODES = ("COURT_ORDER", "AML", "SANCTIONS", "FRAUD", "INVESTIGATION",
                "REGULATOR_ORDER", "OTHER")


def _intervention(payload: dict[str, Any], required: dict[str, p.Check]) -> dict[str, Any]:
    return p.parse(payload, {**required, "reason_code": p.one_of(*REASON_CODES),
                             "reason": p.text(500)})


def _parse_asset(payload: dict[str, Any]) -> dict[str, Any]:
    return _intervention(payload, {"asset": p.identifier})


def _asset_record(ctx: TxContext, asset: str) -> dict[str, Any]:
    record = ctx.state.get(custody.asset_key(asset))
    if record is None:
        raise ExecutionFailed(f"no asset {asset!r}", Code.NOT_FOUND)
    return record


def _freeze_asset(ctx: TxContext, args: dict[str, Any]) -> None:
    record = _asset_record(ctx, args["asset"])
    if record["status"] != "active":
        raise ExecutionFailed(f"asset {args['asset']!r} is {record['status']}",
                              Code.INVALID_PAYLOAD)
    order = {"by": ctx.sender, "reason_code": args["reason_code"], "reason": args["reason"],
             "height": ctx.height}
    ctx.state.put(custody.asset_key(args["asset"]), {**record, "status": "frozen",
                                                     "frozen": order})
    ctx.emit(Event("asset.freeze", args["asset"], ctx.sender,
                   details={"reason_code": args["reason_code"], "reason": args["reason"]}))


def _unfreeze_asset(ctx: TxContext, args: dict[str, Any]) -> None:
    record = _asset_record(ctx, args["asset"])
    if record["status"] != "frozen":
        raise ExecutionFailed(f"asset {args['asset']!r} is not frozen", Code.INVALID_PAYLOAD)
    ctx.state.put(custody.asset_key(args["asset"]),
                  {k: v for k, v in record.items() if k != "frozen"} | {"status": "active"})
    ctx.emit(Event("asset.unfreeze", args["asset"], ctx.sender,
                   details={"reason_code": args["reason_code"], "reason": args["reason"]}))


def _parse_force(payload: dict[str, Any]) -> dict[str, Any]:
    return _intervention(payload, {"asset": p.identifier, "holder": p.address,
                                   "to": p.address, "quantity": p.quantity,
                                   "order_hash": p.digest})


def _force_transfer(ctx: TxContext, args: dict[str, Any]) -> None:
    """Move units on a court order, attesting the order's document hash."""
    custody.active_asset(ctx.state, args["asset"])
    if args["holder"] == args["to"]:
        raise p.invalid("a forced transfer needs a recipient other than the holder")
    custody.move_units(ctx.state, args["asset"], args["holder"], args["to"], args["quantity"])
    order = args["order_hash"]
    key = custody.doc_key(order.hex(), ctx.sender)
    if ctx.state.get(key) is None:
        ctx.state.put(key, {"title": f"{args['reason_code']}: {args['reason'][:150]}",
                            "asset": args["asset"], "height": ctx.height})
    ctx.emit(Event("custody.force_transfer", args["asset"], args["holder"], args["to"],
                   args["quantity"], data=order,
                   details={"reason_code": args["reason_code"], "reason": args["reason"],
                            "by": ctx.sender}))


MODULE = Module(
    "supervision",
    operations=(
        Operation("asset.freeze", _parse_asset, _freeze_asset,
                  "a regulator freezes every unit of an asset"),
        Operation("asset.unfreeze", _parse_asset, _unfreeze_asset,
                  "a regulator lifts an asset's freeze"),
        Operation("custody.force_transfer", _parse_force, _force_transfer,
                  "a regulator moves units on a court order, attesting the order's hash"),
    ),
)
