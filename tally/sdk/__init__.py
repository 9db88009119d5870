"""Tally's Python SDK."""

from tally.sdk.client import Account, ApiError, Receipt, TallyClient, VerifiedHolding

__all__ = ["Account", "ApiError", "Receipt", "TallyClient", "VerifiedHolding"]
