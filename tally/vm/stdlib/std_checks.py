# ruff: noqa: F821
# A standard-library module of Tally's contract language (docs/contracts.md), not Python to import.
"""std.checks: argument checks that contracts repeat.

Parties are account addresses (40 lower-case hex digits); amounts are integers from 1
to MAX_AMOUNT (custody quantities are 64-bit). Refusals are ContractErrors whose
message starts with a stable code, by default INVALID.
"""

HEX = "0123456789abcdef"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Letters, digits and . _ : - (identifiers such as a trade id).
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
MAX_AMOUNT = 2**63 - 1


def is_address(value):
    """An account address: a str of 40 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 40 and value.strip(HEX) == ""


def is_amount(value):
    """An int from 1 to MAX_AMOUNT (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_AMOUNT


def is_country(value):
    """An ISO 3166-1 alpha-2 code, e.g. "CN", "SG", "US"."""
    return isinstance(value, str) and len(value) == 2 and value.strip(UPPER) == ""


def is_identifier(value, max_length=64):
    """1 to max_length letters, digits and . _ : -"""
    if not isinstance(value, str):
        return False
    size = len(value)
    return 0 < size <= max_length and value.strip(ID_CHARS) == ""


def require_address(value, what):
    """Refuse with "INVALID: <what> is not an address" unless value is an address."""
    require(is_address(value), f"INVALID: {what} is not an address")


def require_optional_address(value, what):
    """Like require_address, but "" (none) passes too."""
    require(value == "" or is_address(value), f"INVALID: {what} is not an address")


def require_amount(amount, code="INVALID"):
    """Refuse with "<code>: amount must be between 1 and MAX_AMOUNT" unless an amount."""
    require(is_amount(amount), f"{code}: amount must be between 1 and {MAX_AMOUNT}")


def problem_code(problem):
    """The stable code a refusal message starts with: "NO_WALLET: ..." -> "NO_WALLET",
    "0x52 insufficient balance: ..." -> "0x52"."""
    return problem.split(" ", 1)[0].removesuffix(":")


def verdict(problem, ok_code="OK"):
    """What a can_transfer-style view answers for a check that returned a refusal
    message, or "" when the action would pass: {ok, code, reason}."""
    if problem == "":
        return {"ok": True, "code": ok_code, "reason": "transfer succeeds"}
    return {"ok": False, "code": problem_code(problem), "reason": problem}
