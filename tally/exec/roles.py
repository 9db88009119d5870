"""The role table: who may issue assets, freeze holdings, or administer roles.

A minimal, explicit permission model: an account holds zero or more named roles, set in
genesis and changed only by an ``admin``. Identity and committee governance build on it.
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.module import Module
from tally.exec.operation import Operation
from tally.exec.state import BlockState, StateAccess
from tally.genesis import ROLES, Genesis

#: The governance committee: the sorted addresses of every ``admin`` (tally.exec.governance).
COMMITTEE_KEY = b"committee"


def role_key(account: str) -> bytes:
    return b"role/" + account.encode()


def roles_of(state: StateAccess, account: str) -> list[str]:
    return state.get(role_key(account)) or []


def has_role(state: BlockState, account: str, *roles: str) -> bool:
    held = roles_of(state, account)
    return any(role in held for role in roles)


def require_role(ctx: TxContext, *roles: str) -> None:
    """Versions 1-3: the sender must hold one of ``roles``. From version 4 the chain's
    policies decide who may send each kind of transaction (tally.exec.policy), and this
    check gives way to them once they allowed it (their defaults ask for the same roles)."""
    if ctx.authorized:
        return
    if not has_role(ctx.state, ctx.sender, *roles):
        raise ExecutionFailed(
            f"account {ctx.sender} needs the role {' or '.join(roles)} for this", Code.UNAUTHORISED
        )


def _parse(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"account": p.address, "role": p.one_of(*ROLES)})


def _grant(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    held = roles_of(ctx.state, args["account"])
    if args["role"] in held:
        raise ExecutionFailed(f"{args['account']} already holds {args['role']}", Code.ALREADY_EXISTS)
    ctx.state.put(role_key(args["account"]), sorted([*held, args["role"]]))
    if args["role"] == "admin":
        members = ctx.state.get(COMMITTEE_KEY) or []
        ctx.state.put(COMMITTEE_KEY, sorted([*members, args["account"]]))
    ctx.emit(Event("role.grant", to=args["account"], details={"role": args["role"]}))


def _revoke(ctx: TxContext, args: dict[str, Any]) -> None:
    require_role(ctx, "admin")
    held = roles_of(ctx.state, args["account"])
    if args["role"] not in held:
        raise ExecutionFailed(f"{args['account']} does not hold {args['role']}", Code.NOT_FOUND)
    if args["role"] == "admin":
        members = [m for m in ctx.state.get(COMMITTEE_KEY) or [] if m != args["account"]]
        if not members:
            raise ExecutionFailed("the last admin cannot be removed", Code.INVALID_PAYLOAD)
        ctx.state.put(COMMITTEE_KEY, members)
    remaining = [role for role in held if role != args["role"]]
    if remaining:
        ctx.state.put(role_key(args["account"]), remaining)
    else:
        ctx.state.delete(role_key(args["account"]))
    ctx.emit(Event("role.revoke", sender=args["account"], details={"role": args["role"]}))


def _genesis(genesis: Genesis) -> dict[bytes, Any]:
    """The role table of genesis, and the committee it makes (every ``admin``)."""
    writes: dict[bytes, Any] = {
        role_key(account): sorted(held) for account, held in genesis.roles.items()}
    writes[COMMITTEE_KEY] = sorted(
        account for account, held in genesis.roles.items() if "admin" in held)
    return writes


def _genesis_v4(genesis: Genesis) -> dict[bytes, Any]:
    """Version 4: the role table of genesis; the committee is seats (tally.exec.committee)."""
    return {role_key(account): sorted(held) for account, held in genesis.roles.items()}


#: Version 4: roles change only by committee proposal (``role.grant`` and ``role.revoke``
#: are committee actions of tally.exec.identity), so this module only writes genesis.
MODULE_V4 = Module("roles", genesis=_genesis_v4)

MODULE = Module(
    "roles",
    operations=(
        Operation("role.grant", _parse, _grant, "an admin gives an account a role"),
        Operation("role.revoke", _parse, _revoke, "an admin takes a role away"),
    ),
    genesis=_genesis,
)
