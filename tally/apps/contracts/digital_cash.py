# ruff: noqa: F821
# A contract template for Tally's VM (docs/contracts.md, docs/apps.md), not a Python module.
"""Digital cash in the spirit of the e-CNY.

The central bank (the owner) issues a currency as a custody asset of class "cash" that
this contract controls: holders cannot move it with plain custody transactions, only
through this contract, which enforces wallets. A wallet is bound to an account and has
a level; each level caps the balance, each transfer and the day's outgoing payments
(0 means no limit). Amounts are integer minor units (fen: 100 to the yuan).

Refusals are ContractErrors whose message starts with a stable code:
UNAUTHORISED, INVALID, NO_WALLET, ALREADY_EXISTS, WALLET_FROZEN, NOT_FROZEN,
LIMIT_EXCEEDED, BALANCE_CAP, INSUFFICIENT_FUNDS, NOT_APPROVED.

Argument checks, custody units and operator approvals come from the standard library
(std.checks, std.token; docs/contracts.md).
"""

from std.checks import (
    MAX_AMOUNT,
    is_amount,
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

DAY_MS = 86_400_000
# Days start at midnight China Standard Time (UTC+8) for the daily limits.
DAY_OFFSET_MS = 8 * 3_600_000


def today():
    return (ctx.time_ms + DAY_OFFSET_MS) // DAY_MS


def spent_today(w):
    if w["day"] == today():
        return w["spent"]
    return 0


def receive_problem(c, to, amount):
    w = c.wallets.get(to, None)
    if w is None:
        return f"NO_WALLET: {to} has no wallet"
    if w["frozen"]:
        return f"WALLET_FROZEN: wallet {to} is frozen"
    cap = c.levels[w["level"]]["balance_cap"]
    if cap:
        balance = balance_of(c, to)
        if balance + amount > cap:
            return (
                f"BALANCE_CAP: wallet {to} (level {w['level']}) may hold at most {cap}; "
                f"it holds {balance} and would receive {amount}"
            )
    return ""


def transfer_problem(c, holder, to, amount):
    if not is_amount(amount):
        return f"INVALID: amount must be between 1 and {MAX_AMOUNT}"
    if holder == to:
        return "INVALID: sender and receiver are the same wallet"
    w = c.wallets.get(holder, None)
    if w is None:
        return f"NO_WALLET: {holder} has no wallet"
    if w["frozen"]:
        return f"WALLET_FROZEN: wallet {holder} is frozen"
    limits = c.levels[w["level"]]
    if limits["per_transfer"] and amount > limits["per_transfer"]:
        return (
            f"LIMIT_EXCEEDED: a level {w['level']} wallet pays at most "
            f"{limits['per_transfer']} per transfer; {amount} requested"
        )
    spent = spent_today(w)
    if limits["daily"] and spent + amount > limits["daily"]:
        return (
            f"LIMIT_EXCEEDED: a level {w['level']} wallet pays at most {limits['daily']} a day; "
            f"{spent} paid today, {amount} requested"
        )
    free = free_units(held(c, holder))
    if free < amount:
        return f"INSUFFICIENT_FUNDS: {holder} has {free}; {amount} requested"
    return receive_problem(c, to, amount)


def move(c, holder, to, amount, operator):
    problem = transfer_problem(c, holder, to, amount)
    require(problem == "", problem)
    move_units(c, holder, to, amount)
    w = c.wallets[holder]
    w["spent"] = spent_today(w) + amount
    w["day"] = today()
    c.wallets[holder] = w
    event = {"from": holder, "to": to, "amount": amount}
    if operator:
        event["operator"] = operator
    emit("Transfer", event)


class DigitalCash(Contract):
    """A central bank's digital cash: tiered wallets, freezes, operator approvals."""

    owner = Var(str)  # the central bank
    regulator = Var(str)  # may freeze and unfreeze wallets ("" for none)
    asset = Var(str)  # the custody asset this contract controls
    name = Var(str)
    issued = Var(bool)  # the custody asset exists (registered at the first issue)
    supply = Var(int)
    levels = Map(int, dict)  # level -> {"balance_cap", "per_transfer", "daily"}; 0 = no limit
    wallets = Map(str, dict)  # account -> {"level", "frozen", "reason", "opened", "day", "spent"}
    approvals = Map(str, bool)  # "<holder>/<operator contract>" -> True

    def init(self, currency_asset: str, name: str, regulator: str = "", owner: str = ""):
        require(currency_asset != "" and name != "", "INVALID: asset and name are required")
        require_optional_address(regulator, "regulator")
        require_optional_address(owner, "owner")
        self.owner = owner or caller_account()
        self.regulator = regulator
        self.asset = currency_asset
        self.name = name
        # Wallet levels after the e-CNY pilot's published tiers, in fen: level 1 (strong
        # identity, bank account linked) unlimited ... level 4 (anonymous, phone number
        # only) small. The bank changes them with set_level.
        self.levels[1] = {"balance_cap": 0, "per_transfer": 0, "daily": 0}
        self.levels[2] = {"balance_cap": 50_000_000, "per_transfer": 5_000_000, "daily": 10_000_000}
        self.levels[3] = {"balance_cap": 2_000_000, "per_transfer": 500_000, "daily": 500_000}
        self.levels[4] = {"balance_cap": 1_000_000, "per_transfer": 200_000, "daily": 500_000}
        emit(
            "Initialised",
            {"asset": currency_asset, "name": name, "owner": self.owner, "regulator": regulator},
        )

    # --- the central bank -------------------------------------------------------------

    def set_level(self, level: int, balance_cap: int, per_transfer: int, daily: int):
        only_bank(self)
        require(1 <= level <= 9, "INVALID: levels are 1 to 9")
        require(
            balance_cap >= 0 and per_transfer >= 0 and daily >= 0,
            "INVALID: limits are >= 0 (0 means no limit)",
        )
        limits = {"balance_cap": balance_cap, "per_transfer": per_transfer, "daily": daily}
        self.levels[level] = limits
        emit("LevelSet", {"level": level, "limits": limits})

    def set_regulator(self, account: str):
        only_bank(self)
        require_optional_address(account, "regulator")
        self.regulator = account
        emit("RegulatorSet", {"regulator": account})

    def open_wallet(self, account: str, level: int):
        only_bank(self)
        require_address(account, account)
        require(account not in self.wallets, f"ALREADY_EXISTS: {account} already has a wallet")
        require(level in self.levels, f"INVALID: no wallet level {level}")
        self.wallets[account] = {
            "level": level,
            "frozen": False,
            "reason": "",
            "opened": ctx.height,
            "day": 0,
            "spent": 0,
        }
        emit("WalletOpened", {"account": account, "level": level})

    def set_wallet_level(self, account: str, level: int):
        only_bank(self)
        w = open_wallet_of(self, account)
        require(level in self.levels, f"INVALID: no wallet level {level}")
        w["level"] = level
        self.wallets[account] = w
        emit("WalletLevelSet", {"account": account, "level": level})

    def issue(self, to: str, amount: int):
        only_bank(self)
        require_amount(amount)
        problem = receive_problem(self, to, amount)
        require(problem == "", problem)
        issue_units(self, "cash", to, amount)
        emit("Issued", {"to": to, "amount": amount})

    # --- the bank or the regulator ----------------------------------------------------

    def freeze_wallet(self, account: str, reason: str):
        who = caller_account()
        require(
            who == self.owner or (self.regulator != "" and who == self.regulator),
            "UNAUTHORISED: only the central bank or the regulator freezes wallets",
        )
        w = open_wallet_of(self, account)
        require(not w["frozen"], f"WALLET_FROZEN: wallet {account} is already frozen")
        w["frozen"] = True
        w["reason"] = reason
        self.wallets[account] = w
        emit("WalletFrozen", {"account": account, "reason": reason, "by": who})

    def unfreeze_wallet(self, account: str):
        who = caller_account()
        require(
            who == self.owner or (self.regulator != "" and who == self.regulator),
            "UNAUTHORISED: only the central bank or the regulator unfreezes wallets",
        )
        w = open_wallet_of(self, account)
        require(w["frozen"], f"NOT_FROZEN: wallet {account} is not frozen")
        w["frozen"] = False
        w["reason"] = ""
        self.wallets[account] = w
        emit("WalletUnfrozen", {"account": account, "by": who})

    # --- holders --------------------------------------------------------------------------

    def transfer(self, to: str, amount: int) -> bool:
        move(self, caller_account(), to, amount, "")
        return True

    def redeem(self, amount: int):
        holder = caller_account()
        require_amount(amount)
        w = open_wallet_of(self, holder)
        require(not w["frozen"], f"WALLET_FROZEN: wallet {holder} is frozen")
        free = free_units(held(self, holder))
        require(free >= amount, f"INSUFFICIENT_FUNDS: {holder} has {free}; {amount} requested")
        burn_units(self, holder, amount)
        emit("Redeemed", {"holder": holder, "amount": amount})

    def approve(self, operator: str):
        approve(self, operator)

    def revoke(self, operator: str):
        revoke(self, operator, "NOT_APPROVED")

    # --- operator contracts (delivery versus payment) ---------------------------------

    def transfer_from(self, holder: str, to: str, amount: int) -> bool:
        operator = require_operator(self, holder, "NOT_APPROVED")
        move(self, holder, to, amount, operator)
        return True

    # --- views ----------------------------------------------------------------------------

    @view
    def info(self) -> dict:
        return {
            "asset": self.asset,
            "name": self.name,
            "owner": self.owner,
            "regulator": self.regulator,
            "supply": self.supply,
        }

    @view
    def balance_of(self, account: str) -> int:
        return balance_of(self, account)

    @view
    def wallet(self, account: str) -> dict | None:
        w = self.wallets.get(account, None)
        if w is None:
            return None
        return {
            "level": w["level"],
            "frozen": w["frozen"],
            "reason": w["reason"],
            "opened": w["opened"],
            "spent_today": spent_today(w),
            "balance": balance_of(self, account),
            "limits": self.levels[w["level"]],
        }

    @view
    def level(self, level: int) -> dict | None:
        return self.levels.get(level, None)

    @view
    def is_approved(self, holder: str, operator: str) -> bool:
        return is_approved(self, holder, operator)

    @view
    def can_transfer(self, holder: str, to: str, amount: int) -> dict:
        return verdict(transfer_problem(self, holder, to, amount), "OK")


def only_bank(c):
    require_owner(c, "UNAUTHORISED: only the central bank may do this")


def open_wallet_of(c, account):
    w = c.wallets.get(account, None)
    require(w is not None, f"NO_WALLET: {account} has no wallet")
    return w
