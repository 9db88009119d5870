"""The committee of protocol version 4: weighted seats, votes for and against, proposals
that expire and can be withdrawn.

Every change of roles, policies, membership, committee seats, validators, contracts and
the protocol goes through a proposal. A seat is held by an account and carries a weight;
holding a seat is separate from holding a role. Per action, a vote policy
(tally.exec.policy, ``gov:<action>``) sets the participation and win thresholds of
FISCO BCOS 3.x's committee: a proposal passes once the weight that voted reaches
``participation`` of all seats' weight and the weight for it reaches ``win`` of the weight
that voted; it is rejected once it could no longer pass even if every seat that has not
voted voted for it. The proposer votes for its own proposal. A proposal expires at the
height it names (default :data:`DEFAULT_TTL` blocks after it), and its proposer may
withdraw it while it is open. Every result is an event: ``gov.pass``, ``gov.reject``,
``gov.withdraw``, ``gov.expire`` (expired proposals are closed by the next committee
transaction, so the event lands in a block; until then queries report them expired and
votes on them are refused).

State::

    seats                 {address: weight}
    proposal/<id>         {action, args, proposer, height, expires, votes: {address: for|against},
                           status: open | passed | rejected | withdrawn | expired}
    proposals/open        sorted ids of open proposals (at most MAX_OPEN)

Weights are counted over the seats as they are when a vote is cast (a seat removed since
no longer counts); a seat whose account is frozen or whose member is suspended counts in
the total but cannot vote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec import policy
from tally.exec.context import Event, TxContext
from tally.exec.governance import VALIDATOR_SET
from tally.exec.module import Action, Module
from tally.exec.operation import Operation
from tally.exec.registry import SEATS_KEY, Subject, seats
from tally.exec.state import StateReader

DEFAULT_TTL = 100_000
MAX_TTL = 10_000_000
MAX_OPEN = 256
MAX_WEIGHT = 1_000_000
OPEN_KEY = b"proposals/open"
_RESULT_EVENTS = {"passed": "gov.pass", "rejected": "gov.reject", "withdrawn": "gov.withdraw",
                  "expired": "gov.expire"}


def proposal_key(proposal_id: str) -> bytes:
    return f"proposal/{proposal_id}".encode()


def open_proposals(state: StateReader) -> list[str]:
    return state.get(OPEN_KEY) or []


def status_at(proposal: dict[str, Any], height: int) -> str:
    """A proposal's status as of ``height`` (an open one past its expiry is expired)."""
    if proposal["status"] == "open" and height > proposal["expires"]:
        return "expired"
    return proposal["status"]


def tally_votes(state: StateReader, proposal: dict[str, Any]) -> dict[str, int]:
    held = seats(state)
    out = {"for": 0, "against": 0, "total": sum(held.values())}
    for voter, vote in proposal["votes"].items():
        out[vote] += held.get(voter, 0)
    return out


def outcome(state: StateReader, proposal: dict[str, Any]) -> str:
    """open, passed or rejected, by the action's vote policy and the seats now."""
    rule = policy.vote_policy(state, proposal["action"])
    votes = tally_votes(state, proposal)
    cast, total = votes["for"] + votes["against"], votes["total"]
    if total <= 0:
        return "open"
    if cast * 10000 >= rule["participation"] * total and cast > 0 \
            and votes["for"] * 10000 >= rule["win"] * cast:
        return "passed"
    best_for = votes["for"] + (total - cast)  # every seat yet to vote votes for
    if best_for * 10000 < rule["win"] * total or best_for == 0:
        return "rejected"
    return "open"


# --- operations ---------------------------------------------------------------------------

def _require_seat(ctx: TxContext) -> None:
    if ctx.sender not in seats(ctx.state):
        raise ExecutionFailed(f"account {ctx.sender} holds no committee seat",
                              Code.UNAUTHORISED)


