"""One error vocabulary, from the transaction decoder to the SDK.

Every outcome a user can meet (in the API, the CLI, CheckTx, a block receipt, the VM, a
verifier, the SDK) carries one stable :class:`Code` and a message in words. Codes never
change meaning, so clients can branch on them; messages may improve. The classes below
say *where* a failure happened (refused at admission, failed in a block, a proof that
does not verify, a node that cannot be reached); the code says *what* happened.

This module imports nothing of Tally's, so every layer may use it, the standalone
evidence verifier included.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    #: The transaction ran and its writes were kept.
    OK = "OK"
    # Decoding and admission: the transaction is refused before it reaches a block.
    MALFORMED = "TX_MALFORMED"
    OVERSIZE = "TX_OVERSIZE"
    BAD_SIGNATURE = "TX_BAD_SIGNATURE"
    WRONG_CHAIN = "TX_WRONG_CHAIN"
    WRONG_SUITE = "TX_WRONG_SUITE"
    NONCE_REPLAYED = "TX_NONCE_REPLAYED"
    NONCE_GAP = "TX_NONCE_GAP"
    EXPIRED = "TX_EXPIRED"
    UNKNOWN_KIND = "TX_UNKNOWN_KIND"
    DUPLICATE = "TX_DUPLICATE"
    MEMPOOL_FULL = "TX_MEMPOOL_FULL"
    # Execution: the transaction is in a block, failed, and wrote nothing.
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    UNAUTHORISED = "UNAUTHORISED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSUFFICIENT_UNITS = "INSUFFICIENT_UNITS"
    ASSET_RETIRED = "ASSET_RETIRED"
    #: Version 4: the sender is not a registered account (refused before it runs).
    UNREGISTERED = "TX_UNREGISTERED"
    #: Version 4: the sender's account is frozen or closed, or its member suspended.
    ACCOUNT_INACTIVE = "TX_ACCOUNT_INACTIVE"
    #: Version 4: a vote or withdrawal on a proposal that passed, failed, expired or
    #: was withdrawn.
    PROPOSAL_CLOSED = "PROPOSAL_CLOSED"
    #: Version 4: a regulator froze the asset; none of its units move until unfrozen.
    ASSET_FROZEN = "ASSET_FROZEN"
    #: Version 4: a call outside its contract's sandbox: caller, end height or caps.
    SANDBOX_CAP = "SANDBOX_CAP"
    #: Version 4: a certificate that does not verify (its reason names why).
    BAD_CERTIFICATE = "BAD_CERTIFICATE"
    #: The block's shared step budget for contract code was spent before this call could
    #: run it (tally.exec.context.BlockSteps): submit it again, it fits a later block.
    BLOCK_STEPS_SPENT = "BLOCK_STEPS_SPENT"
    # Contracts (tier 2): the VM's typed errors, as tally.vm raises them.
    CONTRACT_ERROR = "CONTRACT_ERROR"
    CONTRACT_REJECTED = "CONTRACT_REJECTED"
    VM_OUT_OF_STEPS = "VM_OUT_OF_STEPS"
    VM_MEMORY_LIMIT = "VM_MEMORY_LIMIT"
    VM_RECURSION_LIMIT = "VM_RECURSION_LIMIT"
    VM_FORBIDDEN = "VM_FORBIDDEN"
    VM_RUNTIME_ERROR = "VM_RUNTIME_ERROR"
    VM_INVALID_VALUE = "VM_INVALID_VALUE"
    VM_VIEW_WRITE = "VM_VIEW_WRITE"
    VM_NO_CONTRACT = "VM_NO_CONTRACT"
    VM_NO_METHOD = "VM_NO_METHOD"
    VM_BAD_ARGS = "VM_BAD_ARGS"
    VM_ALREADY_DEPLOYED = "VM_ALREADY_DEPLOYED"
    VM_HOST_ERROR = "VM_HOST_ERROR"
    VM_NO_HOST = "VM_NO_HOST"
    VM_BUSY = "VM_BUSY"
    # Reads and node operation.
    UNAVAILABLE = "UNAVAILABLE"
    INVALID_REQUEST = "INVALID_REQUEST"
    #: A client sent more requests than a node allows it (HTTP 429): retry later.
    RATE_LIMITED = "RATE_LIMITED"
    #: An authenticated node (``--access authenticated``) could not tell who sent the
    #: request: no signature, a bad or stale one, a replayed nonce, an unknown or inactive
    #: account (HTTP 401; docs/access.md).
    UNAUTHENTICATED = "UNAUTHENTICATED"
    #: The request's identity may not read what it asked for: another member's account,
    #: an asset it is no party to (HTTP 403). Not UNAUTHORISED, which is a transaction
    #: that failed in its block.
    FORBIDDEN = "FORBIDDEN"
    #: A proof, signed note, state proof or evidence bundle does not show what it claims
    #: (the answer was received, and it is wrong): never confuse it with UNAVAILABLE.
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    #: A bug in a module: the transaction's writes were discarded, the chain goes on.
    INTERNAL = "INTERNAL"


class TallyError(Exception):
    """Base of all typed errors: a stable ``code`` and a message for people."""

    code: Code = Code.INVALID_REQUEST

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class TxRejected(TallyError):
    """A transaction refused at admission: it never enters a block."""

    code = Code.MALFORMED


class ExecutionFailed(TallyError):
    """A transaction that was in a block but failed; its writes were discarded."""

    code = Code.INVALID_PAYLOAD


class NotFound(TallyError):
    code = Code.NOT_FOUND


class Unavailable(TallyError):
    """The node could not answer now (unreachable, shutting down, not yet committed)."""

    code = Code.UNAVAILABLE


class VerificationFailed(TallyError):
    """Something that must be proven did not verify. ``reason`` is a stable sub-code of
    the verifier that raised it (``ProofError.ROOT_MISMATCH``, ``bad_signature``...)."""

    code = Code.VERIFICATION_FAILED

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.message = message
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"reason": self.reason}


#: Codes that refuse a transaction before it enters a block.
ADMISSION_CODES = frozenset({
    Code.MALFORMED, Code.OVERSIZE, Code.BAD_SIGNATURE, Code.WRONG_CHAIN, Code.WRONG_SUITE,
    Code.NONCE_REPLAYED, Code.NONCE_GAP, Code.EXPIRED, Code.UNKNOWN_KIND, Code.DUPLICATE,
    Code.MEMPOOL_FULL, Code.UNREGISTERED, Code.ACCOUNT_INACTIVE,
})


def as_code(value: str) -> Code:
    """The :class:`Code` a stored or received string names; INTERNAL for an unknown one
    (a newer peer's code this build does not know)."""
    try:
        return Code(value)
    except ValueError:
        return Code.INTERNAL


def error_for(code: str, message: str) -> TallyError:
    """The typed error for a code read back from a receipt or an API answer."""
    known = as_code(code)
    if known in ADMISSION_CODES:
        return TxRejected(message, known)
    if known is Code.NOT_FOUND:
        return NotFound(message)
    if known is Code.UNAVAILABLE:
        return Unavailable(message)
    if known in (Code.INVALID_REQUEST, Code.VERIFICATION_FAILED, Code.RATE_LIMITED,
                 Code.UNAUTHENTICATED, Code.FORBIDDEN):
        return TallyError(message, known)
    return ExecutionFailed(message, known)


#: Numeric codes for CometBFT (CheckTx and block results; 0 means success). Fixed
#: forever: clients of CometBFT's RPC see these numbers.
ABCI_CODES: dict[str, int] = {
    Code.MALFORMED: 1, Code.OVERSIZE: 2, Code.BAD_SIGNATURE: 3, Code.WRONG_CHAIN: 4,
    Code.WRONG_SUITE: 5, Code.NONCE_REPLAYED: 6, Code.NONCE_GAP: 7, Code.EXPIRED: 8,
    Code.UNKNOWN_KIND: 9, Code.DUPLICATE: 10, Code.MEMPOOL_FULL: 11, Code.INVALID_PAYLOAD: 12,
    Code.UNAUTHORISED: 13, Code.NOT_FOUND: 14, Code.ALREADY_EXISTS: 15,
    Code.INSUFFICIENT_UNITS: 16, Code.ASSET_RETIRED: 17, Code.UNAVAILABLE: 18,
    Code.INVALID_REQUEST: 19, Code.CONTRACT_ERROR: 30, Code.CONTRACT_REJECTED: 31,
    Code.VM_OUT_OF_STEPS: 32, Code.VM_MEMORY_LIMIT: 33, Code.VM_RECURSION_LIMIT: 34,
    Code.VM_FORBIDDEN: 35, Code.VM_RUNTIME_ERROR: 36, Code.VM_INVALID_VALUE: 37,
    Code.VM_VIEW_WRITE: 38, Code.VM_NO_CONTRACT: 39, Code.VM_NO_METHOD: 40, Code.VM_BAD_ARGS: 41,
    Code.VM_ALREADY_DEPLOYED: 42, Code.VM_HOST_ERROR: 43, Code.VM_NO_HOST: 44, Code.VM_BUSY: 45,
    Code.VERIFICATION_FAILED: 46, Code.BLOCK_STEPS_SPENT: 47, Code.RATE_LIMITED: 48,
    Code.UNREGISTERED: 20, Code.ACCOUNT_INACTIVE: 21, Code.PROPOSAL_CLOSED: 22,
    Code.BAD_CERTIFICATE: 23, Code.ASSET_FROZEN: 24, Code.SANDBOX_CAP: 25,
    Code.UNAUTHENTICATED: 26, Code.FORBIDDEN: 27,
    Code.INTERNAL: 99, Code.OK: 0,
}
CODE_OF_ABCI: dict[int, str] = {number: str(code) for code, number in ABCI_CODES.items()}
