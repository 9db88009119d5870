"""The custody module: who controls which units of which asset, and every change of it.

State (keys are UTF-8 text, values canonical CBOR)::

    asset/<asset>            {"class", "name", "issuer", "supply", "metadata", "status", "issued_at"}
    holding/<asset>/<addr>   {"q": units held, "p": units pledged, "f": units frozen}
    pledge/<id>              {"asset", "pledgor", "pledgee", "quantity", "height"}
    freeze/<id>              {"asset", "holder", "quantity", "by", "reason", "height"}
    agent/<addr>/<agent>     {"since": height}
    doc/<hash>/<attester>    {"title", "asset", "height"}

Invariants, kept by every operation below and property-tested:
    * per asset, the units held by all controllers add up to its supply;
    * 0 <= pledged + frozen <= held: only free units (held - pledged - frozen) move;
    * units move only at the request of their controller or an agent it appointed
      (or, for a pledge, by the pledgee enforcing it).
A pledge's id and a freeze order's id are the hex id of the transaction that made them.
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.operation import Operation
from tally.exec.roles import require_role
from tally.exec.state import BlockState

ASSET_CLASSES = ("security", "futures", "receivable", "document", "cash", "other")
_TX_ID = p.text(128)


# --- keys and records ------------------------------------------------------------------

def asset_key(asset: str) -> bytes:
    return f"asset/{asset}".encode()


def holding_key(asset: str, holder: str) -> bytes:
    return f"holding/{asset}/{holder}".encode()


def pledge_key(pledge_id: str) -> bytes:
    return f"pledge/{pledge_id}".encode()


def freeze_key(freeze_id: str) -> bytes:
    return f"freeze/{freeze_id}".encode()


def agent_key(controller: str, agent: str) -> bytes:
    return f"agent/{controller}/{agent}".encode()


def doc_key(digest_hex: str, attester: str) -> bytes:
    return f"doc/{digest_hex}/{attester}".encode()


EMPTY_HOLDING = {"q": 0, "p": 0, "f": 0}


def get_holding(state: BlockState, asset: str, holder: str) -> dict[str, int]:
    return state.get(holding_key(asset, holder)) or EMPTY_HOLDING


def put_holding(state: BlockState, asset: str, holder: str, holding: dict[str, int]) -> None:
    if holding["q"] == 0 and holding["p"] == 0 and holding["f"] == 0:
        state.delete(holding_key(asset, holder))
    else:
        state.put(holding_key(asset, holder), holding)


def free_units(holding: dict[str, int]) -> int:
    return holding["q"] - holding["p"] - holding["f"]


def active_asset(state: BlockState, asset: str) -> dict[str, Any]:
    record = state.get(asset_key(asset))
    if record is None:
        raise ExecutionFailed(f"no asset {asset!r}", Code.NOT_FOUND)
    if record["status"] != "active":
        raise ExecutionFailed(f"asset {asset!r} is retired", Code.ASSET_RETIRED)
    return record


def movable_by_holders(record: dict[str, Any], asset: str) -> None:
    """Units of an asset a contract controls move only through that contract."""
    if record.get("controller"):
        raise ExecutionFailed(
            f"units of {asset} move only through the contract that controls it "
            f"({record['controller']})", Code.UNAUTHORISED)


def acting_for(ctx: TxContext, holder: str | None) -> str:
    """The controller whose units the sender moves: itself, or one that appointed it."""
    if holder is None or holder == ctx.sender:
        return ctx.sender
    if ctx.state.get(agent_key(holder, ctx.sender)) is None:
        raise ExecutionFailed(
            f"{ctx.sender} is not an agent of {holder} and cannot move its units",
            Code.UNAUTHORISED,
        )
    return holder


def take_free_units(state: BlockState, asset: str, holder: str, quantity: int) -> dict[str, int]:
    holding = get_holding(state, asset, holder)
    available = free_units(holding)
    if available < quantity:
        raise ExecutionFailed(
            f"{holder} has {available} free units of {asset} (held {holding['q']}, "
            f"pledged {holding['p']}, frozen {holding['f']}); {quantity} requested",
            Code.INSUFFICIENT_UNITS,
        )
    return holding


def add_units(state: BlockState, asset: str, holder: str, quantity: int) -> None:
    holding = get_holding(state, asset, holder)
    put_holding(state, asset, holder, {**holding, "q": holding["q"] + quantity})


# --- operations -------------------------------------------------------------------------

def _parse_issue(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(
        payload,
        {
            "asset": p.identifier,
            "class": p.one_of(*ASSET_CLASSES),
            "name": p.text(200),
            "quantity": p.quantity,
        },
        {"to": p.address, "metadata_hash": p.digest},
    )


def _issue(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "issuer")
    asset = args["asset"]
    if ctx.state.get(asset_key(asset)) is not None:
        raise ExecutionFailed(f"asset {asset!r} already exists", Code.ALREADY_EXISTS)
    to = args.get("to", ctx.sender)
    ctx.state.put(
        asset_key(asset),
        {
            "class": args["class"],
            "name": args["name"],
            "issuer": ctx.sender,
            "supply": args["quantity"],
            "metadata": args.get("metadata_hash"),
            "status": "active",
            "issued_at": ctx.height,
        },
    )
    add_units(ctx.state, asset, to, args["quantity"])
    ctx.emit(
        Event(
            "asset.issue",
            asset=asset,
            sender=ctx.sender,
            to=to,
            quantity=args["quantity"],
            data=args.get("metadata_hash"),
            details={"class": args["class"], "name": args["name"]},
        )
    )


def _parse_transfer(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(
        payload,
        {"asset": p.identifier, "to": p.address, "quantity": p.quantity},
        {"holder": p.address, "memo": p.text(200)},
    )


def _transfer(ctx: TxContext, args: dict[str, Any]) -> None:
    asset, to, quantity = args["asset"], args["to"], args["quantity"]
    movable_by_holders(active_asset(ctx.state, asset), asset)
    holder = acting_for(ctx, args.get("holder"))
    if to == holder:
        raise p.invalid("a transfer needs a recipient other than the holder")
    holding = take_free_units(ctx.state, asset, holder, quantity)
    put_holding(ctx.state, asset, holder, {**holding, "q": holding["q"] - quantity})
    add_units(ctx.state, asset, to, quantity)
    details: dict[str, Any] = {"by": ctx.sender} if ctx.sender != holder else {}
    if "memo" in args:
        details["memo"] = args["memo"]
    ctx.emit(Event("custody.transfer", asset, holder, to, quantity, details=details))


def _parse_pledge(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(
        payload,
        {"asset": p.identifier, "pledgee": p.address, "quantity": p.quantity},
        {"holder": p.address},
    )


def _pledge(ctx: TxContext, args: dict[str, Any]) -> None:
    asset, pledgee, quantity = args["asset"], args["pledgee"], args["quantity"]
    movable_by_holders(active_asset(ctx.state, asset), asset)
    holder = acting_for(ctx, args.get("holder"))
    if pledgee == holder:
        raise p.invalid("a holder cannot pledge units to itself")
    holding = take_free_units(ctx.state, asset, holder, quantity)
    put_holding(ctx.state, asset, holder, {**holding, "p": holding["p"] + quantity})
    pledge_id = ctx.tx_id.hex()
    ctx.state.put(
        pledge_key(pledge_id),
        {"asset": asset, "pledgor": holder, "pledgee": pledgee, "quantity": quantity,
         "height": ctx.height},
    )
    ctx.emit(Event("custody.pledge", asset, holder, pledgee, quantity, details={"pledge": pledge_id}))


def _parse_pledge_ref(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"pledge": _TX_ID})


def _open_pledge(ctx: TxContext, pledge_id: str) -> dict[str, Any]:
    pledge = ctx.state.get(pledge_key(pledge_id))
    if pledge is None:
        raise ExecutionFailed(f"no open pledge {pledge_id}", Code.NOT_FOUND)
    if ctx.sender != pledge["pledgee"]:
        raise ExecutionFailed("only the pledgee can release or enforce a pledge", Code.UNAUTHORISED)
    return pledge


def _release(ctx: TxContext, args: dict[str, Any]) -> None:
    pledge = _open_pledge(ctx, args["pledge"])
    asset, pledgor, quantity = pledge["asset"], pledge["pledgor"], pledge["quantity"]
    holding = get_holding(ctx.state, asset, pledgor)
    put_holding(ctx.state, asset, pledgor, {**holding, "p": holding["p"] - quantity})
    ctx.state.delete(pledge_key(args["pledge"]))
    ctx.emit(Event("custody.release", asset, pledge["pledgee"], pledgor, quantity,
                   details={"pledge": args["pledge"]}))


def _enforce(ctx: TxContext, args: dict[str, Any]) -> None:
    """The pledgee takes the pledged units (default of the secured obligation)."""
    pledge = _open_pledge(ctx, args["pledge"])
    asset, pledgor, pledgee, quantity = (
        pledge["asset"], pledge["pledgor"], pledge["pledgee"], pledge["quantity"])
    active_asset(ctx.state, asset)
    holding = get_holding(ctx.state, asset, pledgor)
    put_holding(ctx.state, asset, pledgor,
                {**holding, "q": holding["q"] - quantity, "p": holding["p"] - quantity})
    add_units(ctx.state, asset, pledgee, quantity)
    ctx.state.delete(pledge_key(args["pledge"]))
    ctx.emit(Event("custody.enforce", asset, pledgor, pledgee, quantity,
                   details={"pledge": args["pledge"]}))


def _parse_freeze(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(
        payload,
        {"asset": p.identifier, "holder": p.address, "quantity": p.quantity,
         "reason": p.text(500)},
    )


def _freeze(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "custodian", "regulator")
    asset, holder, quantity = args["asset"], args["holder"], args["quantity"]
    active_asset(ctx.state, asset)
    holding = take_free_units(ctx.state, asset, holder, quantity)
    put_holding(ctx.state, asset, holder, {**holding, "f": holding["f"] + quantity})
    freeze_id = ctx.tx_id.hex()
    ctx.state.put(
        freeze_key(freeze_id),
        {"asset": asset, "holder": holder, "quantity": quantity, "by": ctx.sender,
         "reason": args["reason"], "height": ctx.height},
    )
    ctx.emit(Event("custody.freeze", asset, holder, None, quantity,
                   details={"freeze": freeze_id, "by": ctx.sender, "reason": args["reason"]}))


def _parse_unfreeze(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"freeze": _TX_ID}, {"reason": p.text(500)})


def _unfreeze(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "custodian", "regulator")
    order = ctx.state.get(freeze_key(args["freeze"]))
    if order is None:
        raise ExecutionFailed(f"no freeze order {args['freeze']}", Code.NOT_FOUND)
    asset, holder, quantity = order["asset"], order["holder"], order["quantity"]
    holding = get_holding(ctx.state, asset, holder)
    put_holding(ctx.state, asset, holder, {**holding, "f": holding["f"] - quantity})
    ctx.state.delete(freeze_key(args["freeze"]))
    details = {"freeze": args["freeze"], "by": ctx.sender}
    if "reason" in args:
        details["reason"] = args["reason"]
    ctx.emit(Event("custody.unfreeze", asset, None, holder, quantity, details=details))


def _parse_redeem(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"asset": p.identifier, "quantity": p.quantity}, {"holder": p.address})


def _redeem(ctx: TxContext, args: dict[str, Any]) -> None:
    """The holder surrenders units to the issuer, which retires them."""
    asset, quantity = args["asset"], args["quantity"]
    record = active_asset(ctx.state, asset)
    movable_by_holders(record, asset)
    holder = acting_for(ctx, args.get("holder"))
    holding = take_free_units(ctx.state, asset, holder, quantity)
    put_holding(ctx.state, asset, holder, {**holding, "q": holding["q"] - quantity})
    supply = record["supply"] - quantity
    status = "active" if supply > 0 else "retired"
    ctx.state.put(asset_key(asset), {**record, "supply": supply, "status": status})
    ctx.emit(Event("asset.redeem", asset, holder, record["issuer"], quantity,
                   details={"supply": supply, "status": status}))


def _parse_agent(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"agent": p.address})


def _appoint_agent(ctx: TxContext, args: dict[str, Any]) -> None:
    if args["agent"] == ctx.sender:
        raise p.invalid("an account cannot appoint itself as its agent")
    key = agent_key(ctx.sender, args["agent"])
    if ctx.state.get(key) is not None:
        raise ExecutionFailed(f"{args['agent']} is already an agent", Code.ALREADY_EXISTS)
    ctx.state.put(key, {"since": ctx.height})
    ctx.emit(Event("custody.appoint_agent", sender=ctx.sender, to=args["agent"]))


def _revoke_agent(ctx: TxContext, args: dict[str, Any]) -> None:
    key = agent_key(ctx.sender, args["agent"])
    if ctx.state.get(key) is None:
        raise ExecutionFailed(f"{args['agent']} is not an agent of {ctx.sender}", Code.NOT_FOUND)
    ctx.state.delete(key)
    ctx.emit(Event("custody.revoke_agent", sender=ctx.sender, to=args["agent"]))


def _parse_attest(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"hash": p.digest, "title": p.text(200)}, {"asset": p.identifier})


def _attest(ctx: TxContext, args: dict[str, Any]) -> None:
    digest = args["hash"]
    if "asset" in args and ctx.state.get(asset_key(args["asset"])) is None:
        raise ExecutionFailed(f"no asset {args['asset']!r}", Code.NOT_FOUND)
    key = doc_key(digest.hex(), ctx.sender)
    if ctx.state.get(key) is not None:
        raise ExecutionFailed("this account already attested this document", Code.ALREADY_EXISTS)
    ctx.state.put(key, {"title": args["title"], "asset": args.get("asset"), "height": ctx.height})
    ctx.emit(Event("document.attest", asset=args.get("asset"), sender=ctx.sender, data=digest,
                   details={"title": args["title"]}))


OPERATIONS = (
    Operation("asset.issue", _parse_issue, _issue, "an issuer registers an asset and its units"),
    Operation("asset.redeem", _parse_redeem, _redeem, "a holder surrenders units for retirement"),
    Operation("custody.transfer", _parse_transfer, _transfer, "control of units moves"),
    Operation("custody.pledge", _parse_pledge, _pledge, "units are pledged to a pledgee"),
    Operation("custody.release", _parse_pledge_ref, _release, "the pledgee releases a pledge"),
    Operation("custody.enforce", _parse_pledge_ref, _enforce, "the pledgee takes pledged units"),
    Operation("custody.freeze", _parse_freeze, _freeze, "a custodian or regulator freezes units"),
    Operation("custody.unfreeze", _parse_unfreeze, _unfreeze, "a freeze order is lifted"),
    Operation("custody.appoint_agent", _parse_agent, _appoint_agent, "appoint an agent"),
    Operation("custody.revoke_agent", _parse_agent, _revoke_agent, "revoke an agent"),
    Operation("document.attest", _parse_attest, _attest, "attest a document's hash"),
)
