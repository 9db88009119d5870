# ruff: noqa: F821
# A standard-library module of Tally's contract language (docs/contracts.md), not Python to import.
"""std.token: a contract whose units live in tier-1 custody, with operator approvals.

Decision 0901: the contract registers a custody asset at its first issue and controls
it; balances are custody holdings; units move only through the contract. The functions
take the contract instance (self) and use the fields it declares:

    owner = Var(str)               require_owner
    asset = Var(str)               the custody asset (every units function)
    name = Var(str)                the asset's name, for its registration
    issued = Var(bool)             the asset exists (issue_units sets it)
    supply = Var(int)              units in circulation (issue_units, burn_units)
    approvals = Map(str, bool)     "<holder>/<operator contract>" -> True (operators)
"""


def caller_account():
    """Who is acting: a signer as itself; a contract calling in as its custody account."""
    if ctx.caller == ctx.origin:
        return ctx.caller
    return host_call("custody.address_of", ctx.caller)


def require_owner(c, message="UNAUTHORISED: only the owner may do this"):
    """Refuse unless the caller's account is the contract's owner."""
    require(caller_account() == c.owner, message)


# --- units in custody -------------------------------------------------------------------


def held(c, account):
    """The account's custody holding of the asset: {"q": held, "p": pledged, "f": frozen}."""
    return host_call("custody.holding", c.asset, account)


def free_units(h):
    """Units of a holding that may move: held less pledged and frozen."""
    return h["q"] - h["p"] - h["f"]


def balance_of(c, account):
    """Units the account holds."""
    return held(c, account)["q"]


def issue_units(c, asset_class, to, amount):
    """New units to `to`: the first issue registers the asset (class `asset_class`,
    named c.name) with this contract as its controller, later ones mint."""
    if c.issued:
        host_call("custody.mint", c.asset, to, amount)
    else:
        host_call("custody.issue", c.asset, asset_class, c.name, amount, to)
        c.issued = True
    c.supply += amount


def burn_units(c, holder, amount):
    """Destroy free units of the holder."""
    host_call("custody.burn", c.asset, holder, amount)
    c.supply -= amount


def move_units(c, holder, to, amount):
    """Move free units: a custody.transfer event naming this contract."""
    host_call("custody.transfer_from", c.asset, holder, to, amount)


# --- operators ----------------------------------------------------------------------------


def approve(c, operator):
    """The caller lets contract `operator` move its units (transfer_from)."""
    holder = caller_account()
    require(operator != "", "INVALID: operator is required")
    c.approvals[f"{holder}/{operator}"] = True
    emit("Approval", {"holder": holder, "operator": operator})


def revoke(c, operator, code="NOT_FOUND"):
    """The caller withdraws an approval; "<code>: ..." if there is none."""
    holder = caller_account()
    key = f"{holder}/{operator}"
    require(key in c.approvals, f"{code}: {operator} is not an operator of {holder}")
    del c.approvals[key]
    emit("ApprovalRevoked", {"holder": holder, "operator": operator})


def is_approved(c, holder, operator):
    return c.approvals.get(f"{holder}/{operator}", False)


def require_operator(c, holder, code="NOT_APPROVED"):
    """The calling contract, refused with "<code>: ..." unless `holder` approved it."""
    operator = ctx.caller
    require(is_approved(c, holder, operator), f"{code}: {operator} is not an operator of {holder}")
    return operator
