# ruff: noqa: F821
# A contract template for Tally's VM (docs/contracts.md, docs/apps.md), not a Python module.
"""A permissioned security token in the spirit of ERC-3643 (T-REX).

The units are a custody asset of class "security" that this contract controls, so they
move only under its rules: identities (only verified accounts receive),
compliance (a maximum number of holders, countries whose investors may not hold),
pause, frozen wallets and partly frozen balances. Agents run the token day to day
(identities, issue, burn, freezes, forced transfers, recovery of lost wallets); the
owner appoints agents and sets the compliance rules. A new token starts paused.

Identities come from one of two sources, chosen at init:
  "token" (the default): the token's own registry, kept by its agents
      (register_identity, update_identity, remove_identity);
  "chain": the chain's real-name accounts and claims (protocol version 4): an account is
      verified while it is registered and active and holds a valid claim of the investor
      topic (default "qualified_investor") whose value is not 0 or ""; its country is the
      value of its country-topic claim (default "jurisdiction"). An account without a
      valid country claim is refused while any country is blocked.

A refused transfer fails with an ERC-1400 style reason code at the start of the message:
0x50 transfer failure, 0x52 insufficient balance, 0x54 transfers halted, 0x55 funds
locked, 0x56 invalid sender, 0x57 invalid receiver, 0x58 invalid operator. Other
refusals start with UNAUTHORISED, INVALID, NOT_FOUND or ALREADY_EXISTS.

Argument checks, custody units and operator approvals come from the standard library
(std.checks, std.token; docs/contracts.md).
"""

from std.checks import (
    MAX_AMOUNT,
    is_address,
    is_amount,
    is_country,
    is_identifier,
    require_address,
    require_amount,
    require_optional_address,
    verdict,
)
from std.token import (
    approve,
    balance_of,
    burn_units,
    caller_account,
    free_units,
    held,
    is_approved,
    issue_units,
    move_units,
    require_operator,
    require_owner,
    revoke,
)


def only_owner(c):
    require_owner(c)


def only_agent(c):
    who = caller_account()
    require(c.agent_flags.get(who, False), f"UNAUTHORISED: {who} is not an agent")
    return who


def chain_identity(c, account):
    # The account's identity from the chain's accounts and claims (identity source
    # "chain"), or the reason it is not verified (text).
    if not is_address(account):
        return f"{account} is not a verified investor"
    info = host_call("identity.account", account)
    if info is None:
        return f"{account} is not a registered account"
    if not info["active"]:
        return f"{account}'s account may not act (status {info['status']})"
    investor = host_call("identity.claim", account, c.investor_topic)
    if investor is None or investor == 0 or investor == "":
        return f"{account} holds no valid {c.investor_topic} claim"
    country = host_call("identity.claim", account, c.country_topic)
    if not is_country(country):
        country = ""
    return {
        "country": country,
        "investor_type": investor,
        "member": info["member"],
        "kyc": info["kyc"],
    }


def identity_of(c, account):
    # The account's identity if it is verified, else the reason it is not (text).
    if c.identity_source == "chain":
        return chain_identity(c, account)
    ident = c.identities.get(account, None)
    if ident is None:
        return f"{account} is not a verified investor"
    return ident


def require_verified(c, account):
    ident = identity_of(c, account)
    if isinstance(ident, str):
        raise ContractError(f"0x57 invalid receiver: {ident}")


def require_token_registry(c):
    require(
        c.identity_source != "chain",
        f"INVALID: {c.name}'s identities come from the chain's claims "
        f"({c.investor_topic}, {c.country_topic}), not from a registry of its own",
    )


def receive_problem(c, to, amount, new_holder_leaves):
    # Identity and compliance checks on the receiving side (ERC-3643 isVerified and
    # the compliance modules).
    ident = identity_of(c, to)
    if isinstance(ident, str):
        return f"0x57 invalid receiver: {ident}"
    country = ident["country"]
    if country == "" and c.blocked_countries:
        return (
            f"0x57 invalid receiver: {to} has no valid {c.country_topic} claim "
            f"and {c.asset} blocks investors of some countries"
        )
    if c.country_blocked.get(country, False):
        return f"0x57 invalid receiver: investors in {country} may not hold {c.asset}"
    full = c.max_holders and c.holders >= c.max_holders
    if full and not new_holder_leaves and balance_of(c, to) == 0:
        return f"0x50 transfer failure: {c.asset} already has the maximum of {c.max_holders} holders"
    return ""


