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

Two doors lead in, and both run the code below: transactions (:data:`OPERATIONS`) and
contracts, through the host functions at the end of this module (:data:`MODULE`'s
``host_functions``). An asset a contract issues is *controlled* by it
(``asset/<asset>`` gains ``"controller": <contract address>``): its units then move only
through that contract. Units move, are issued and leave a holder only through
:func:`issue_asset`, :func:`move_units`, :func:`add_units` and :func:`remove_units`, so
the invariants are kept in one place whichever door a change came through.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import HostFunction, Module
from tally.exec.operation import Operation
from tally.exec.roles import require_role, roles_of
from tally.exec.state import StateAccess
from tally.vm import HostError, HostRequest
from tally.vm.compiler import is_valid_contract_name

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


def get_holding(state: StateAccess, asset: str, holder: str) -> dict[str, int]:
    return state.get(holding_key(asset, holder)) or EMPTY_HOLDING


def put_holding(state: StateAccess, asset: str, holder: str, holding: dict[str, int]) -> None:
    if holding["q"] == 0 and holding["p"] == 0 and holding["f"] == 0:
        state.delete(holding_key(asset, holder))
    else:
        state.put(holding_key(asset, holder), holding)


def free_units(holding: dict[str, int]) -> int:
    return holding["q"] - holding["p"] - holding["f"]


def active_asset(state: StateAccess, asset: str) -> dict[str, Any]:
    record = state.get(asset_key(asset))
    if record is None:
        raise ExecutionFailed(f"no asset {asset!r}", Code.NOT_FOUND)
    if record["status"] == "frozen":  # version 4: a regulator froze it (tally.exec.supervision)
        raise ExecutionFailed(f"asset {asset!r} is frozen by a regulator "
                              f"({record['frozen']['reason_code']})", Code.ASSET_FROZEN)
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


def take_free_units(state: StateAccess, asset: str, holder: str, quantity: int) -> dict[str, int]:
    holding = get_holding(state, asset, holder)
    available = free_units(holding)
    if available < quantity:
        raise ExecutionFailed(
            f"{holder} has {available} free units of {asset} (held {holding['q']}, "
            f"pledged {holding['p']}, frozen {holding['f']}); {quantity} requested",
            Code.INSUFFICIENT_UNITS,
        )
    return holding


def add_units(state: StateAccess, asset: str, holder: str, quantity: int) -> None:
    holding = get_holding(state, asset, holder)
    put_holding(state, asset, holder, {**holding, "q": holding["q"] + quantity})


def remove_units(state: StateAccess, asset: str, holder: str, quantity: int) -> None:
    """Free units leave ``holder`` (moved on, redeemed or burnt)."""
    holding = take_free_units(state, asset, holder, quantity)
    put_holding(state, asset, holder, {**holding, "q": holding["q"] - quantity})


def move_units(state: StateAccess, asset: str, holder: str, to: str, quantity: int) -> None:
    """Free units pass from ``holder`` to ``to``; the caller checked who may ask."""
    if to == holder:
        raise p.invalid("a transfer needs a recipient other than the holder")
    remove_units(state, asset, holder, quantity)
    add_units(state, asset, to, quantity)


def issue_asset(state: StateAccess, *, asset: str, asset_class: str, name: str, quantity: int,
                issuer: str, to: str, height: int, metadata: bytes | None = None,
                controller: str | None = None) -> None:
    """Register a new asset and credit its first units to ``to``."""
    if state.get(asset_key(asset)) is not None:
        raise ExecutionFailed(f"asset {asset!r} already exists", Code.ALREADY_EXISTS)
    record = {"class": asset_class, "name": name, "issuer": issuer, "supply": quantity,
              "metadata": metadata, "status": "active", "issued_at": height}
    if controller is not None:
        record["controller"] = controller
    state.put(asset_key(asset), record)
    add_units(state, asset, to, quantity)


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
    to = args.get("to", ctx.sender)
    issue_asset(ctx.state, asset=asset, asset_class=args["class"], name=args["name"],
                quantity=args["quantity"], issuer=ctx.sender, to=to, height=ctx.height,
                metadata=args.get("metadata_hash"))
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
    move_units(ctx.state, asset, holder, to, quantity)
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
    remove_units(ctx.state, asset, holder, quantity)
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


# --- the door for contracts: host functions --------------------------------------------

#: The source name of custody events a contract causes (tally.exec.contracts turns them
#: into custody-log events).
CUSTODY_SOURCE = "custody"


def contract_address(name: str) -> str:
    """A contract's custody account: derived from its name, so no key can sign for it."""
    return hashlib.sha256(b"tally/contract/" + name.encode()).digest()[:20].hex()


def _emit_custody(req: HostRequest, kind: str, asset: str, sender: str | None, to: str | None,
                  quantity: int, details: dict[str, Any]) -> None:
    req.emit(kind, {"asset": asset, "from": sender, "to": to, "quantity": quantity,
                    "details": details | {"contract": req.contract}}, source=CUSTODY_SOURCE)


