"""Typed errors raised by the contract VM.

Every failure that leaves the VM is a :class:`VMError` with a stable string
``code``: the executor writes the code into receipts and clients branch on it, so
codes never change meaning once released. Messages are for people and are built
only from deterministic parts (no object addresses), because they may end up in
replicated state.

The codes are those of :class:`tally.errors.Code` (held here as plain strings, because
contracts see them as values through ``try_call`` and a contract value is a plain
``str``): one vocabulary from the VM to the SDK.
"""

from __future__ import annotations

from tally.errors import Code


class VMError(Exception):
    """Base of every error the VM raises on purpose.

    Anything else escaping :mod:`tally.vm` is a bug in the VM itself.
    """

    code: str = Code.INTERNAL.value
    #: Steps the failed call had used when it stopped (set by the VM on errors that
    #: leave deploy/call/query), so an executor can charge for failed work.
    steps_used: int | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    def to_dict(self) -> dict[str, str]:
        """The form a receipt or a ``try_call`` result carries."""
        return {"code": self.code, "message": self.message}


class ContractRejected(VMError):
    """The source failed the deploy-time checks (syntax, structure, forbidden construct)."""

    code = Code.CONTRACT_REJECTED.value

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class Forbidden(VMError):
    """The contract tried, at run time, something the sandbox does not allow
    (an attribute outside the allow-list, a codec other than UTF-8, ``%`` formatting)."""

    code = Code.VM_FORBIDDEN.value


class ContractError(VMError):
    """Raised by contract code itself (``require`` or ``raise ContractError(msg)``).

    Contract code can construct this class, so its constructor accepts only a
    string message: nothing else can ride out of the sandbox on it.
    """

    code = Code.CONTRACT_ERROR.value

    def __init__(self, message: str = "") -> None:
        if type(message) is not str:
            message = "ContractError message must be a str"
        super().__init__(message[:1024])
        #: Name of the contract that raised it (set by the VM).
        self.contract: str | None = None


class ContractRuntimeError(VMError):
    """A Python error inside contract code (``KeyError``, ``ZeroDivisionError``...)."""

    code = Code.VM_RUNTIME_ERROR.value


class OutOfSteps(VMError):
    """The step budget of the call is spent."""

    code = Code.VM_OUT_OF_STEPS.value


class MemoryLimitExceeded(VMError):
    """An allocation would take the call past its memory budget or a size cap."""

    code = Code.VM_MEMORY_LIMIT.value


class RecursionLimitExceeded(VMError):
    """Too many nested contract frames or nested contract calls."""

    code = Code.VM_RECURSION_LIMIT.value


class InvalidValue(VMError):
    """A value crossing a boundary (argument, storage, event, return value) is not
    storable: a float, an unknown type, too deep, too large, or the wrong declared type."""

    code = Code.VM_INVALID_VALUE.value


class ViewWriteError(VMError):
    """A read-only execution (a ``@view``, a query, a ``view_call``) tried to write
    storage or emit an event."""

    code = Code.VM_VIEW_WRITE.value


class ContractNotFound(VMError):
    """No contract is deployed under that name."""

    code = Code.VM_NO_CONTRACT.value


class AlreadyDeployed(VMError):
    """A contract is already deployed under that name."""

    code = Code.VM_ALREADY_DEPLOYED.value


class MethodNotFound(VMError):
    """The contract has no public method of that name (or it is not a view, for a query)."""

    code = Code.VM_NO_METHOD.value


class BadArguments(VMError):
    """Wrong number or types of arguments for an entry point."""

    code = Code.VM_BAD_ARGS.value


class HostError(VMError):
    """A host function failed. Hosts raise it (with their own code) for expected
    failures such as an insufficient custody balance; any other exception a host
    raises reaches the executor wrapped in one with code ``VM_HOST_ERROR``."""

    code = Code.VM_HOST_ERROR.value

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class VMBusy(VMError):
    """A VM instance runs one execution at a time; a host hook re-entered it."""

    code = Code.VM_BUSY.value


#: Errors a caller may catch with ``try_call``: they revert only the callee.
#: Budget errors are not among them, because the budget is shared by the whole call.
REVERTIBLE: tuple[type[VMError], ...] = (
    ContractError,
    ContractRuntimeError,
    Forbidden,
    InvalidValue,
    ViewWriteError,
    ContractNotFound,
    MethodNotFound,
    BadArguments,
)