def transfer_problem(c, holder, to, amount):
    if not is_amount(amount):
        return f"0x50 transfer failure: amount must be between 1 and {MAX_AMOUNT}"
    if c.paused:
        return "0x54 transfers halted: the token is paused"
    if holder == to:
        return "0x57 invalid receiver: sender and receiver are the same account"
    if c.wallet_frozen.get(holder, False):
        return f"0x56 invalid sender: wallet {holder} is frozen"
    if c.wallet_frozen.get(to, False):
        return f"0x57 invalid receiver: wallet {to} is frozen"
    h = held(c, holder)
    free = free_units(h)
    if amount > free:
        return f"0x52 insufficient balance: {holder} has {free} free units; {amount} requested"
    locked = c.partial_frozen.get(holder, 0)
    if amount > free - locked:
        return (
            f"0x55 funds locked: {locked} of {holder}'s units are frozen; "
            f"{free - locked} may move, {amount} requested"
        )
    return receive_problem(c, to, amount, h["q"] == amount)


def move(c, holder, to, amount):
    # Moves custody units and keeps the holder count.
    receiver_before = balance_of(c, to)
    sender_before = balance_of(c, holder)
    move_units(c, holder, to, amount)
    if receiver_before == 0:
        c.holders += 1
    if sender_before == amount:
        c.holders -= 1


def release_locked(c, account, amount):
    # Forced transfers and burns may take partly frozen units: unfreeze what they need.
    free = free_units(held(c, account))
    require(amount <= free, f"0x52 insufficient balance: {account} has {free} free units")
    locked = c.partial_frozen.get(account, 0)
    excess = amount - (free - locked)
    if excess > 0:
        set_partial(c, account, locked - excess)
        emit("PartialUnfrozen", {"account": account, "amount": excess, "forced": True})


def set_partial(c, account, amount):
    if amount:
        c.partial_frozen[account] = amount
    elif account in c.partial_frozen:
        del c.partial_frozen[account]


def check_identity_fields(country, investor_type):
    require(is_country(country), f"INVALID: {country!r} is not an ISO 3166-1 alpha-2 code")
    size = len(investor_type)
    require(0 < size <= 32, "INVALID: investor type is 1 to 32 characters")


