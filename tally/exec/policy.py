"""Policies: who may do what, as data in state, and the one function that answers it.

From protocol version 4 every resource has a policy, and :func:`may` is the only place
that decides "may account X do Y". The executor asks it for every transaction before the
transaction's operation runs; the API and the CLI ask it to explain a refusal. Policies
change only by committee proposal (``policy.set``).

Resources are names::

    tx:<kind>                 sending a transaction of that kind (tx:custody.transfer)
    call:<contract>:<method>  calling one method of a contract (or ``call:<contract>:*``)
    gov:<action>              a committee action: its policy is a *vote* policy

A signer policy says who alone may act::

    {"any": true}                        any registered, active account
    {"member": "<id>"}                   any active account of that member
    {"role": "<role>"}                   an account holding the role
    {"role": "<role>", "member": "<id>"} ... granted within that member
    {"accounts": ["<address>", ...]}     exactly these accounts (an allow list)
    {"any_of": [<policy>, ...]}          one of them holds
    {"all_of": [<policy>, ...]}          all of them hold

A resource's record is ``{"allow": <signer policy>, "deny": [<address>, ...]}``; a denied
account is refused whatever ``allow`` says (FISCO BCOS's method-level deny list). A vote
policy is ``{"participation": bps, "win": bps}`` in basis points: a proposal passes once
the weight that voted reaches ``participation`` of the committee's weight and the weight
for it reaches ``win`` of the weight that voted (FISCO BCOS 3.x's two thresholds), and is
rejected once it can no longer pass. Names: ``MAJORITY`` (5001/5001), ``TWO_THIRDS``
(6667/6667), ``ALL`` (10000/10000).

State::

    policy/<resource>    the resource's record; absent: the default of DEFAULTS, else
                         {"allow": {"any": true}} for tx and call, MAJORITY for gov

Invariants: a policy document is checked in full (depth ≤ 4, ≤ 64 nodes, known shapes
only) before it is stored, so evaluating one is bounded; the committee's own transaction
kinds (``gov.*``) have no configurable policy, and no change may leave the committee
unable to pass a proposal (:func:`check_not_locked_out`), so governance cannot lock
itself out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tally.errors import Code, ExecutionFailed, TxRejected
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Action
from tally.exec.registry import Subject, seat_is_active, seats
from tally.exec.state import StateAccess, StateReader

MAJORITY = {"participation": 5001, "win": 5001}
TWO_THIRDS = {"participation": 6667, "win": 6667}
ALL = {"participation": 10000, "win": 10000}
VOTE_PRESETS = {"MAJORITY": MAJORITY, "TWO_THIRDS": TWO_THIRDS, "ALL": ALL}
ANY = {"any": True}

#: Default policies of version 4 where "any registered account" is not the default.
DEFAULTS: dict[str, dict[str, Any]] = {
    "tx:asset.issue": {"allow": {"role": "issuer"}},
    "tx:custody.freeze": {"allow": {"any_of": [{"role": "custodian"}, {"role": "regulator"}]}},
    "tx:custody.unfreeze": {"allow": {"any_of": [{"role": "custodian"},
                                                  {"role": "regulator"}]}},
    "tx:account.register": {"allow": {"role": "registrar"}},
    "tx:account.freeze": {"allow": {"any_of": [{"role": "registrar"}, {"role": "regulator"}]}},
    "tx:account.unfreeze": {"allow": {"any_of": [{"role": "registrar"},
                                                  {"role": "regulator"}]}},
    "tx:account.close": {"allow": {"role": "registrar"}},
    "tx:account.recover": {"allow": {"role": "registrar"}},
    "tx:cert.revoke": {"allow": {"role": "registrar"}},
    "tx:asset.freeze": {"allow": {"role": "regulator"}},
    "tx:asset.unfreeze": {"allow": {"role": "regulator"}},
    "tx:custody.force_transfer": {"allow": {"role": "regulator"}},
}
#: Actions whose change could take governance away from the committee: never below MAJORITY.
GUARDED_ACTIONS = ("policy.set", "committee.seat", "member.expel", "member.suspend")

_MAX_DEPTH = 4
_MAX_NODES = 64
_RESOURCE_RE = re.compile(r"^(tx:[a-z][a-z0-9_.]{0,63}|gov:[a-z][a-z0-9_.]{0,63}"
                          r"|call:[A-Za-z0-9][A-Za-z0-9._-]{0,63}:(\*|[A-Za-z_][A-Za-z0-9_]{0,63}))$")


def policy_key(resource: str) -> bytes:
    return b"policy/" + resource.encode()


# --- the one question ----------------------------------------------------------------

class Verdict:
    """The answer to "may X do Y", with the reason in words (for refusals and the API)."""

    __slots__ = ("allowed", "reason")

    def __init__(self, allowed: bool, reason: str) -> None:
        self.allowed, self.reason = allowed, reason

    def __bool__(self) -> bool:
        return self.allowed


def may(state: StateReader, account: str | Subject, resource: str) -> Verdict:
    """May ``account`` act on ``resource`` (a ``tx:`` or ``call:`` resource)?"""
    who = account if isinstance(account, Subject) else Subject.of(state, account)
    account = who.address
    if not who.active:
        return Verdict(False, who.why_not)
    record = signer_record(state, resource)
    if account in record.get("deny", ()):
        return Verdict(False, f"{account} is on the deny list of {resource}")
    if holds(record["allow"], who):
        return Verdict(True, f"{account} satisfies the policy of {resource}")
    return Verdict(False, f"{account} does not satisfy the policy of {resource}: "
                          f"{describe(record['allow'])}")


def signer_record(state: StateReader, resource: str) -> dict[str, Any]:
    stored = state.get(policy_key(resource))
    if stored is not None:
        return stored
    if resource.startswith("call:"):
        contract = resource.split(":")[1]
        wildcard = state.get(policy_key(f"call:{contract}:*"))
        if wildcard is not None:
            return wildcard
    return DEFAULTS.get(resource, {"allow": ANY})


def vote_policy(state: StateReader, action: str) -> dict[str, int]:
    return state.get(policy_key(f"gov:{action}")) or MAJORITY


def holds(policy: dict[str, Any], who: Subject) -> bool:
    """Does the subject ``who`` satisfy the signer ``policy``?"""
    if not who.active:
        return False
    if "any" in policy:
        return True
    if "accounts" in policy:
        return who.address in policy["accounts"]
    if "any_of" in policy:
        return any(holds(sub, who) for sub in policy["any_of"])
    if "all_of" in policy:
        return all(holds(sub, who) for sub in policy["all_of"])
    if "role" in policy:
        member = policy.get("member")
        return policy["role"] in who.roles and (member is None or who.member == member)
    if "member" in policy:
        return who.member == policy["member"]
    return False


def describe(policy: dict[str, Any]) -> str:
    """The policy in words."""
    if "any" in policy:
        return "any registered account"
    if "accounts" in policy:
        return f"one of {len(policy['accounts'])} listed accounts"
    if "any_of" in policy:
        return "one of (" + "; ".join(describe(s) for s in policy["any_of"]) + ")"
    if "all_of" in policy:
        return "all of (" + "; ".join(describe(s) for s in policy["all_of"]) + ")"
    if "role" in policy:
        scope = f" of member {policy['member']}" if "member" in policy else ""
        return f"the role {policy['role']}{scope}"
    return f"an account of member {policy['member']}"


def admit(state: StateReader, sender: str) -> Subject:
    """Version 4: refuse, before it runs, a transaction whose sender may not act at all
    (unregistered where registration is required, frozen, closed, revoked, or of a
    suspended or expelled member). Such a transaction is not recorded and uses no nonce."""
    who = Subject.of(state, sender)
    if not who.active:
        code = Code.ACCOUNT_INACTIVE if who.registered else Code.UNREGISTERED
        raise TxRejected(who.why_not, code)
    return who


def resources_of(kind: str, parsed: dict[str, Any]) -> tuple[str, ...]:
    """The resources a transaction acts on: its kind, and a contract call's method."""
    if kind == "contract.call":
        return (f"tx:{kind}", f"call:{parsed['contract']}:{parsed['method']}")
    return (f"tx:{kind}",)


