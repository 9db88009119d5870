"""The protocol module: which protocol version is in force, and the chain's parameters.

State::

    protocol   {"version": v}, or {"version": v, "upgrade": {"version": w, "height": h}}
               once the committee scheduled an upgrade (absent on a chain that started at
               version 1 and never upgraded: it is then at version 1)
    params     {"max_tx_bytes", "max_block_txs", "max_expiry_window"} from version 2 on
               (version 1 reads them from genesis)

Committee actions: ``protocol.upgrade`` {version, height} schedules the move to a later
version at a later height; every node switches when it executes the first block at or
above that height (:func:`begin_block`), before the block's transactions, so the whole
block runs by the new rules and its header names the new version. ``params.set`` (from
version 2) changes chain parameters within :data:`tally.genesis.PARAM_BOUNDS`; a change
applies to the transactions after it.

Why the committee and a height, not a node flag: an upgrade that some nodes apply and
others do not splits the chain. A recorded decision at a named height is the same on
every node, and it is evidence of who decided (decision 0019).
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Action, Module
from tally.exec.registry import BASE_ROLES, ROLES_DEFINED_KEY, SEATS_KEY
from tally.exec.state import StateAccess, StateReader
from tally.genesis import PARAM_BOUNDS, Genesis, Params
from tally.protocol.versions import IDENTITY, KNOWN_VERSIONS

PROTOCOL_KEY = b"protocol"
PARAMS_KEY = b"params"


def current_version(state: StateReader, genesis: Genesis) -> int:
    """The version in force after the last executed block."""
    record = state.get(PROTOCOL_KEY)
    return genesis.protocol_version if record is None else record["version"]


def state_params(state: StateAccess, genesis: Genesis) -> Params:
    """The chain parameters as recorded in state (version 2 on)."""
    doc = state.get(PARAMS_KEY)
    return genesis.params if doc is None else Params(**doc)


def begin_block(state: StateAccess, genesis: Genesis, height: int) -> int:
    """Apply a scheduled upgrade whose height has come; the version the block runs by."""
    record = state.get(PROTOCOL_KEY)
    if record is None:
        return genesis.protocol_version
    upgrade = record.get("upgrade")
    if upgrade is None or height < upgrade["height"]:
        return record["version"]
    if record["version"] < 2 <= upgrade["version"]:
        # Parameters move from genesis into state, where the committee can change them.
        state.put(PARAMS_KEY, genesis.params.to_doc())
    if record["version"] < IDENTITY <= upgrade["version"]:
        migrate_to_identity(state)
    state.put(PROTOCOL_KEY, {"version": upgrade["version"]})
    return upgrade["version"]


def migrate_to_identity(state: StateAccess) -> None:
    """A chain moving to version 4: each ``admin`` of the old committee holds one seat of
    weight 1, so the committee that voted the upgrade governs after it; the base roles are
    defined; registration is not yet required (the committee requires it by proposal,
    ``identity.require``, once its members and their accounts are registered)."""
    if state.get(SEATS_KEY) is None:
        state.put(SEATS_KEY, {a: 1 for a in sorted(state.get(b"committee") or [])})
    if state.get(ROLES_DEFINED_KEY) is None:
        state.put(ROLES_DEFINED_KEY, list(BASE_ROLES))


def genesis_writes(genesis: Genesis) -> dict[bytes, Any]:
    if genesis.protocol_version < 2:
        return {}
    return {PROTOCOL_KEY: {"version": genesis.protocol_version},
            PARAMS_KEY: genesis.params.to_doc()}


# --- protocol.upgrade ------------------------------------------------------------------

def _parse_upgrade(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"version": p.whole(KNOWN_VERSIONS[1], KNOWN_VERSIONS[-1]),
                          "height": p.quantity})


def _check_upgrade(ctx: TxContext, args: dict[str, Any]) -> None:
    record = ctx.state.get(PROTOCOL_KEY) or {"version": ctx.rules.version}
    if args["version"] <= record["version"]:
        raise ExecutionFailed(f"the chain is at protocol version {record['version']}; an "
                              "upgrade must name a later one", Code.INVALID_PAYLOAD)
    if args["height"] <= ctx.height:
        raise ExecutionFailed(f"the upgrade height must be above the current height "
                              f"{ctx.height}", Code.INVALID_PAYLOAD)


def _apply_upgrade(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                   proposal_id: str) -> None:
    version = (ctx.state.get(PROTOCOL_KEY) or {"version": ctx.rules.version})["version"]
    ctx.state.put(PROTOCOL_KEY, {"version": version, "upgrade": dict(args)})
    ctx.emit(Event("protocol.upgrade", sender=ctx.sender, quantity=args["version"],
                   details={"version": args["version"], "height": args["height"],
                            "proposal": proposal_id}))


PROTOCOL_UPGRADE = Action("protocol.upgrade", _parse_upgrade, _check_upgrade, _apply_upgrade,
                          "move the chain to a later protocol version at a named height")


# --- params.set (version 2 on) ------------------------------------------------------------

def _parse_params(args: dict[str, Any]) -> dict[str, Any]:
    if not args:
        raise p.invalid(f"name one or more of: {', '.join(PARAM_BOUNDS)}")
    return p.parse(args, {}, {name: p.whole(low, high)
                              for name, (low, high) in PARAM_BOUNDS.items()})


def _check_params(ctx: TxContext, args: dict[str, Any]) -> None:
    """Bounds were checked when parsed; nothing in state constrains a change."""


def _apply_params(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                  proposal_id: str) -> None:
    current = state_params(ctx.state, ctx.genesis).to_doc()
    ctx.state.put(PARAMS_KEY, current | args)
    ctx.emit(Event("params.set", sender=ctx.sender, details=dict(args) | {
        "proposal": proposal_id}))


PARAMS_SET = Action("params.set", _parse_params, _check_params, _apply_params,
                    "change chain parameters (protocol version 2 on)")

MODULE_V1 = Module("protocol", actions=(PROTOCOL_UPGRADE,), genesis=genesis_writes)
MODULE_V2 = Module("protocol", actions=(PROTOCOL_UPGRADE, PARAMS_SET), genesis=genesis_writes)
