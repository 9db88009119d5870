"""The block executor: one pure function from (state, block) to (writes, outcomes).

The solo engine and the CometBFT application call the same :meth:`Executor.execute_block`,
so a block gives the same state on every node however it was agreed. Nothing here reads
a clock, a random source or the environment: the block's height and time are inputs.

Which rules a block runs by is itself state: the protocol version in force
(tally.exec.upgrade), whose :class:`~tally.exec.rules.Rules` list the chain's modules and
their operations. Between blocks the executor holds the rules and parameters of the last
committed block (:meth:`Executor.sync`), which admission checks against; a block that
crosses a scheduled upgrade runs entirely by the new version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tally import tx as txmod
from tally.errors import Code, ExecutionFailed, TallyError, TxRejected
from tally.exec import policy, upgrade
from tally.exec.context import BlockSteps, ContractEvent, Event, TxContext
from tally.exec.rules import Rules, rules_for
from tally.exec.state import BlockState
from tally.genesis import Genesis
from tally.protocol.versions import IDENTITY
from tally.tx import Transaction
from tally.vm import VM

OK = Code.OK


@dataclass(slots=True)
class TxOutcome:
    tx: Transaction
    code: str
    message: str = ""
    events: list[Event] = field(default_factory=list)
    #: False when the transaction could not run at all (bad nonce, expired): it then
    #: consumed no nonce. True when it ran, whether it succeeded or failed.
    ran: bool = True
    #: Events of contracts (the commercial log), and what the transaction returned.
    contract_events: list[ContractEvent] = field(default_factory=list)
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.code == OK


def nonce_key(account: str) -> bytes:
    return b"nonce/" + account.encode()


def genesis_writes(genesis: Genesis) -> dict[bytes, Any]:
    """The state a chain starts with: what each module of its first version writes (its
    role table, committee and validator set; from version 2 its protocol record and
    parameters)."""
    return rules_for(genesis.protocol_version).genesis_writes(genesis)


@dataclass(slots=True)
class BlockOutcome:
    """What executing a block gave: the version it ran by, and each transaction's outcome."""

    version: int
    txs: list[TxOutcome]


