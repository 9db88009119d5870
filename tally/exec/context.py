"""What a system module sees while it executes one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tally.crypto import Suite
from tally.errors import Code, ExecutionFailed
from tally.exec.state import BlockState

if TYPE_CHECKING:
    from tally.genesis import Genesis
    from tally.vm import VM, Host


class BlockRules(Protocol):
    """What a running transaction may ask of its block's rules (tally.exec.rules.Rules,
    named here by its shape so that modules need not import the list of modules)."""

    @property
    def version(self) -> int: ...

    @property
    def host(self) -> Host: ...


class BlockSteps:
    """The step budget that all contract code of one block shares.

    Each call's own budget bounds one call; this bounds the block, so that no block takes
    longer to execute than its budget costs whatever its contracts do (decision 0022). A
    call is granted the smaller of what it asks for and what the block has left, and the
    block is charged what the call used (all it was granted, if it ran out). Once nothing
    is left, a call fails with ``BLOCK_STEPS_SPENT`` without running: its sender submits
    it again and a later block runs it. It depends only on the block's transactions, in
    order, so every node spends the same steps on the same calls.
    """

    __slots__ = ("limit", "left")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def grant(self, wanted: int) -> int:
        """Steps a call asking for ``wanted`` may use; raises if the block has none left."""
        if self.left <= 0:
            raise ExecutionFailed(
                f"this block's {self.limit:,} steps for contract code are spent; "
                "the call did not run (submit it again)", Code.BLOCK_STEPS_SPENT)
        return min(wanted, self.left)

    def spend(self, used: int) -> None:
        self.left -= used


@dataclass(frozen=True, slots=True)
class Event:
    """One committed fact, which becomes one leaf of the event log.

    ``details`` carries facts that do not fit the fixed fields (a pledge id, a freeze
    reason); the leaf commits to them through ``data``, their hash, so that the log leaf
    stays small and fixed-shape while the details remain provable.
    """

    type: str
    asset: str | None = None
    sender: str | None = None
    to: str | None = None
    quantity: int = 0
    data: bytes | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContractEvent:
    """An event a contract emitted: a leaf of the commercial (tier-2) log."""

    contract: str
    name: str
    data: bytes  # canonical CBOR of the event's data


@dataclass(slots=True)
class TxContext:
    state: BlockState
    suite: Suite
    chain: str
    height: int
    time_ms: int
    tx_id: bytes
    sender: str
    #: The rules of the protocol version the block runs by (its operations, committee
    #: actions and contracts' host), the executor's VM, and the chain's genesis.
    rules: BlockRules
    vm: VM
    genesis: Genesis
    #: The block's shared step budget for contract code.
    block_steps: BlockSteps
    events: list[Event] = field(default_factory=list)
    contract_events: list[ContractEvent] = field(default_factory=list)
    #: What the transaction returns to its sender (a contract call's return value).
    result: Any = None
    #: Version 4: the chain's policies allowed the sender this transaction
    #: (tally.exec.policy.authorize), so a module's own role checks give way to them.
    authorized: bool = False

    def emit(self, event: Event) -> None:
        self.events.append(event)
