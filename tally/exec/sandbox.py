"""The regulatory sandbox (protocol version 4): a contract runs under a regulator's watch,
within caps, before it goes live.

Pilots of new financial services run "in the sandbox" first (seed 000): the committee,
with a regulator among those voting for it, admits a deployed contract in sandbox mode
(``sandbox.open``) with caps: the most custody units one call may move, the most all
calls together may move, the accounts that may call it, and the height at which the trial
ends. The executor enforces them on every call of the contract: a caller not on the list,
a call at or after the end height, or a call whose custody events would pass a cap is
refused with ``SANDBOX_CAP`` and changes nothing. Each call that runs leaves a
``sandbox.call`` event (caller, units moved, the running total), so the regulator's
stream is a live report of the trial. The committee ends it by vote (``sandbox.close``
with outcome ``graduate``: the caps are lifted and the contract is live; or ``close``:
every later call is refused); what happened in it stays on record in the log.

State::

    sandbox/<contract>   {status: open | closed | graduated, max_per_call, max_total,
                          participants: [address], end_height, moved, calls, opened}

A contract without a ``sandbox/`` record is not in a sandbox (every contract of a chain
before version 4): the check reads one key and does nothing else.
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Action, Module
from tally.exec.registry import Subject

MAX_PARTICIPANTS = 256


def sandbox_key(contract: str) -> bytes:
    return b"sandbox/" + contract.encode()


def before_call(ctx: TxContext, contract: str) -> dict[str, Any] | None:
    """The contract's open sandbox, after refusing a caller or a height it does not
    allow; None when the contract is not in a sandbox (or graduated)."""
    record = ctx.state.get(sandbox_key(contract))
    if record is None or record["status"] == "graduated":
        return None
    if record["status"] == "closed":
        raise ExecutionFailed(f"contract {contract} was closed in its sandbox",
                              Code.SANDBOX_CAP)
    if ctx.height >= record["end_height"]:
        raise ExecutionFailed(f"contract {contract}'s sandbox ended at height "
                              f"{record['end_height']}", Code.SANDBOX_CAP)
    if ctx.sender not in record["participants"]:
        raise ExecutionFailed(f"{ctx.sender} is not a participant of {contract}'s sandbox",
                              Code.SANDBOX_CAP)
    return record


def after_call(ctx: TxContext, contract: str, record: dict[str, Any], first_event: int
               ) -> None:
    """Refuse a call whose custody events moved more than the caps allow; else count it."""
    moved = sum(e.quantity for e in ctx.events[first_event:])
    if moved > record["max_per_call"]:
        raise ExecutionFailed(f"the call moved {moved} units; {contract}'s sandbox allows "
                              f"{record['max_per_call']} per call", Code.SANDBOX_CAP)
    total = record["moved"] + moved
    if total > record["max_total"]:
        raise ExecutionFailed(f"the call would bring {contract}'s sandbox to {total} units; "
                              f"its cap is {record['max_total']}", Code.SANDBOX_CAP)
    ctx.state.put(sandbox_key(contract), {**record, "moved": total,
                                          "calls": record["calls"] + 1})
    ctx.emit(Event("sandbox.call", sender=ctx.sender, quantity=moved,
                   details={"contract": contract, "total": total}))


# --- committee actions ----------------------------------------------------------------------

def _participants(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_PARTICIPANTS:
        raise p.invalid(f"{name} must list 1 to {MAX_PARTICIPANTS} addresses")
    return sorted({p.address(name, a) for a in value})


def _parse_open(args: dict[str, Any]) -> dict[str, Any]:
    parsed = p.parse(args, {"contract": p.identifier, "max_per_call": p.quantity,
                            "max_total": p.quantity, "participants": _participants,
                            "end_height": p.quantity})
    if parsed["max_per_call"] > parsed["max_total"]:
        raise p.invalid("max_per_call cannot exceed max_total")
    return parsed


def _check_open(ctx: TxContext, args: dict[str, Any]) -> None:
    if ctx.state.get(b"contract/" + args["contract"].encode()) is None:
        raise ExecutionFailed(f"no contract {args['contract']!r}", Code.NOT_FOUND)
    if ctx.state.get(sandbox_key(args["contract"])) is not None:
        raise ExecutionFailed(f"contract {args['contract']} has had a sandbox",
                              Code.ALREADY_EXISTS)
    if args["end_height"] <= ctx.height:
        raise p.invalid("end_height must be above the current height")


def _regulator_voted_for(ctx: TxContext, proposal: dict[str, Any]) -> None:
    """A sandbox runs under a regulator's watch: one of the votes for it is a
    regulator's."""
    for voter, vote in proposal["votes"].items():
        if vote == "for" and "regulator" in Subject.of(ctx.state, voter).roles:
            return
    raise ExecutionFailed("a sandbox needs a regulator among the votes for it",
                          Code.UNAUTHORISED)


def _apply_open(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                proposal_id: str) -> None:
    _regulator_voted_for(ctx, proposal)
    ctx.state.put(sandbox_key(args["contract"]), {
        **{k: args[k] for k in ("max_per_call", "max_total", "participants", "end_height")},
        "status": "open", "moved": 0, "calls": 0, "opened": ctx.height})
    ctx.emit(Event("sandbox.open", details={k: v for k, v in args.items()}
                   | {"proposal": proposal_id}))


def _parse_close(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"contract": p.identifier, "outcome": p.one_of("graduate", "close")},
                   {"reason": p.text(500)})


def _check_close(ctx: TxContext, args: dict[str, Any]) -> None:
    record = ctx.state.get(sandbox_key(args["contract"]))
    if record is None or record["status"] != "open":
        raise ExecutionFailed(f"contract {args['contract']} has no open sandbox",
                              Code.NOT_FOUND)


def _apply_close(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                 proposal_id: str) -> None:
    record = ctx.state.get(sandbox_key(args["contract"]))
    assert record is not None
    status = "graduated" if args["outcome"] == "graduate" else "closed"
    ctx.state.put(sandbox_key(args["contract"]), {**record, "status": status,
                                                  "ended": ctx.height})
    ctx.emit(Event("sandbox.close", details={
        "contract": args["contract"], "outcome": args["outcome"], "moved": record["moved"],
        "calls": record["calls"], "reason": args.get("reason", ""),
        "proposal": proposal_id}))


MODULE = Module(
    "sandbox",
    actions=(
        Action("sandbox.open", _parse_open, _check_open, _apply_open,
               "admit a deployed contract in sandbox mode, with caps (a regulator votes for)"),
        Action("sandbox.close", _parse_close, _check_close, _apply_close,
               "end a sandbox: graduate the contract (caps lifted) or close it"),
    ),
)
