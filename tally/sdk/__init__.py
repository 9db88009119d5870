"""Tally's Python SDK."""

from tally.sdk.client import (
    Account,
    ApiError,
    NodeUnreachable,
    Receipt,
    TallyClient,
    VerifiedHolding,
)

__all__ = ["Account", "ApiError", "NodeUnreachable", "Receipt", "TallyClient",
           "VerifiedHolding"]