def authorize(state: StateReader, sender: Subject, kind: str, parsed: dict[str, Any]
              ) -> None:
    """Raise UNAUTHORISED unless :func:`may` allows ``sender`` every resource of the
    transaction (the executor calls it for every transaction of version 4)."""
    for resource in resources_of(kind, parsed):
        record = signer_record(state, resource)
        if sender.address in record.get("deny", ()) or not holds(record["allow"], sender):
            raise ExecutionFailed(may(state, sender, resource).reason, Code.UNAUTHORISED)


# --- checking documents ------------------------------------------------------------------

def check_signer_policy(value: Any, depth: int = 0, budget: list[int] | None = None
                        ) -> dict[str, Any]:
    """A signer policy document, checked in full (bounded), or INVALID_PAYLOAD."""
    budget = budget if budget is not None else [_MAX_NODES]
    budget[0] -= 1
    if depth > _MAX_DEPTH or budget[0] < 0:
        raise p.invalid(f"a policy may nest {_MAX_DEPTH} deep and hold {_MAX_NODES} parts")
    if not isinstance(value, dict) or len(value) not in (1, 2):
        raise p.invalid("a policy is one of: any, member, role (with member), accounts, "
                        "any_of, all_of")
    keys = set(value)
    if keys == {"any"} and value["any"] is True:
        return {"any": True}
    if keys == {"member"}:
        return {"member": p.identifier("member", value["member"])}
    if keys in ({"role"}, {"role", "member"}):
        out = {"role": p.identifier("role", value["role"])}
        if "member" in value:
            out["member"] = p.identifier("member", value["member"])
        return out
    if keys == {"accounts"}:
        return {"accounts": _addresses("accounts", value["accounts"])}
    if keys in ({"any_of"}, {"all_of"}):
        (name,) = keys
        subs = value[name]
        if not isinstance(subs, list) or not 1 <= len(subs) <= 16:
            raise p.invalid(f"{name} needs a list of 1 to 16 policies")
        return {name: [check_signer_policy(s, depth + 1, budget) for s in subs]}
    raise p.invalid(f"unknown policy shape {sorted(map(str, keys))}")