class SecurityToken(Contract):
    """A security whose every transfer passes identity and compliance checks."""

    owner = Var(str)
    asset = Var(str)  # the custody asset this contract controls
    name = Var(str)
    issued = Var(bool)  # the custody asset exists (registered at the first issue)
    supply = Var(int)
    paused = Var(bool)
    agent_flags = Map(str, bool)
    agent_list = Var(list)
    identity_source = Var(str)  # "token" (the registry below) or "chain" (claims)
    investor_topic = Var(str)  # "chain": the claim topic that verifies an investor
    country_topic = Var(str)  # "chain": the claim topic whose value is the country
    identities = Map(str, dict)  # "token": account -> {"country", "investor_type", "since"}
    wallet_frozen = Map(str, bool)
    partial_frozen = Map(str, int)  # units of the account that may not move
    holders = Var(int)  # accounts holding units
    max_holders = Var(int)  # 0: no limit
    country_blocked = Map(str, bool)
    blocked_countries = Var(list)
    approvals = Map(str, bool)  # "<holder>/<operator contract>" -> True

    def init(
        self,
        asset: str,
        name: str,
        agents: list,
        owner: str = "",
        identity_source: str = "token",
        investor_topic: str = "qualified_investor",
        country_topic: str = "jurisdiction",
    ):
        require(asset != "" and name != "", "INVALID: asset and name are required")
        require_optional_address(owner, "owner")
        require(
            identity_source == "token" or identity_source == "chain",
            f"INVALID: the identity source is \"token\" or \"chain\", not {identity_source!r}",
        )
        for topic in [investor_topic, country_topic]:
            require(
                is_identifier(topic) and topic[0] not in "._:-",
                f"INVALID: {topic!r} is not a claim topic",
            )
        self.identity_source = identity_source
        self.investor_topic = investor_topic
        self.country_topic = country_topic
        self.owner = owner or caller_account()
        self.asset = asset
        self.name = name
        self.paused = True
        for agent in agents:
            require(is_address(agent), "INVALID: agents are addresses")
            if not self.agent_flags.get(agent, False):
                self.agent_flags[agent] = True
                self.agent_list = self.agent_list + [agent]
        emit(
            "Initialised",
            {"asset": asset, "name": name, "owner": self.owner, "agents": self.agent_list},
        )

    # --- the owner ------------------------------------------------------------------------

    def add_agent(self, account: str):
        only_owner(self)
        require_address(account, account)
        require(not self.agent_flags.get(account, False), f"ALREADY_EXISTS: {account} is an agent")
        self.agent_flags[account] = True
        self.agent_list = self.agent_list + [account]
        emit("AgentAdded", {"account": account})

    def remove_agent(self, account: str):
        only_owner(self)
        require(self.agent_flags.get(account, False), f"NOT_FOUND: {account} is not an agent")
        del self.agent_flags[account]
        agents = self.agent_list
        agents.remove(account)
        self.agent_list = agents
        emit("AgentRemoved", {"account": account})

    def set_max_holders(self, limit: int):
        only_owner(self)
        require(limit >= 0, "INVALID: the limit is >= 0 (0 means no limit)")
        self.max_holders = limit
        emit("ComplianceChanged", {"max_holders": limit})

    def block_country(self, country: str):
        only_owner(self)
        require(is_country(country), f"INVALID: {country!r} is not an ISO 3166-1 alpha-2 code")
        require(not self.country_blocked.get(country, False), f"ALREADY_EXISTS: {country} is blocked")
        self.country_blocked[country] = True
        self.blocked_countries = self.blocked_countries + [country]
        emit("ComplianceChanged", {"blocked": country})

    def unblock_country(self, country: str):
        only_owner(self)
        require(self.country_blocked.get(country, False), f"NOT_FOUND: {country} is not blocked")
        del self.country_blocked[country]
        countries = self.blocked_countries
        countries.remove(country)
        self.blocked_countries = countries
        emit("ComplianceChanged", {"unblocked": country})

    # --- agents: identities -----------------------------------------------------------

    def register_identity(self, account: str, country: str, investor_type: str):
        agent = only_agent(self)
        require_token_registry(self)
        require_address(account, account)
        check_identity_fields(country, investor_type)
        require(account not in self.identities, f"ALREADY_EXISTS: {account} is registered")
        self.identities[account] = {
            "country": country,
            "investor_type": investor_type,
            "since": ctx.height,
        }
        emit(
            "IdentityRegistered",
            {"account": account, "country": country, "investor_type": investor_type, "by": agent},
        )

    def update_identity(self, account: str, country: str, investor_type: str):
        agent = only_agent(self)
        require_token_registry(self)
        check_identity_fields(country, investor_type)
        ident = self.identities.get(account, None)
        require(ident is not None, f"NOT_FOUND: {account} is not registered")
        ident["country"] = country
        ident["investor_type"] = investor_type
        self.identities[account] = ident
        emit(
            "IdentityUpdated",
            {"account": account, "country": country, "investor_type": investor_type, "by": agent},
        )

    def remove_identity(self, account: str):
        agent = only_agent(self)
        require_token_registry(self)
        require(account in self.identities, f"NOT_FOUND: {account} is not registered")
        del self.identities[account]
        emit("IdentityRemoved", {"account": account, "by": agent})

    # --- agents: supply and the market ------------------------------------------------

    def pause(self):
        agent = only_agent(self)
        require(not self.paused, "INVALID: the token is already paused")
        self.paused = True
        emit("Paused", {"by": agent})

    def unpause(self):
        agent = only_agent(self)
        require(self.paused, "INVALID: the token is not paused")
        self.paused = False
        emit("Unpaused", {"by": agent})

    def issue(self, to: str, amount: int):
        agent = only_agent(self)
        require_amount(amount)
        problem = receive_problem(self, to, amount, False)
        require(problem == "", problem)
        if balance_of(self, to) == 0:
            self.holders += 1
        issue_units(self, "security", to, amount)
        emit("Issued", {"to": to, "amount": amount, "by": agent})

    def burn(self, account: str, amount: int):
        agent = only_agent(self)
        require_amount(amount)
        release_locked(self, account, amount)
        before = balance_of(self, account)
        burn_units(self, account, amount)
        if before == amount:
            self.holders -= 1
        emit("Burned", {"account": account, "amount": amount, "by": agent})

    # --- agents: freezes, forced transfers, recovery ----------------------------------

    def freeze_wallet(self, account: str, reason: str = ""):
        agent = only_agent(self)
        require(not self.wallet_frozen.get(account, False), f"INVALID: {account} is already frozen")
        self.wallet_frozen[account] = True
        emit("WalletFrozen", {"account": account, "reason": reason, "by": agent})

    def unfreeze_wallet(self, account: str):
        agent = only_agent(self)
        require(self.wallet_frozen.get(account, False), f"INVALID: {account} is not frozen")
        del self.wallet_frozen[account]
        emit("WalletUnfrozen", {"account": account, "by": agent})

    def freeze_partial(self, account: str, amount: int):
        agent = only_agent(self)
        require_amount(amount)
        balance = balance_of(self, account)
        locked = self.partial_frozen.get(account, 0)
        require(
            locked + amount <= balance,
            f"INVALID: {account} holds {balance}, {locked} frozen; cannot freeze {amount} more",
        )
        set_partial(self, account, locked + amount)
        emit("PartialFrozen", {"account": account, "amount": amount, "by": agent})

    def unfreeze_partial(self, account: str, amount: int):
        agent = only_agent(self)
        require_amount(amount)
        locked = self.partial_frozen.get(account, 0)
        require(amount <= locked, f"INVALID: only {locked} of {account}'s units are frozen")
        set_partial(self, account, locked - amount)
        emit("PartialUnfrozen", {"account": account, "amount": amount, "by": agent})

    def forced_transfer(self, holder: str, to: str, amount: int):
        agent = only_agent(self)
        require_amount(amount)
        require(holder != to, "0x57 invalid receiver: sender and receiver are the same account")
        require_verified(self, to)
        release_locked(self, holder, amount)
        move(self, holder, to, amount)
        emit("ForcedTransfer", {"from": holder, "to": to, "amount": amount, "by": agent})

    def recover(self, lost_account: str, new_account: str):
        agent = only_agent(self)
        require(lost_account != new_account, "INVALID: the new account is the lost one")
        require_verified(self, new_account)
        amount = free_units(held(self, lost_account))
        locked = self.partial_frozen.get(lost_account, 0)
        moved_lock = min(locked, amount)
        if amount > 0:
            move(self, lost_account, new_account, amount)
        if moved_lock:
            set_partial(self, lost_account, locked - moved_lock)
            set_partial(self, new_account, self.partial_frozen.get(new_account, 0) + moved_lock)
        was_frozen = self.wallet_frozen.get(lost_account, False)
        if was_frozen:
            self.wallet_frozen[new_account] = True
        # The lost key may be in someone else's hands: it receives nothing from now on,
        # and anything left behind (pledged or frozen in custody) stays put.
        self.wallet_frozen[lost_account] = True
        if lost_account in self.identities:
            del self.identities[lost_account]
        emit(
            "Recovered",
            {
                "lost": lost_account,
                "new": new_account,
                "amount": amount,
                "frozen_amount": moved_lock,
                "wallet_frozen": was_frozen,
                "by": agent,
            },
        )

    # --- holders --------------------------------------------------------------------------

    def transfer(self, to: str, amount: int) -> bool:
        holder = caller_account()
        problem = transfer_problem(self, holder, to, amount)
        require(problem == "", problem)
        move(self, holder, to, amount)
        emit("Transfer", {"from": holder, "to": to, "amount": amount})
        return True

    def approve(self, operator: str):
        approve(self, operator)

    def revoke(self, operator: str):
        revoke(self, operator, "NOT_FOUND")

    # --- operator contracts (delivery versus payment) ---------------------------------

    def transfer_from(self, holder: str, to: str, amount: int) -> bool:
        operator = require_operator(self, holder, "0x58 invalid operator")
        problem = transfer_problem(self, holder, to, amount)
        require(problem == "", problem)
        move(self, holder, to, amount)
        emit("Transfer", {"from": holder, "to": to, "amount": amount, "operator": operator})
        return True

    # --- views ----------------------------------------------------------------------------

    @view
    def info(self) -> dict:
        return {
            "asset": self.asset,
            "name": self.name,
            "owner": self.owner,
            "supply": self.supply,
            "paused": self.paused,
            "holders": self.holders,
        }

    @view
    def agents(self) -> list:
        return self.agent_list

    @view
    def is_agent(self, account: str) -> bool:
        return self.agent_flags.get(account, False)

    @view
    def identity(self, account: str) -> dict | None:
        ident = identity_of(self, account)
        if isinstance(ident, str):
            return None
        return ident

    @view
    def is_verified(self, account: str) -> bool:
        return not isinstance(identity_of(self, account), str)

    @view
    def identity_settings(self) -> dict:
        return {
            "source": self.identity_source or "token",  # "": upgraded from before sources
            "investor_topic": self.investor_topic,
            "country_topic": self.country_topic,
        }

    @view
    def compliance(self) -> dict:
        return {"max_holders": self.max_holders, "blocked_countries": self.blocked_countries}

    @view
    def balance_of(self, account: str) -> int:
        return balance_of(self, account)

    @view
    def free_balance(self, account: str) -> int:
        return max(0, free_units(held(self, account)) - self.partial_frozen.get(account, 0))

    @view
    def is_frozen(self, account: str) -> bool:
        return self.wallet_frozen.get(account, False)

    @view
    def frozen_amount(self, account: str) -> int:
        return self.partial_frozen.get(account, 0)

    @view
    def holder_count(self) -> int:
        return self.holders

    @view
    def is_approved(self, holder: str, operator: str) -> bool:
        return is_approved(self, holder, operator)

    @view
    def can_transfer(self, holder: str, to: str, amount: int) -> dict:
        return verdict(transfer_problem(self, holder, to, amount), "0x51")
