"""Resource limits of one execution. The defaults are part of consensus: every node
of a chain must run contracts with the same limits, so a chain fixes them in genesis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Budgets and caps. A *step* is roughly one evaluated AST node; see docs/contracts.md."""

    #: Default step budget of a call when the executor passes none.
    max_steps: int = 1_000_000
    #: Bytes that size-dependent operations may allocate in one call, summed (not live).
    max_memory: int = 32 * 1024 * 1024
    #: Largest integer magnitude, in bits, that an operation may produce.
    max_int_bits: int = 4096
    #: Nested contract function frames (all contracts of the call together).
    max_frames: int = 100
    #: Nested contract-to-contract calls.
    max_call_depth: int = 8
    #: Largest encoded value in storage, in an event, argument or return value.
    max_value_bytes: int = 64 * 1024
    #: Deepest nesting of lists and dicts in a stored value.
    max_value_depth: int = 32
    #: Largest encoded map key.
    max_key_bytes: int = 1024
    #: Largest contract source, in UTF-8 bytes.
    max_source_bytes: int = 64 * 1024
    #: Deepest AST a contract may have (guards the compiler's own recursion).
    max_ast_depth: int = 100
    #: Largest width or precision in an f-string format spec.
    max_format_width: int = 1000
    #: Deepest nesting of lists and dicts that an operation walking a value in C
    #: (formatting, comparison, ``in``, sorting, copying) accepts. The VM checks it with
    #: its own iterative walk first, so CPython's recursion limit is never what stops
    #: such an operation (see docs/decisions/0506-vm-memory-and-nesting-accounting.md).
    max_nesting: int = 100
    #: Steps charged for each contract-to-contract call, on top of the callee's own.
    call_steps: int = 100
    #: Steps charged for each host function call.
    host_call_steps: int = 100
    #: Step budget for loading a contract module (constants, class body).
    load_steps: int = 10_000


DEFAULT_LIMITS = Limits()