def _addresses(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 256:
        raise p.invalid(f"{name} must be a list of at most 256 addresses")
    return sorted({p.address(name, a) for a in value})


def check_vote_policy(value: Any) -> dict[str, int]:
    if isinstance(value, str) and value in VOTE_PRESETS:
        return dict(VOTE_PRESETS[value])
    if not isinstance(value, dict) or set(value) != {"participation", "win"}:
        raise p.invalid("a vote policy is MAJORITY, TWO_THIRDS, ALL or "
                        "{participation, win} in basis points")
    return {k: p.whole(0, 10000)(k, value[k]) for k in ("participation", "win")}


def check_resource(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _RESOURCE_RE.match(value):
        raise p.invalid(f"{name} must be tx:<kind>, call:<contract>:<method> or gov:<action>")
    if value.startswith("tx:gov."):
        raise p.invalid("the committee's own transactions (gov.*) are open to seat "
                        "holders only; their policy cannot change")
    return value


# --- policy.set (a committee action) -------------------------------------------------------

def _parse_set(args: dict[str, Any]) -> dict[str, Any]:
    parsed = p.parse(args, {"resource": check_resource},
                     {"allow": lambda _n, v: v, "deny": _addresses,
                      "vote": lambda _n, v: v, "reset": p.one_of("yes")})
    resource = parsed["resource"]
    if resource.startswith("gov:"):
        if set(parsed) - {"resource", "vote", "reset"}:
            raise p.invalid("a gov: resource takes a vote policy (vote)")
        if "vote" in parsed:
            parsed["vote"] = check_vote_policy(parsed["vote"])
    else:
        if "vote" in parsed:
            raise p.invalid("a vote policy is for gov: resources")
        if "allow" in parsed:
            parsed["allow"] = check_signer_policy(parsed["allow"])
    if "reset" in parsed and len(parsed) > 2:
        raise p.invalid("reset takes no other field")
    if "reset" not in parsed and not ({"allow", "deny", "vote"} & set(parsed)):
        raise p.invalid("give allow, deny, vote or reset")
    return parsed


def _new_record(state: StateReader, args: dict[str, Any]) -> dict[str, Any] | None:
    resource = args["resource"]
    if "reset" in args:
        return None
    if resource.startswith("gov:"):
        return args["vote"]
    record = dict(signer_record(state, resource))
    if "allow" in args:
        record["allow"] = args["allow"]
    if "deny" in args:
        record["deny"] = args["deny"]
    return record


def _check_set(ctx: TxContext, args: dict[str, Any]) -> None:
    resource = args["resource"]
    if resource.startswith("gov:"):
        action = resource[4:]
        if action not in ctx.rules.actions:  # type: ignore[attr-defined]
            raise ExecutionFailed(f"no committee action {action!r}", Code.NOT_FOUND)
        new = _new_record(ctx.state, args) or MAJORITY
        if action in GUARDED_ACTIONS and (new["participation"] < MAJORITY["participation"]
                                          or new["win"] < MAJORITY["win"]):
            raise ExecutionFailed(f"{action} decides who governs: its vote policy may not "
                                  "be below MAJORITY", Code.INVALID_PAYLOAD)
    with_change(ctx.state, policy_key(resource), _new_record(ctx.state, args),
                check_not_locked_out)


def _apply_set(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
               proposal_id: str) -> None:
    record = _new_record(ctx.state, args)
    if record is None:
        ctx.state.delete(policy_key(args["resource"]))
    else:
        ctx.state.put(policy_key(args["resource"]), record)
    ctx.emit(Event("policy.set", sender=ctx.sender,
                   details={"resource": args["resource"], "proposal": proposal_id,
                            "policy": record if record is not None else "default"}))


POLICY_SET = Action("policy.set", _parse_set, _check_set, _apply_set,
                    "set or reset the policy of a resource")


# --- lock-out -----------------------------------------------------------------------------

def with_change(state: StateAccess, changed: bytes, value: Any,
                check: Callable[[StateReader], None]) -> None:
    """Run ``check`` on state as it would be with ``changed`` set to ``value`` (None
    deletes), changing nothing."""
    class _Overlay:
        def get(self, key: bytes) -> Any | None:
            return value if key == changed else state.get(key)

    check(_Overlay())


def check_not_locked_out(state: StateReader) -> None:
    """Refuse a state in which the committee's active seats could no longer pass a
    proposal to change policies, seats or membership (each such action's vote policy must
    be reachable by the active seats voting for it)."""
    held = seats(state)
    total = sum(held.values())
    active = sum(w for a, w in held.items() if seat_is_active(state, a))
    if active <= 0:
        raise ExecutionFailed("this would leave no active committee seat: governance "
                              "would be locked out", Code.INVALID_PAYLOAD)
    for action in GUARDED_ACTIONS:
        need = vote_policy(state, action)["participation"]
        if active * 10000 < need * total:
            raise ExecutionFailed(
                f"this would leave the active seats ({active} of {total} weight) unable "
                f"to reach the participation {action} needs: governance would be locked "
                "out", Code.INVALID_PAYLOAD)
