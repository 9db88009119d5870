"""Tally's Python SDK: typed clients (sync and async), signing accounts, verified reads.

The answer types are the API's response models (:mod:`tally.protocol.http`) and the one
:class:`~tally.protocol.receipt.Receipt`; the errors are :mod:`tally.errors`'.
"""

from tally.errors import (
    ExecutionFailed,
    NotFound,
    TallyError,
    TxRejected,
    Unavailable,
    VerificationFailed,
)
from tally.protocol.http import (
    AccountInfo,
    Asset,
    Block,
    Claims,
    CommercialEvent,
    Committee,
    ConsistencyProof,
    Contract,
    Event,
    EvidenceBundle,
    GenesisDocument,
    Header,
    Holding,
    Identity,
    InclusionProof,
    MayVerdict,
    Member,
    MemberDetail,
    Policy,
    Proposal,
    StateProof,
    Status,
    Transaction,
)
from tally.protocol.receipt import Receipt
from tally.sdk.account import Account, AsyncAccount, Operations
from tally.sdk.auth import SignedRequests
from tally.sdk.calls import (
    ApiError,
    Call,
    Endpoints,
    NodeUnreachable,
    VerifiedHolding,
    VerifiedState,
    verify_evidence,
    verify_holding,
    verify_state,
)
from tally.sdk.client import AsyncTallyClient, TallyClient

__all__ = [
    "SignedRequests",
    "Account", "AccountInfo", "ApiError", "Asset", "AsyncAccount", "AsyncTallyClient",
    "Block", "Call", "Claims", "CommercialEvent", "Committee", "ConsistencyProof",
    "Contract", "Endpoints", "Event", "EvidenceBundle", "ExecutionFailed",
    "GenesisDocument", "Header", "Holding", "Identity", "InclusionProof", "MayVerdict",
    "Member", "MemberDetail", "NodeUnreachable", "NotFound", "Operations", "Policy",
    "Proposal", "Receipt", "StateProof", "Status", "TallyClient", "TallyError",
    "Transaction", "TxRejected", "Unavailable", "VerificationFailed", "VerifiedHolding",
    "VerifiedState", "verify_evidence", "verify_holding", "verify_state",
]