class Executor:
    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.suite = genesis.suite
        self.chain = genesis.chain_id
        #: One VM per executor: it runs one call at a time and caches compiled code.
        self.vm = VM()
        #: The rules and parameters in force after the last committed block (sync).
        self.rules: Rules = rules_for(genesis.protocol_version)
        self.params = self.rules.params_of(_EMPTY, genesis)
        self._rules_by_version: dict[int, Rules] = {self.rules.version: self.rules}

    def rules_of(self, version: int) -> Rules:
        if version not in self._rules_by_version:
            self._rules_by_version[version] = rules_for(version)
        return self._rules_by_version[version]

    def sync(self, read: Callable[[bytes], Any | None]) -> None:
        """Adopt the version and parameters of the committed state (after genesis and
        after every commit): admission checks against them."""
        state = _ReadOnly(read)
        self.rules = self.rules_of(upgrade.current_version(state, self.genesis))
        self.params = self.rules.params_of(state, self.genesis)

    # --- admission: checks that need no state -------------------------------------------

    def decode(self, raw: bytes) -> Transaction:
        return txmod.decode(raw, max_size=self.params.max_tx_bytes)

    def precheck(self, raw: bytes) -> Transaction:
        """Decode and run every stateless check but the signature, which batch admission
        verifies on a thread pool (tally.admission). Raises a TallyError."""
        tx = self.decode(raw)
        self.check_stateless(tx, verify_signature=False)
        return tx

    def check_stateless(self, tx: Transaction, *, verify_signature: bool = True) -> None:
        """Chain, suite, signature, kind and payload shape. Raises TxRejected/ExecutionFailed."""
        if tx.chain != self.chain:
            raise TxRejected(
                f"transaction is for chain {tx.chain!r}, this is {self.chain!r}", Code.WRONG_CHAIN
            )
        if tx.suite != self.suite.name:
            raise TxRejected(
                f"transaction uses suite {tx.suite!r}; this chain uses {self.suite.name!r}",
                Code.WRONG_SUITE,
            )
        op = self.rules.operations.get(tx.kind)
        if op is None:
            raise TxRejected(f"unknown transaction kind {tx.kind!r}", Code.UNKNOWN_KIND)
        parsed = op.parse(tx.payload)
        if verify_signature:
            txmod.check_signature(tx, self.suite)
        # Kept on the transaction itself (its only reference), so execution need not
        # parse it again; a refused transaction takes it with it (issue 13).
        object.__setattr__(tx, "parsed", parsed)

    def check_nonce_and_expiry(self, tx: Transaction, expected_nonce: int, height: int,
                               max_expiry_window: int | None = None) -> None:
        """``height`` is the height of the block the transaction would enter."""
        window = self.params.max_expiry_window if max_expiry_window is None \
            else max_expiry_window
        if tx.nonce < expected_nonce:
            raise TxRejected(
                f"nonce {tx.nonce} was already used by {tx.sender}; next is {expected_nonce}",
                Code.NONCE_REPLAYED,
            )
        if tx.nonce > expected_nonce:
            raise TxRejected(
                f"nonce {tx.nonce} skips ahead; {tx.sender} must use {expected_nonce} next",
                Code.NONCE_GAP,
            )
        if tx.expiry < height:
            raise TxRejected(
                f"transaction expired at height {tx.expiry}; the chain is at {height}",
                Code.EXPIRED,
            )
        if tx.expiry > height + window:
            raise TxRejected(
                f"expiry {tx.expiry} is more than {window} blocks ahead",
                Code.EXPIRED,
            )

    def committed_nonce(self, read: Callable[[bytes], Any | None], account: str) -> int:
        return read(nonce_key(account)) or 0

    # --- execution ----------------------------------------------------------------------

    def execute_block(
        self,
        state: BlockState,
        *,
        height: int,
        time_ms: int,
        txs: list[Transaction],
        is_verified: Callable[[bytes], bool] = lambda tx_id: False,
    ) -> BlockOutcome:
        rules = self.rules_of(upgrade.begin_block(state, self.genesis, height))
        steps = BlockSteps(rules.block_steps)
        return BlockOutcome(rules.version, [
            self._execute(rules, state, steps, tx, height, time_ms, is_verified) for tx in txs])

    def _execute(
        self,
        rules: Rules,
        state: BlockState,
        steps: BlockSteps,
        tx: Transaction,
        height: int,
        time_ms: int,
        is_verified: Callable[[bytes], bool],
    ) -> TxOutcome:
        try:
            if not is_verified(tx.id):  # admitted transactions were checked already
                self.check_stateless(tx)
            op = rules.operations.get(tx.kind)
            if op is None:  # admitted under the rules of the version before this block
                raise TxRejected(f"unknown transaction kind {tx.kind!r}", Code.UNKNOWN_KIND)
            who = policy.admit(state, tx.sender) if rules.version >= IDENTITY else None
            expected = state.get(nonce_key(tx.sender)) or 0
            self.check_nonce_and_expiry(tx, expected, height,
                                        rules.param(state, self.genesis, "max_expiry_window"))
        except TallyError as exc:
            return TxOutcome(tx, str(exc.code), exc.message, ran=False)
        state.put(nonce_key(tx.sender), expected + 1)
        ctx = TxContext(state, self.suite, self.chain, height, time_ms, tx.id, tx.sender,
                        rules, self.vm, self.genesis, steps)
        state.begin()
        try:
            # Parsed at admission under the rules then in force; a block that crossed an
            # upgrade parses again by its own rules.
            parsed = tx.parsed if tx.parsed is not None and rules is self.rules \
                else op.parse(tx.payload)
            if who is not None:
                policy.authorize(state, who, tx.kind, parsed)
                ctx.authorized = True
            op.apply(ctx, parsed)
        except TallyError as exc:
            state.rollback()
            return TxOutcome(tx, str(exc.code), exc.message)
        except Exception as exc:  # a bug in a module must not halt the chain
            state.rollback()
            return TxOutcome(tx, Code.INTERNAL, f"internal error: {type(exc).__name__}")
        state.commit()
        return TxOutcome(tx, OK, "", ctx.events, contract_events=ctx.contract_events,
                         result=ctx.result)


class _ReadOnly:
    """Committed state through a read function, for :meth:`Executor.sync`."""

    __slots__ = ("read",)

    def __init__(self, read: Callable[[bytes], Any | None]) -> None:
        self.read = read

    def get(self, key: bytes) -> Any | None:
        return self.read(key)

    def put(self, key: bytes, value: Any) -> None:
        raise RuntimeError("read-only state")

    def delete(self, key: bytes) -> None:
        raise RuntimeError("read-only state")


_EMPTY = _ReadOnly(lambda key: None)

__all__ = ["BlockOutcome", "Executor", "TxOutcome", "ExecutionFailed", "OK", "genesis_writes",
           "nonce_key"]
