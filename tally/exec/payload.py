"""Checks on transaction payload fields, shared by the system modules.

Payloads come from untrusted clients; each field is checked for type and range before
any state is read, and a bad field is named in the error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tally.errors import Code, ExecutionFailed

MAX_QUANTITY = 2**63 - 1
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_ADDRESS_RE = re.compile(r"^[0-9a-f]{40}$")

Check = Callable[[str, Any], Any]


def invalid(message: str) -> ExecutionFailed:
    return ExecutionFailed(message, Code.INVALID_PAYLOAD)


def identifier(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise invalid(f"{name} must be 1-64 characters of letters, digits and . _ : -")
    return value


def address(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.match(value):
        raise invalid(f"{name} must be an account address: 40 lowercase hex digits")
    return value


def quantity(name: str, value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_QUANTITY:
        raise invalid(f"{name} must be a whole number of units between 1 and {MAX_QUANTITY}")
    return value


def digest(name: str, value: Any) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise invalid(f"{name} must be a 32-byte hash")
    return value


def text(limit: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise invalid(f"{name} must be text of at most {limit} characters")
        return value

    return check


def whole(low: int, high: int) -> Check:
    """A whole number from ``low`` to ``high`` (a bool is not a number here)."""
    def check(name: str, value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise invalid(f"{name} must be a whole number from {low} to {high}")
        return value

    return check


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise invalid(f"{name} must be one of: {', '.join(choices)}")
        return value

    return check


def parse(
    payload: dict[str, Any],
    required: dict[str, Check],
    optional: dict[str, Check] | None = None,
) -> dict[str, Any]:
    """Check ``payload`` against the field checks; unknown fields are refused."""
    optional = optional or {}
    unknown = set(payload) - set(required) - set(optional)
    if unknown:
        raise invalid(f"unknown payload field(s): {', '.join(sorted(map(str, unknown)))}")
    result: dict[str, Any] = {}
    for name, check in required.items():
        if name not in payload:
            raise invalid(f"payload field {name!r} is required")
        result[name] = check(name, payload[name])
    for name, check in optional.items():
        if name in payload:
            result[name] = check(name, payload[name])
    return result