def _controlled(state: StateAccess, req: HostRequest, asset: str) -> dict[str, Any]:
    record = active_asset(state, asset)
    if record.get("controller") != contract_address(req.contract):
        raise ExecutionFailed(f"contract {req.contract} does not control asset {asset}",
                              Code.UNAUTHORISED)
    return record


def _h_address(req: HostRequest, state: StateAccess) -> str:
    return contract_address(req.contract)


def _h_address_of(req: HostRequest, state: StateAccess, name: str) -> str:
    if not is_valid_contract_name(name):
        raise HostError(f"invalid contract name {name!r}", code=str(Code.INVALID_PAYLOAD))
    return contract_address(name)


def _h_holding(req: HostRequest, state: StateAccess, asset: str, holder: str) -> dict[str, int]:
    p.identifier("asset", asset)
    p.address("holder", holder)
    return dict(get_holding(state, asset, holder))


def _h_issue(req: HostRequest, state: StateAccess, asset: str, asset_class: str, name: str,
             quantity: int, to: str) -> None:
    p.identifier("asset", asset)
    p.one_of(*ASSET_CLASSES)("asset_class", asset_class)
    p.text(200)("name", name)
    p.quantity("quantity", quantity)
    p.address("to", to)
    me = contract_address(req.contract)
    if "issuer" not in roles_of(state, me):
        raise ExecutionFailed(f"contract {req.contract} ({me}) needs the issuer role",
                              Code.UNAUTHORISED)
    issue_asset(state, asset=asset, asset_class=asset_class, name=name, quantity=quantity,
                issuer=me, to=to, height=req.context.height, controller=me)
    _emit_custody(req, "asset.issue", asset, me, to, quantity,
                  {"class": asset_class, "name": name})


def _h_mint(req: HostRequest, state: StateAccess, asset: str, to: str, quantity: int) -> None:
    p.quantity("quantity", quantity)
    p.address("to", to)
    record = _controlled(state, req, asset)
    state.put(asset_key(asset), {**record, "supply": record["supply"] + quantity})
    add_units(state, asset, to, quantity)
    _emit_custody(req, "asset.mint", asset, record["controller"], to, quantity, {})


def _h_burn(req: HostRequest, state: StateAccess, asset: str, holder: str, quantity: int) -> None:
    p.quantity("quantity", quantity)
    p.address("holder", holder)
    record = _controlled(state, req, asset)
    remove_units(state, asset, holder, quantity)
    supply = record["supply"] - quantity
    # A controlled asset stays active at zero supply: its contract may issue it again.
    state.put(asset_key(asset), {**record, "supply": supply})
    _emit_custody(req, "asset.burn", asset, holder, None, quantity, {"supply": supply})


def _contract_move(req: HostRequest, state: StateAccess, asset: str, holder: str, to: str,
                   quantity: int) -> None:
    p.quantity("quantity", quantity)
    p.address("to", to)
    active_asset(state, asset)
    move_units(state, asset, holder, to, quantity)
    _emit_custody(req, "custody.transfer", asset, holder, to, quantity,
                  {"by": contract_address(req.contract)})


def _h_transfer(req: HostRequest, state: StateAccess, asset: str, to: str, quantity: int) -> None:
    p.identifier("asset", asset)
    me = contract_address(req.contract)
    controller = active_asset(state, asset).get("controller")
    if controller and controller != me:
        raise ExecutionFailed(f"units of {asset} move only through the contract that "
                              f"controls it ({controller})", Code.UNAUTHORISED)
    _contract_move(req, state, asset, me, to, quantity)


def _h_transfer_from(req: HostRequest, state: StateAccess, asset: str, holder: str, to: str,
                     quantity: int) -> None:
    p.identifier("asset", asset)
    p.address("holder", holder)
    me = contract_address(req.contract)
    controller = active_asset(state, asset).get("controller")
    allowed = controller == me if controller else state.get(agent_key(holder, me)) is not None
    if not allowed:
        raise ExecutionFailed(f"contract {req.contract} may not move {holder}'s units of "
                              f"{asset}: " + ("only its controlling contract may" if controller
                                              else "it is not an agent the holder appointed"),
                              Code.UNAUTHORISED)
    _contract_move(req, state, asset, holder, to, quantity)


HOST_FUNCTIONS = (
    HostFunction("custody.address", _h_address),
    HostFunction("custody.address_of", _h_address_of),
    HostFunction("custody.holding", _h_holding),
    HostFunction("custody.issue", _h_issue),
    HostFunction("custody.mint", _h_mint),
    HostFunction("custody.burn", _h_burn),
    HostFunction("custody.transfer", _h_transfer),
    HostFunction("custody.transfer_from", _h_transfer_from),
)


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

MODULE = Module("custody", operations=OPERATIONS, host_functions=HOST_FUNCTIONS)
