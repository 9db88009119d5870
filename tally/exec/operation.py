"""An operation: one transaction kind, its payload check and its effect on state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tally.exec.context import TxContext


@dataclass(frozen=True, slots=True)
class Operation:
    kind: str
    #: Stateless payload check, run at admission and again at execution. Returns the
    #: parsed payload or raises ExecutionFailed(INVALID_PAYLOAD).
    parse: Callable[[dict[str, Any]], dict[str, Any]]
    #: The effect. Reads and writes ``ctx.state``, emits events, or raises a TallyError
    #: (which discards every write of the transaction).
    apply: Callable[[TxContext, dict[str, Any]], None]
    summary: str = ""
