"""Tally's contract VM: Python contracts, sandboxed, metered and deterministic.

The executor uses :class:`VM` (``deploy`` / ``call`` / ``query``) with a
:class:`StorageBackend`, a :class:`Context` and an optional host hook; see
docs/contracts.md for the contract language and docs/decisions/05xx for why it
is built this way.
"""

from .compiler import CompiledContract, MethodSpec, compile_contract
from .errors import (
    AlreadyDeployed,
    BadArguments,
    ContractError,
    ContractNotFound,
    ContractRejected,
    ContractRuntimeError,
    Forbidden,
    HostError,
    InvalidValue,
    MemoryLimitExceeded,
    MethodNotFound,
    OutOfSteps,
    RecursionLimitExceeded,
    ViewWriteError,
    VMBusy,
    VMError,
)
from .limits import DEFAULT_LIMITS, Limits
from .machine import VM, Context, Event, ExecutionResult, Host, HostRequest
from .storage import DictStorage, StorageBackend, code_id_key, contract_prefix, source_key
from .values import decode as decode_value
from .values import encode as encode_value

__all__ = [
    "DEFAULT_LIMITS",
    "VM",
    "AlreadyDeployed",
    "BadArguments",
    "CompiledContract",
    "Context",
    "ContractError",
    "ContractNotFound",
    "ContractRejected",
    "ContractRuntimeError",
    "DictStorage",
    "Event",
    "ExecutionResult",
    "Forbidden",
    "Host",
    "HostError",
    "HostRequest",
    "InvalidValue",
    "Limits",
    "MemoryLimitExceeded",
    "MethodNotFound",
    "MethodSpec",
    "OutOfSteps",
    "RecursionLimitExceeded",
    "StorageBackend",
    "VMBusy",
    "VMError",
    "ViewWriteError",
    "code_id_key",
    "compile_contract",
    "contract_prefix",
    "decode_value",
    "encode_value",
    "source_key",
]
