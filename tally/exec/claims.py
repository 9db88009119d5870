"""Claims (protocol version 4): trusted issuers attest facts about identities.

As ERC-3643's claim registries do: per claim *topic* (``kyc``, ``qualified_investor``,
``jurisdiction``, ``enterprise_type`` ...) the committee names the accounts trusted to
issue it (``claim.topic``, a committee action). A trusted issuer then issues a claim to a
registered account — a value, and optionally an expiry in block time — and may revoke
it. Contracts read identities and claims through host functions (``identity.account``,
``identity.claim``), so a security token asks "does this holder hold an unexpired
``qualified_investor`` claim" instead of keeping its own list.

State::

    topic/<topic>            sorted addresses of the topic's trusted issuers
    claim/<address>/<topic>  {value, issuer, height, expires_ms (0: never)}

A claim is valid while its issuer is still trusted for the topic, it has not expired at
the block's time, and the holder's account is active: :func:`valid_claim` is the one
reading of that rule, for transactions, contracts and the API alike.
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Action, HostFunction, HostState, Module
from tally.exec.operation import Operation
from tally.exec.registry import Subject, account
from tally.exec.state import StateReader
from tally.vm import HostRequest

MAX_ISSUERS = 32


def topic_key(topic: str) -> bytes:
    return b"topic/" + topic.encode()


def claim_key(address: str, topic: str) -> bytes:
    return f"claim/{address}/{topic}".encode()


def trusted_issuers(state: StateReader, topic: str) -> list[str]:
    return state.get(topic_key(topic)) or []


def valid_claim(state: StateReader, address: str, topic: str, time_ms: int) -> Any:
    """The claim's value, or None if there is none valid at ``time_ms``."""
    claim = state.get(claim_key(address, topic))
    if claim is None or claim["issuer"] not in trusted_issuers(state, topic):
        return None
    if claim["expires_ms"] and time_ms >= claim["expires_ms"]:
        return None
    if not Subject.of(state, address).active:
        return None
    return claim["value"]


def _value(name: str, value: Any) -> int | str:
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    if isinstance(value, str) and len(value) <= 200:
        return value
    raise p.invalid(f"{name} must be a whole number or text of at most 200 characters")


def _parse_issue(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"subject": p.address, "topic": p.identifier, "value": _value},
                   {"expires_ms": p.whole(0, 2**63 - 1)})


def _require_trusted(ctx: TxContext, topic: str) -> None:
    if ctx.sender not in trusted_issuers(ctx.state, topic):
        raise ExecutionFailed(f"account {ctx.sender} is not a trusted issuer of {topic!r}",
                              Code.UNAUTHORISED)


def _issue(ctx: TxContext, args: dict[str, Any]) -> None:
    _require_trusted(ctx, args["topic"])
    subject = args["subject"]
    if account(ctx.state, subject) is None:
        raise ExecutionFailed(f"account {subject} is not registered", Code.NOT_FOUND)
    expires = args.get("expires_ms", 0)
    if expires and expires <= ctx.time_ms:
        raise p.invalid("expires_ms is already past")
    ctx.state.put(claim_key(subject, args["topic"]), {
        "value": args["value"], "issuer": ctx.sender, "height": ctx.height,
        "expires_ms": expires})
    ctx.emit(Event("claim.issue", sender=ctx.sender, to=subject, details={
        "topic": args["topic"], "value": args["value"], "expires_ms": expires}))


def _parse_revoke(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"subject": p.address, "topic": p.identifier},
                   {"reason": p.text(500)})


def _revoke(ctx: TxContext, args: dict[str, Any]) -> None:
    _require_trusted(ctx, args["topic"])
    key = claim_key(args["subject"], args["topic"])
    if ctx.state.get(key) is None:
        raise ExecutionFailed(f"{args['subject']} holds no {args['topic']!r} claim",
                              Code.NOT_FOUND)
    ctx.state.delete(key)
    ctx.emit(Event("claim.revoke", sender=ctx.sender, to=args["subject"], details={
        "topic": args["topic"], "reason": args.get("reason", "")}))


def _parse_topic(args: dict[str, Any]) -> dict[str, Any]:
    parsed = p.parse(args, {"topic": p.identifier, "issuers": _issuers})
    return parsed


def _issuers(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ISSUERS:
        raise p.invalid(f"{name} must be a list of at most {MAX_ISSUERS} addresses")
    return sorted({p.address(name, v) for v in value})


def _check_topic(ctx: TxContext, args: dict[str, Any]) -> None:
    for issuer in args["issuers"]:
        if account(ctx.state, issuer) is None:
            raise ExecutionFailed(f"issuer {issuer} is not registered", Code.NOT_FOUND)


def _apply_topic(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                 proposal_id: str) -> None:
    if args["issuers"]:
        ctx.state.put(topic_key(args["topic"]), args["issuers"])
    else:
        ctx.state.delete(topic_key(args["topic"]))
    ctx.emit(Event("claim.topic", details={"topic": args["topic"],
                                           "issuers": args["issuers"],
                                           "proposal": proposal_id}))


# --- contracts' view ------------------------------------------------------------------------

def _h_account(req: HostRequest, state: HostState, address: str) -> dict[str, Any] | None:
    p.address("address", address)
    record = account(state, address)
    if record is None:
        return None
    who = Subject.of(state, address)
    return {"member": record["member"], "kyc": record["kyc"], "status": record["status"],
            "active": who.active, "roles": list(who.roles)}


def _h_claim(req: HostRequest, state: HostState, address: str, topic: str) -> Any:
    p.address("address", address)
    p.identifier("topic", topic)
    return valid_claim(state, address, topic, req.context.time_ms)


MODULE = Module(
    "claims",
    operations=(
        Operation("claim.issue", _parse_issue, _issue,
                  "a trusted issuer attests a claim about an account"),
        Operation("claim.revoke", _parse_revoke, _revoke,
                  "a trusted issuer withdraws a claim"),
    ),
    actions=(Action("claim.topic", _parse_topic, _check_topic, _apply_topic,
                    "name the trusted issuers of a claim topic"),),
    host_functions=(HostFunction("identity.account", _h_account, cost=60),
                    HostFunction("identity.claim", _h_claim, cost=80)),
)
