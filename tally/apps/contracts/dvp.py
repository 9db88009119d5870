# ruff: noqa: F821
# A contract template for Tally's VM (docs/contracts.md, docs/apps.md), not a Python module.
"""Delivery versus payment: a security leg and a cash leg settle together or not at all.

The seller initiates a trade (it must have approved this contract as an operator on the
security contract); the buyer takes it (it must have approved this contract as an
operator on the cash contract). Taking runs both legs in one call: the security moves
from seller to buyer and the cash from buyer to seller through the token contracts'
transfer_from, each applying its own rules. If either leg is refused, the whole call
fails and nothing moves. Either party may cancel an open trade.

Refusals start with UNAUTHORISED, INVALID, NOT_FOUND, ALREADY_EXISTS, NOT_OPEN,
NOT_APPROVED or LEG_FAILED (a leg was refused: the message carries the token
contract's own code and message).

Argument checks and the caller's account come from the standard library (std.checks,
std.token; docs/contracts.md).
"""

from std.checks import is_amount, is_identifier, require_address
from std.token import caller_account


def open_trade(c, trade_id):
    t = c.trades.get(trade_id, None)
    require(t is not None, f"NOT_FOUND: no trade {trade_id}")
    require(t["status"] == "open", f"NOT_OPEN: trade {trade_id} is {t['status']}")
    return t


def leg(name, contract, holder, to, amount):
    ok, result = try_call(contract, "transfer_from", holder, to, amount)
    if not ok:
        raise ContractError(
            f"LEG_FAILED: {name} leg ({contract}.transfer_from): "
            f"{result['code']}: {result['message']}"
        )


class DvP(Contract):
    """Atomic exchange of security units for cash between two accounts."""

    trades = Map(str, dict)
    count = Var(int)  # trades ever initiated

    def initiate(
        self,
        trade_id: str,
        security_contract: str,
        security_amount: int,
        buyer: str,
        cash_contract: str,
        cash_amount: int,
    ):
        seller = caller_account()
        require(
            is_identifier(trade_id, 64),
            "INVALID: a trade id is 1 to 64 letters, digits and . _ : -",
        )
        require(trade_id not in self.trades, f"ALREADY_EXISTS: trade {trade_id} exists")
        require(
            is_amount(security_amount) and is_amount(cash_amount),
            "INVALID: amounts must be positive",
        )
        require_address(buyer, f"buyer {buyer}")
        require(buyer != seller, "INVALID: the buyer is the seller")
        require(
            security_contract != cash_contract,
            "INVALID: the security and cash contracts must differ",
        )
        require(
            view_call(security_contract, "is_approved", seller, ctx.contract),
            f"NOT_APPROVED: the seller has not approved {ctx.contract} as an operator "
            f"on {security_contract}",
        )
        trade = {
            "seller": seller,
            "buyer": buyer,
            "security_contract": security_contract,
            "security_amount": security_amount,
            "cash_contract": cash_contract,
            "cash_amount": cash_amount,
            "status": "open",
            "initiated_at": ctx.height,
            "initiated_ms": ctx.time_ms,
        }
        self.trades[trade_id] = trade
        self.count += 1
        emit("TradeInitiated", {"trade_id": trade_id, **trade})

    def take(self, trade_id: str):
        t = open_trade(self, trade_id)
        buyer = caller_account()
        require(buyer == t["buyer"], f"UNAUTHORISED: only the buyer may take trade {trade_id}")
        # Delivery, then payment: a refusal in either reverts both (and this call).
        leg("delivery", t["security_contract"], t["seller"], buyer, t["security_amount"])
        leg("payment", t["cash_contract"], buyer, t["seller"], t["cash_amount"])
        t["status"] = "settled"
        t["settled_at"] = ctx.height
        self.trades[trade_id] = t
        emit(
            "TradeSettled",
            {
                "trade_id": trade_id,
                "seller": t["seller"],
                "buyer": buyer,
                "security_contract": t["security_contract"],
                "security_amount": t["security_amount"],
                "cash_contract": t["cash_contract"],
                "cash_amount": t["cash_amount"],
            },
        )

    def cancel(self, trade_id: str):
        t = open_trade(self, trade_id)
        who = caller_account()
        require(
            who == t["seller"] or who == t["buyer"],
            f"UNAUTHORISED: only the seller or the buyer may cancel trade {trade_id}",
        )
        t["status"] = "cancelled"
        t["cancelled_at"] = ctx.height
        t["cancelled_by"] = who
        self.trades[trade_id] = t
        emit("TradeCancelled", {"trade_id": trade_id, "by": who})

    @view
    def trade(self, trade_id: str) -> dict | None:
        return self.trades.get(trade_id, None)

    @view
    def trade_count(self) -> int:
        return self.count

    @view
    def check(self, trade_id: str) -> dict:
        """Would take() succeed now? Each leg's can_transfer and both approvals."""
        t = self.trades.get(trade_id, None)
        require(t is not None, f"NOT_FOUND: no trade {trade_id}")
        delivery = view_call(
            t["security_contract"], "can_transfer", t["seller"], t["buyer"], t["security_amount"]
        )
        payment = view_call(
            t["cash_contract"], "can_transfer", t["buyer"], t["seller"], t["cash_amount"]
        )
        seller_approved = view_call(
            t["security_contract"], "is_approved", t["seller"], ctx.contract
        )
        buyer_approved = view_call(t["cash_contract"], "is_approved", t["buyer"], ctx.contract)
        return {
            "status": t["status"],
            "ok": t["status"] == "open"
            and delivery["ok"]
            and payment["ok"]
            and seller_approved
            and buyer_approved,
            "delivery": delivery,
            "payment": payment,
            "seller_approved": seller_approved,
            "buyer_approved": buyer_approved,
        }
