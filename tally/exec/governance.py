"""Governance: the committee and the validator set.

The committee is the set of accounts holding the ``admin`` role. A change of the
validator set (add a validator, remove one, change its power) is proposed by one member
and takes effect once more than half of the committee approved it. The change is then a
``validator.update`` event in the custody log, so evidence can prove which keys were
validators at any height, and it reaches CometBFT as a validator update.

State::

    committee            sorted list of admin addresses
    validators           list of {name, public_key, consensus_key, power}, sorted by name
    proposal/<tx id>     {action, args, proposer, approvals, height}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.operation import Operation
from tally.exec.roles import COMMITTEE_KEY, require_role

__all__ = ["ACTIONS", "COMMITTEE_KEY", "VALIDATORS_KEY", "OPERATIONS", "Action", "committee",
           "register", "validators"]
from tally.exec.state import BlockState

VALIDATORS_KEY = b"validators"
MAX_POWER = 2**40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def proposal_key(proposal_id: str) -> bytes:
    return f"proposal/{proposal_id}".encode()


def committee(state: BlockState) -> list[str]:
    return state.get(COMMITTEE_KEY) or []


def validators(state: BlockState) -> list[dict[str, Any]]:
    return state.get(VALIDATORS_KEY) or []


def validator_doc(name: str, public_key: bytes, consensus_key: bytes, power: int
                  ) -> dict[str, Any]:
    return {"name": name, "public_key": public_key.hex(), "consensus_key": consensus_key.hex(),
            "power": power}


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise p.invalid(f"{name} must be 1-64 letters, digits, '.', '_' or '-'")
    return value


def _key_bytes(name: str, value: Any) -> bytes:
    if not isinstance(value, bytes) or not 16 <= len(value) <= 128:
        raise p.invalid(f"{name} must be public key bytes")
    return value


def _power(name: str, value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_POWER:
        raise p.invalid(f"{name} must be a whole number from 0 (remove) to {MAX_POWER}")
    return value


@dataclass(frozen=True)
class Action:
    """Something only the committee may do: checked when proposed, applied once more
    than half of the committee approved (and checked again then: state may have moved)."""

    name: str
    parse: Callable[[dict[str, Any]], dict[str, Any]]
    check: Callable[[BlockState, dict[str, Any]], None]
    apply: Callable[[TxContext, dict[str, Any], dict[str, Any], str], None]


ACTIONS: dict[str, Action] = {}


def register(action: Action) -> None:
    ACTIONS[action.name] = action


def _parse_propose(payload: dict[str, Any]) -> dict[str, Any]:
    action = ACTIONS.get(payload.get("action"))  # type: ignore[arg-type]
    if action is None:
        raise p.invalid(f"action must be one of: {', '.join(sorted(ACTIONS))}")
    return {"action": action.name,
            "args": action.parse({k: v for k, v in payload.items() if k != "action"})}


def _propose(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    action = ACTIONS[args["action"]]
    proposal_id = ctx.tx_id.hex()
    proposal = {"action": action.name, "args": args["args"], "proposer": ctx.sender,
                "approvals": [ctx.sender], "height": ctx.height}
    action.check(ctx.state, args["args"])
    summary = {k: v for k, v in args["args"].items() if isinstance(v, (int, str)) and
               not (isinstance(v, str) and len(v) > 200)}
    ctx.emit(Event("gov.propose", sender=ctx.sender,
                   details={"proposal": proposal_id, "action": action.name} | summary))
    _settle(ctx, proposal_id, proposal)


def _parse_approve(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"proposal": p.text(128)})


def _approve(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    proposal = ctx.state.get(proposal_key(args["proposal"]))
    if proposal is None:
        raise ExecutionFailed(f"no open proposal {args['proposal']}", Code.NOT_FOUND)
    if ctx.sender in proposal["approvals"]:
        raise ExecutionFailed("this member already approved the proposal", Code.ALREADY_EXISTS)
    proposal = {**proposal, "approvals": sorted([*proposal["approvals"], ctx.sender])}
    ctx.emit(Event("gov.approve", sender=ctx.sender, details={"proposal": args["proposal"]}))
    _settle(ctx, args["proposal"], proposal)


def _settle(ctx: TxContext, proposal_id: str, proposal: dict[str, Any]) -> None:
    members = committee(ctx.state)
    approvals = [a for a in proposal["approvals"] if a in members]
    if len(approvals) * 2 <= len(members):
        ctx.state.put(proposal_key(proposal_id), proposal)
        return
    ctx.state.delete(proposal_key(proposal_id))
    action = ACTIONS[proposal["action"]]
    action.check(ctx.state, proposal["args"])  # the state may have moved since the proposal
    action.apply(ctx, proposal["args"], proposal, proposal_id)


def _parse_validator_set(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"name": _name, "power": _power},
                   {"public_key": _key_bytes, "consensus_key": _key_bytes})


def _check_validator_change(state: BlockState, args: dict[str, Any]) -> None:
    current = {v["name"]: v for v in validators(state)}
    name, power = args["name"], args["power"]
    if name not in current and power == 0:
        raise ExecutionFailed(f"no validator {name!r} to remove", Code.NOT_FOUND)
    if name not in current and not ("public_key" in args and "consensus_key" in args):
        raise p.invalid("a new validator needs public_key and consensus_key")
    remaining = sum(v["power"] for n, v in current.items() if n != name) + power
    if remaining <= 0:
        raise ExecutionFailed("the validator set cannot become empty", Code.INVALID_PAYLOAD)
    if "consensus_key" in args:
        for other in current.values():
            if other["name"] != name and other["consensus_key"] == args["consensus_key"].hex():
                raise ExecutionFailed("that consensus key belongs to another validator",
                                      Code.ALREADY_EXISTS)


def _apply_validator_change(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                            proposal_id: str) -> None:
    current = {v["name"]: v for v in validators(ctx.state)}
    name, power = args["name"], args["power"]
    old = current.get(name)
    public_key = args.get("public_key", bytes.fromhex(old["public_key"]) if old else b"")
    consensus_key = args.get("consensus_key",
                             bytes.fromhex(old["consensus_key"]) if old else b"")
    if power == 0:
        current.pop(name)
    else:
        current[name] = validator_doc(name, public_key, consensus_key, power)
    ctx.state.put(VALIDATORS_KEY, [current[n] for n in sorted(current)])
    ctx.emit(Event("validator.update", sender=ctx.sender, quantity=power,
                   details=validator_doc(name, public_key, consensus_key, power)
                   | {"proposal": proposal_id}))


register(Action("validator.set", _parse_validator_set, _check_validator_change,
                _apply_validator_change))


OPERATIONS = (
    Operation("gov.propose", _parse_propose, _propose,
              "a committee member proposes a validator-set change"),
    Operation("gov.approve", _parse_approve, _approve,
              "a committee member approves a proposal; it applies past half the committee"),
)
