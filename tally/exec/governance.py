"""Governance: the committee, its proposals, and the validator set.

The committee is the set of accounts holding the ``admin`` role. Any committee *action*
(a change of the validator set, a contract deployment, a protocol upgrade...) is proposed
by one member and takes effect once more than half of the committee approved it. The
actions are contributed by the chain's modules (:class:`tally.exec.module.Action`);
:func:`make_module` builds this module over the table of all of them, so the list of what
a committee may do is the one the chain's rules compose (tally.exec.rules).

This module's own action is ``validator.set``: add a validator, remove one, change its
power. The change is then a ``validator.update`` event in the custody log, so evidence
can prove which keys were validators at any height, and it reaches CometBFT as a
validator update.

State::

    committee            sorted list of admin addresses
    validators           list of {name, public_key, consensus_key, power}, sorted by name
    proposal/<tx id>     {action, args, proposer, approvals, height}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Action, Module
from tally.exec.operation import Operation
from tally.exec.roles import COMMITTEE_KEY, require_role
from tally.exec.state import StateAccess
from tally.genesis import Genesis

__all__ = ["COMMITTEE_KEY", "VALIDATORS_KEY", "VALIDATOR_SET", "committee", "make_module",
           "validator_doc", "validators"]

VALIDATORS_KEY = b"validators"
MAX_POWER = 2**40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def proposal_key(proposal_id: str) -> bytes:
    return f"proposal/{proposal_id}".encode()


def committee(state: StateAccess) -> list[str]:
    return state.get(COMMITTEE_KEY) or []


def validators(state: StateAccess) -> list[dict[str, Any]]:
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


class _Committee:
    """The proposal and approval operations over one table of actions."""

    def __init__(self, actions: Mapping[str, Action]) -> None:
        self.actions = dict(actions)

    def parse_propose(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = self.actions.get(payload.get("action"))  # type: ignore[arg-type]
        if action is None:
            raise p.invalid(f"action must be one of: {', '.join(sorted(self.actions))}")
        return {"action": action.name,
                "args": action.parse({k: v for k, v in payload.items() if k != "action"})}

    def propose(self, ctx: TxContext, args: dict[str, Any]) -> None:
        _propose(ctx, self.actions[args["action"]], args["args"])

    def approve(self, ctx: TxContext, args: dict[str, Any]) -> None:
        _approve(ctx, self.actions, args)


def _propose(ctx: TxContext, action: Action, action_args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    proposal_id = ctx.tx_id.hex()
    proposal = {"action": action.name, "args": action_args, "proposer": ctx.sender,
                "approvals": [ctx.sender], "height": ctx.height}
    action.check(ctx, action_args)
    summary = {k: v for k, v in action_args.items() if isinstance(v, (int, str)) and
               not (isinstance(v, str) and len(v) > 200)}
    ctx.emit(Event("gov.propose", sender=ctx.sender,
                   details={"proposal": proposal_id, "action": action.name} | summary))
    _settle(ctx, action, proposal_id, proposal)


def _parse_approve(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"proposal": p.text(128)})


def _approve(ctx: TxContext, actions: Mapping[str, Action], args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    proposal = ctx.state.get(proposal_key(args["proposal"]))
    if proposal is None:
        raise ExecutionFailed(f"no open proposal {args['proposal']}", Code.NOT_FOUND)
    if ctx.sender in proposal["approvals"]:
        raise ExecutionFailed("this member already approved the proposal", Code.ALREADY_EXISTS)
    proposal = {**proposal, "approvals": sorted([*proposal["approvals"], ctx.sender])}
    ctx.emit(Event("gov.approve", sender=ctx.sender, details={"proposal": args["proposal"]}))
    action = actions.get(proposal["action"])
    if action is None:  # an action of an earlier protocol version, since removed
        raise ExecutionFailed(f"action {proposal['action']!r} no longer exists",
                              Code.INVALID_PAYLOAD)
    _settle(ctx, action, args["proposal"], proposal)


def _settle(ctx: TxContext, action: Action, proposal_id: str, proposal: dict[str, Any]
            ) -> None:
    members = committee(ctx.state)
    approvals = [a for a in proposal["approvals"] if a in members]
    if len(approvals) * 2 <= len(members):
        ctx.state.put(proposal_key(proposal_id), proposal)
        return
    ctx.state.delete(proposal_key(proposal_id))
    action.check(ctx, proposal["args"])  # the state may have moved since the proposal
    action.apply(ctx, proposal["args"], proposal, proposal_id)


def _parse_validator_set(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"name": _name, "power": _power},
                   {"public_key": _key_bytes, "consensus_key": _key_bytes})


def _check_validator_change(ctx: TxContext, args: dict[str, Any]) -> None:
    current = {v["name"]: v for v in validators(ctx.state)}
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


VALIDATOR_SET = Action("validator.set", _parse_validator_set, _check_validator_change,
                       _apply_validator_change, "add, remove or re-weight a validator")


def _genesis(genesis: Genesis) -> dict[bytes, Any]:
    return {VALIDATORS_KEY: [validator_doc(v.name, v.public_key, v.consensus_key, v.power)
                             for v in sorted(genesis.validators, key=lambda v: v.name)]}


#: Version 4: the validator set's genesis only (the committee module proposes and votes).
VALIDATORS_MODULE = Module("validators", genesis=_genesis)


def make_module(actions: Iterable[Action]) -> Module:
    """The governance module over the committee actions of a chain's other modules (its
    own, ``validator.set``, included)."""
    table: dict[str, Action] = {VALIDATOR_SET.name: VALIDATOR_SET}
    for action in actions:
        if action.name in table:
            raise ValueError(f"two modules claim the committee action {action.name!r}")
        table[action.name] = action
    committee_ops = _Committee(table)
    return Module(
        "governance",
        operations=(
            Operation("gov.propose", committee_ops.parse_propose, committee_ops.propose,
                      "a committee member proposes an action"),
            Operation("gov.approve", _parse_approve, committee_ops.approve,
                      "a committee member approves a proposal; it applies past half the "
                      "committee"),
        ),
        genesis=_genesis,
    )