def _open_proposal(ctx: TxContext, proposal_id: str) -> dict[str, Any]:
    proposal = ctx.state.get(proposal_key(proposal_id))
    if proposal is None:
        raise ExecutionFailed(f"no proposal {proposal_id}", Code.NOT_FOUND)
    status = status_at(proposal, ctx.height)
    if status != "open":
        raise ExecutionFailed(f"proposal {proposal_id} is {status}", Code.PROPOSAL_CLOSED)
    return proposal


def _close(ctx: TxContext, proposal_id: str, proposal: dict[str, Any], status: str) -> None:
    """Close a proposal; its record keeps the final tally (seats change later)."""
    votes = tally_votes(ctx.state, proposal)
    ctx.state.put(proposal_key(proposal_id), {**proposal, "status": status, "tally": votes})
    ctx.state.put(OPEN_KEY, [i for i in open_proposals(ctx.state) if i != proposal_id])
    ctx.emit(Event(_RESULT_EVENTS[status], sender=ctx.sender,
                   details={"proposal": proposal_id, "action": proposal["action"], **votes}))


def sweep_expired(ctx: TxContext) -> None:
    """Close every open proposal past its expiry, with a ``gov.expire`` event each."""
    for proposal_id in open_proposals(ctx.state):
        proposal = ctx.state.get(proposal_key(proposal_id))
        if proposal is not None and status_at(proposal, ctx.height) == "expired":
            _close(ctx, proposal_id, proposal, "expired")


class _Committee:
    """The committee's operations over one table of actions."""

    def __init__(self, actions: Mapping[str, Action]) -> None:
        self.actions = dict(actions)

    def parse_propose(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = self.actions.get(payload.get("action"))  # type: ignore[arg-type]
        if action is None:
            raise p.invalid(f"action must be one of: {', '.join(sorted(self.actions))}")
        ttl = p.whole(1, MAX_TTL)("ttl", payload.get("ttl", DEFAULT_TTL))
        rest = {k: v for k, v in payload.items() if k not in ("action", "ttl")}
        return {"action": action.name, "ttl": ttl, "args": action.parse(rest)}

    def propose(self, ctx: TxContext, args: dict[str, Any]) -> None:
        _require_seat(ctx)
        sweep_expired(ctx)
        action = self.actions[args["action"]]
        action.check(ctx, args["args"])
        open_ids = open_proposals(ctx.state)
        if len(open_ids) >= MAX_OPEN:
            raise ExecutionFailed(f"{MAX_OPEN} proposals are open; vote on or withdraw "
                                  "some first", Code.INVALID_PAYLOAD)
        proposal_id = ctx.tx_id.hex()
        proposal = {"action": action.name, "args": args["args"], "proposer": ctx.sender,
                    "height": ctx.height, "expires": ctx.height + args["ttl"],
                    "votes": {ctx.sender: "for"}, "status": "open"}
        ctx.state.put(OPEN_KEY, sorted([*open_ids, proposal_id]))
        summary = {k: v for k, v in args["args"].items() if isinstance(v, (int, str))
                   and not (isinstance(v, str) and len(v) > 200)}
        ctx.emit(Event("gov.propose", sender=ctx.sender,
                       details={"proposal": proposal_id, "action": action.name,
                                "expires": proposal["expires"]} | summary))
        self._settle(ctx, proposal_id, proposal)

    def vote(self, ctx: TxContext, args: dict[str, Any]) -> None:
        _require_seat(ctx)
        sweep_expired(ctx)
        proposal = _open_proposal(ctx, args["proposal"])
        if ctx.sender in proposal["votes"]:
            raise ExecutionFailed("this seat already voted on the proposal",
                                  Code.ALREADY_EXISTS)
        proposal = {**proposal, "votes": {**proposal["votes"], ctx.sender: args["vote"]}}
        ctx.emit(Event("gov.vote", sender=ctx.sender,
                       details={"proposal": args["proposal"], "vote": args["vote"]}))
        self._settle(ctx, args["proposal"], proposal)

    def approve(self, ctx: TxContext, args: dict[str, Any]) -> None:
        self.vote(ctx, {"proposal": args["proposal"], "vote": "for"})

    def withdraw(self, ctx: TxContext, args: dict[str, Any]) -> None:
        _require_seat(ctx)
        sweep_expired(ctx)
        proposal = _open_proposal(ctx, args["proposal"])
        if proposal["proposer"] != ctx.sender:
            raise ExecutionFailed("only the proposer may withdraw a proposal",
                                  Code.UNAUTHORISED)
        _close(ctx, args["proposal"], proposal, "withdrawn")

    def _settle(self, ctx: TxContext, proposal_id: str, proposal: dict[str, Any]) -> None:
        result = outcome(ctx.state, proposal)
        if result == "open":
            ctx.state.put(proposal_key(proposal_id), proposal)
            return
        _close(ctx, proposal_id, proposal, result)
        if result == "passed":
            action = self.actions.get(proposal["action"])
            if action is None:  # an action of an earlier protocol version, since removed
                raise ExecutionFailed(f"action {proposal['action']!r} no longer exists",
                                      Code.INVALID_PAYLOAD)
            action.check(ctx, proposal["args"])  # the state may have moved since
            action.apply(ctx, proposal["args"], proposal, proposal_id)


def _parse_vote(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"proposal": p.text(128), "vote": p.one_of("for", "against")})


def _parse_ref(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"proposal": p.text(128)})


# --- committee.seat -----------------------------------------------------------------------

def _parse_seat(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"account": p.address, "weight": p.whole(0, MAX_WEIGHT)})


def _seats_after(state: StateReader, args: dict[str, Any]) -> dict[str, int]:
    held = dict(seats(state))
    if args["weight"] == 0:
        held.pop(args["account"], None)
    else:
        held[args["account"]] = args["weight"]
    return {a: held[a] for a in sorted(held)}


def _check_seat(ctx: TxContext, args: dict[str, Any]) -> None:
    if args["weight"] == 0 and args["account"] not in seats(ctx.state):
        raise ExecutionFailed(f"{args['account']} holds no seat", Code.NOT_FOUND)
    if args["weight"] > 0:
        who = Subject.of(ctx.state, args["account"])
        if not who.active:
            raise ExecutionFailed(f"a seat needs an active account: {who.why_not}",
                                  Code.INVALID_PAYLOAD)
    policy.with_change(ctx.state, SEATS_KEY, _seats_after(ctx.state, args),
                       policy.check_not_locked_out)


def _apply_seat(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                proposal_id: str) -> None:
    ctx.state.put(SEATS_KEY, _seats_after(ctx.state, args))
    ctx.emit(Event("committee.seat", to=args["account"], quantity=args["weight"],
                   details={"weight": args["weight"], "proposal": proposal_id}))


COMMITTEE_SEAT = Action("committee.seat", _parse_seat, _check_seat, _apply_seat,
                        "give an account a committee seat, change its weight, or remove it")


def make_module(actions: Iterable[Action]) -> Module:
    """The committee over the actions of a chain's other modules, its own
    (``committee.seat``, ``policy.set``) and governance's ``validator.set``."""
    own = (VALIDATOR_SET, COMMITTEE_SEAT, policy.POLICY_SET)
    table: dict[str, Action] = {}
    for action in (*own, *actions):
        if action.name in table:
            raise ValueError(f"two modules claim the committee action {action.name!r}")
        table[action.name] = action
    ops = _Committee(table)
    return Module(
        "committee",
        operations=(
            Operation("gov.propose", ops.parse_propose, ops.propose,
                      "a seat holder proposes a committee action"),
            Operation("gov.vote", _parse_vote, ops.vote,
                      "a seat holder votes for or against a proposal"),
            Operation("gov.approve", _parse_ref, ops.approve,
                      "a seat holder votes for a proposal (gov.vote with vote=for)"),
            Operation("gov.withdraw", _parse_ref, ops.withdraw,
                      "the proposer withdraws its open proposal"),
        ),
        actions=own,
    )
